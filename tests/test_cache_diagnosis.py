"""Where a prefix changed (`llmtrace.cache.changed_block` / `changed_offset`) and which prefix a call used
(`llmtrace.cache.prefix_fingerprint`), through the real SDKs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import sse
from tests.conftest import make_anthropic, make_openai
from tests.test_cache import Conversation

BLOCK = 3000  # characters per block: several windows each
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
def chat(api: Any, telemetry: Any) -> Conversation:
    return Conversation(api, telemetry)


def words(seed: int, length: int = BLOCK) -> str:
    text = " ".join(f"rule{seed}-{n}: check the plan first." for n in range(length // 20))
    return text[:length]


def changed_at(text: str, k: int) -> str:
    return text[:k] + ("#" if text[k] != "#" else "%") + text[k + 1:]


def located(attrs: dict[str, Any]) -> tuple[str, int, int]:
    return attrs["llmtrace.cache.miss_reason"], attrs["llmtrace.cache.changed_block"], attrs["llmtrace.cache.changed_offset"]


def assert_near(offset: int, k: int) -> None:
    assert k - 64 < offset <= k, (offset, k)  # exact, or rounded down by at most 63


def system_blocks(texts: list[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
    blocks[-1]["cache_control"] = EPHEMERAL
    return blocks


# Changes at the first character, inside a window, on a window boundary, and at the last character.
OFFSETS = [0, 1, 63, 64, 1000, 2047, BLOCK - 1]


@pytest.mark.parametrize("block", [0, 2])
@pytest.mark.parametrize("k", OFFSETS)
def test_system_change_is_located(chat, block, k):
    texts = [words(i) for i in range(3)]
    chat.send("write", system=system_blocks(texts))
    texts[block] = changed_at(texts[block], k)
    reason, changed_block, offset = located(chat.send("write", system=system_blocks(texts)))
    assert (reason, changed_block) == ("system_changed", block)
    assert_near(offset, k)


def test_plain_string_system_prompt_is_block_0(chat):
    prompt = words(7, 5000)
    chat.send("write", system=prompt, cache_control=EPHEMERAL)
    attrs = chat.send("write", system=changed_at(prompt, 4321), cache_control=EPHEMERAL)
    reason, block, offset = located(attrs)
    assert (reason, block) == ("system_changed", 0)
    assert_near(offset, 4321)


def tool(n: int, description: str) -> dict[str, Any]:
    return {"name": f"lookup_{n}", "description": description,
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}


def tool_json(t: dict[str, Any]) -> str:
    """A tool's text, as the contract counts its offsets: compact JSON with sorted keys, without cache markers."""
    return json.dumps({k: v for k, v in t.items() if k != "cache_control"}, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("block", [0, 2])
@pytest.mark.parametrize("k", [0, 500, BLOCK - 1])
def test_tools_change_is_located(chat, block, k):
    tools = [tool(i, words(i)) for i in range(3)]
    tools[-1]["cache_control"] = EPHEMERAL
    chat.send("write", tools=tools, system="You are terse.")
    changed = [dict(t) for t in tools]
    changed[block]["description"] = changed_at(tools[block]["description"], k)
    before, after = tool_json(tools[block]), tool_json(changed[block])
    at = next(i for i, (x, y) in enumerate(zip(before, after)) if x != y)  # the change's offset in the tool's text
    reason, changed_block, offset = located(chat.send("write", tools=changed, system="You are terse."))
    assert (reason, changed_block) == ("tools_changed", block)
    assert_near(offset, at)


def test_tools_reordered_is_block_0(chat):
    tools = [tool(i, words(i, 200)) for i in range(3)]
    chat.send("write", tools=tools, system="You are terse.", cache_control=EPHEMERAL)
    attrs = chat.send("write", tools=[tools[1], tools[0], tools[2]], system="You are terse.", cache_control=EPHEMERAL)
    assert located(attrs)[:2] == ("tools_changed", 0)


def conversation(texts: list[str]) -> list[dict[str, Any]]:
    """Alternating turns; the last one carries the breakpoint, so every message is in the cacheable prefix."""
    messages: list[dict[str, Any]] = [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]
    messages[-1] = {"role": "user", "content": [{"type": "text", "text": texts[-1], "cache_control": EPHEMERAL}]}
    return messages


@pytest.mark.parametrize("block", [0, 2])
@pytest.mark.parametrize("k", [0, 64, 1999, BLOCK - 1])
def test_messages_change_is_located(chat, block, k):
    texts = [words(i) for i in range(3)]
    chat.send("write", system="You are terse.", messages=conversation(texts))
    texts[block] = changed_at(texts[block], k)
    reason, changed_block, offset = located(chat.send("write", system="You are terse.", messages=conversation(texts)))
    assert (reason, changed_block) == ("prefix_changed", block)
    assert_near(offset, k)


def test_openai_system_change_is_located(api, telemetry):
    api.sse(sse.openai_chat(prompt_tokens=5000, cached=0), repeat=2)
    client = make_openai(api)
    prompt = words(3, 6000)
    for system in (prompt, changed_at(prompt, 5000)):
        list(client.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "system", "content": system},
                                                      {"role": "user", "content": "Hi"}]))
    reason, block, offset = located(dict(telemetry.spans()[-1].attributes))
    assert (reason, block) == ("system_changed", 0)
    assert_near(offset, 5000)


def test_no_location_without_a_changed_part(chat):
    attrs = chat.send("write")
    assert attrs["llmtrace.cache.miss_reason"] == "first_use"
    assert "llmtrace.cache.changed_block" not in attrs and "llmtrace.cache.changed_offset" not in attrs
    attrs = chat.send("write", model="claude-sonnet-4-6")
    assert attrs["llmtrace.cache.miss_reason"] == "model_changed" and "llmtrace.cache.changed_block" not in attrs


