"""Cache outcome, and each `llmtrace.cache.miss_reason`, produced by the sequence of requests that causes it."""

from __future__ import annotations

from typing import Any

import pytest

from llmtrace import _cache
from tests import sse
from tests.conftest import make_anthropic, make_openai

LONG = "You answer questions about the llmtrace handbook. " * 600  # ~5,000 tokens
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def system(text: str = LONG, ttl: str | None = None) -> list[dict[str, Any]]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": control}]


class Conversation:
    """Sends Anthropic requests; the fake provider answers a write, a hit or a plain miss as told."""

    def __init__(self, api: Any, telemetry: Any) -> None:
        self.api, self.telemetry = api, telemetry
        self.client = make_anthropic(api)

    def send(self, answer: str, *, model: str = "claude-haiku-4-5", **request: Any) -> dict[str, Any]:
        reads, writes = {"write": (0, 5000), "hit": (5000, 0), "miss": (0, 0)}[answer]
        self.api.replies.clear()
        self.api.sse(sse.anthropic(model=model, cache_read=reads, cache_write=writes))
        request.setdefault("system", system())
        request.setdefault("messages", [{"role": "user", "content": "What is a span?"}])
        list(self.client.messages.create(model=model, max_tokens=64, stream=True, **request))
        return dict(self.telemetry.spans()[-1].attributes)


@pytest.fixture
def chat(api: Any, telemetry: Any) -> Conversation:
    return Conversation(api, telemetry)


@pytest.mark.parametrize(("read", "write", "asked", "outcome"), [
    (10, 0, True, "hit"), (10, 5, True, "partial"), (0, 5, True, "write"), (0, 0, True, "miss"),
    (0, 0, False, "none"), (10, 0, False, "hit"),
])
def test_cache_outcome(read, write, asked, outcome):
    assert _cache.cache_outcome(read, write, asked) == outcome


def test_first_use_then_hit(chat):
    first = chat.send("write")
    assert (first["llmtrace.cache.outcome"], first["llmtrace.cache.miss_reason"]) == ("write", "first_use")
    assert first["llmtrace.cache.ttl"] == 300
    second = chat.send("hit")
    assert second["llmtrace.cache.outcome"] == "hit" and "llmtrace.cache.miss_reason" not in second
    assert second["llmtrace.cache.hit_ratio"] == pytest.approx(5000 / 5012)


def test_model_changed(chat):
    chat.send("write")
    assert chat.send("write", model="claude-sonnet-4-6")["llmtrace.cache.miss_reason"] == "model_changed"


def test_system_changed(chat):
    chat.send("write")
    assert chat.send("write", system=system(LONG + " Be brief."))["llmtrace.cache.miss_reason"] == "system_changed"


def test_tools_changed(chat):
    chat.send("write", tools=TOOLS)
    changed = [dict(TOOLS[0], description="Weather and time for a city")]
    assert chat.send("write", tools=changed)["llmtrace.cache.miss_reason"] == "tools_changed"


def test_prefix_changed(chat):
    history = [{"role": "user", "content": [{"type": "text", "text": "Here is the document. " * 300,
                                             "cache_control": {"type": "ephemeral"}}]}]
    chat.send("write", system="You are terse.", messages=history)
    edited = [{"role": "user", "content": [{"type": "text", "text": "Here is the new document. " * 300,
                                            "cache_control": {"type": "ephemeral"}}]}]
    assert chat.send("write", system="You are terse.", messages=edited)["llmtrace.cache.miss_reason"] == "prefix_changed"


def test_ttl_expired(chat, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("llmtrace._telemetry.monotonic", lambda: now[0])
    chat.send("write")
    now[0] += 200
    assert chat.send("hit")["llmtrace.cache.outcome"] == "hit"  # a read refreshes the TTL
    now[0] += 299
    assert chat.send("hit")["llmtrace.cache.outcome"] == "hit"
    now[0] += 301
    assert chat.send("write")["llmtrace.cache.miss_reason"] == "ttl_expired"


def test_one_hour_ttl(chat, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("llmtrace._telemetry.monotonic", lambda: now[0])
    assert chat.send("write", system=system(ttl="1h"))["llmtrace.cache.ttl"] == 3600
    now[0] += 1800
    assert chat.send("write", system=system(ttl="1h")).get("llmtrace.cache.miss_reason") is None  # not lapsed
    now[0] += 3601
    assert chat.send("write", system=system(ttl="1h"))["llmtrace.cache.miss_reason"] == "ttl_expired"


def test_below_minimum(chat):
    attrs = chat.send("miss", system=system("You are terse."))
    assert (attrs["llmtrace.cache.outcome"], attrs["llmtrace.cache.miss_reason"]) == ("miss", "below_minimum")


def test_top_level_cache_control_counts_as_asked(chat):
    attrs = chat.send("miss", system="You are terse.", cache_control={"type": "ephemeral"})
    assert attrs["llmtrace.cache.outcome"] == "miss"


def test_no_cache_control_is_none(chat):
    attrs = chat.send("miss", system="You are terse.")
    assert attrs["llmtrace.cache.outcome"] == "none" and "llmtrace.cache.miss_reason" not in attrs


def test_provider_diagnosis_wins(api, telemetry):
    diagnostics = {"cache_miss_reason": {"type": "tools_changed", "cache_missed_input_tokens": 4000}}
    api.sse(sse.anthropic(cache_read=0, cache_write=5000, diagnostics=diagnostics))
    list(make_anthropic(api).messages.create(model="claude-haiku-4-5", max_tokens=64, stream=True, system=system(),
                                             messages=[{"role": "user", "content": "Hi"}]))
    assert telemetry.span().attributes["llmtrace.cache.miss_reason"] == "tools_changed"


def test_openai_long_prompt_counts_as_asked(api, telemetry):
    api.sse(sse.openai_chat(prompt_tokens=5000, cached=0), repeat=2)
    client = make_openai(api)
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "Hi"}]
    for prompt in (messages, [{"role": "user", "content": "Hi"}]):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=prompt, stream=True,
                                            stream_options={"include_usage": True}))
    long, short = telemetry.spans()
    assert long.attributes["llmtrace.cache.outcome"] == "miss"
    assert long.attributes["llmtrace.cache.miss_reason"] == "first_use"
    assert short.attributes["llmtrace.cache.outcome"] == "none"


def test_prefix_memory_is_bounded():
    memory = _cache.PrefixMemory(size=4)
    for i in range(10):
        memory.observe(_cache.CacheIntent("anthropic", "m", None, f"system {i}", None, 300), "write", float(i))
    assert len(memory._full) == 4
    assert all(len(index) <= 4 for index in memory._without.values())