# --- the fingerprint ---

def fingerprint_of(attrs: dict[str, Any]) -> str:
    value = attrs["llmtrace.cache.prefix_fingerprint"]
    assert isinstance(value, str) and 0 < len(value) <= 64 and all(c in "0123456789abcdef" for c in value)
    return value


def request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "tools": [tool(0, words(0, 400)), tool(1, "Find an invoice")],
        "system": system_blocks([words(1, 5000)]),
        "messages": conversation([words(2, 800), "Noted.", "Summarise the rules."]) + [
            {"role": "assistant", "content": "Here"}, {"role": "user", "content": "Go on"}],
    }
    base.update(changes)
    return base


def test_fingerprint_on_every_call_that_asked(chat):
    first, hit = chat.send("write"), chat.send("hit")
    assert fingerprint_of(first) == fingerprint_of(hit)
    assert "llmtrace.cache.prefix_fingerprint" not in chat.send("miss", system="You are terse.")  # not asked


@pytest.mark.parametrize("change", [
    {"model": "claude-sonnet-4-6"},
    {"tools": [tool(0, words(0, 400)), tool(1, "Find an invoice by number")]},
    {"system": system_blocks([words(1, 5000) + "."])},
    {"messages": conversation([words(2, 800), "Noted!", "Summarise the rules."])},
])
def test_fingerprint_differs_when_any_part_differs(chat, change):
    assert fingerprint_of(chat.send("write", **request())) != fingerprint_of(chat.send("write", **request(**change)))


def test_fingerprint_ignores_what_is_not_the_prefix(chat):
    base = request()
    a = chat.send("write", **base)
    later = request(messages=base["messages"][:3] + [{"role": "assistant", "content": "Other"},
                                                      {"role": "user", "content": "Another question"}])
    later["system"] = [dict(later["system"][0], cache_control={"type": "ephemeral", "ttl": "1h"})]  # a marker only
    assert fingerprint_of(a) == fingerprint_of(chat.send("write", **later))


SCRIPT = """
import json, sys
import llmtrace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from tests import sse
from tests.conftest import FakeAPI, make_anthropic

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
llmtrace.instrument(tracer_provider=provider, meter_provider=MeterProvider())
api = FakeAPI().sse(sse.anthropic(cache_write=5000))
body = json.loads(sys.stdin.read())
list(make_anthropic(api).messages.create(max_tokens=64, stream=True, **body))
print(exporter.get_finished_spans()[-1].attributes["llmtrace.cache.prefix_fingerprint"])
"""


def fingerprint_in_process(body: dict[str, Any], hash_seed: str, salt: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_"))}
    env["PYTHONHASHSEED"] = hash_seed
    if salt is not None:
        env["LLMTRACE_FINGERPRINT_SALT"] = salt
    done = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(body), capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_fingerprint_is_stable_across_processes_and_changes_with_the_salt():
    body = request()
    seeded = [fingerprint_in_process(body, seed) for seed in ("1", "2024")]
    assert seeded[0] == seeded[1]
    salted = fingerprint_in_process(body, "3", salt="deployment secret")
    assert salted != seeded[0]
    assert fingerprint_in_process(body, "4", salt="deployment secret") == salted
    assert fingerprint_in_process(body, "5", salt="another secret") != salted


def test_no_prompt_text_on_spans_with_capture_off(chat, telemetry):
    secret = "Zebra-7 quokka manifest"
    chat.send("write", **request(system=system_blocks([words(1, 2000) + secret + words(4, 2000)])))
    attrs = chat.send("write", **request(system=system_blocks([words(1, 2000) + secret.upper() + words(4, 2000)])))
    assert attrs["llmtrace.cache.miss_reason"] == "system_changed"
    for span in telemetry.spans():
        for value in span.attributes.values():
            text = str(value)
            assert "zebra" not in text.lower() and "rule1-" not in text and "lookup_0" not in text


def test_memory_stays_bounded_with_a_new_prompt_every_call(chat, monkeypatch):
    from llmtrace import LLMTraceInstrumentor, _cache

    memory = _cache.PrefixMemory(size=8, summary_bytes=64 * 1024)
    monkeypatch.setattr(LLMTraceInstrumentor()._telemetry, "prefixes", memory)
    for n in range(40):
        attrs = chat.send("write", system=system_blocks([f"Now: {n}. " + words(1, 20_000)]))
    assert located(attrs)[:2] == ("system_changed", 0)  # still located against the latest one kept
    assert len(memory._full) == 8 and all(len(index) <= 8 for index in memory._without.values())
    assert memory._summary_held <= 64 * 1024


def test_reused_prompt_is_hashed_once(chat, monkeypatch):
    from llmtrace import _prefix

    hashed: list[int] = []
    real = _prefix.Text

    class Counting(real):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __init__(self, s: str) -> None:
            hashed.append(len(s))
            super().__init__(s)

    monkeypatch.setattr(_prefix, "Text", Counting)
    prompt = system_blocks([words(9, 20_000)])
    tools = [tool(0, words(0, 2000))]
    chat.send("write", system=prompt, tools=tools)
    assert sum(hashed) > 20_000
    hashed.clear()
    chat.send("hit", system=system_blocks([prompt[0]["text"]]), tools=[dict(tools[0])])  # new lists, same content
    assert sum(hashed) < 1000, hashed
    tools[0]["description"] = "changed in place"
    attrs = chat.send("write", system=prompt, tools=tools)
    assert attrs["llmtrace.cache.miss_reason"] == "tools_changed"  # a mutated list is read anew
