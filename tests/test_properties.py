"""Invariants over generated streams (Hypothesis): whatever the chunk count, usage, cache numbers and the
way the stream ends, the app sees the provider's items, exactly one span ends, and its chunk count, token
sums and outcome follow the contract."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider

import llmtrace
from tests import sse
from tests.conftest import EXPORTER, TRACER_PROVIDER, FakeAPI, make_anthropic, make_openai

EXAMPLES = 500
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MESSAGES = [{"role": "user", "content": "hi"}]
tokens = st.integers(0, 2_000_000)
pieces = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
                  max_size=30)
# how the consumer or the transport ends the stream; the integer picks a position in it
endings = st.tuples(st.sampled_from(["drain", "break", "drop", "cut"]), st.integers(0, 10_000))


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    llmtrace.uninstrument()
    llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=MeterProvider())
    yield
    llmtrace.uninstrument()


def consume(open_stream: Any, is_async: bool, stop_after: int | None) -> tuple[list[str], str | None]:
    """The item types the app iterated (stopping after `stop_after`), and the exception that ended it."""
    seen: list[str] = []

    def kind(item: Any) -> str:
        return getattr(item, "type", None) or ("usage" if not item.choices else "chunk")

    async def run_async() -> None:
        stream = await open_stream()
        async for item in stream:
            seen.append(kind(item))
            if len(seen) == stop_after:
                break
        await stream.close()

    def run_sync() -> None:
        stream = open_stream()
        for item in stream:
            seen.append(kind(item))
            if len(seen) == stop_after:
                break
        stream.close()

    try:
        asyncio.run(run_async()) if is_async else run_sync()
    except Exception as exc:  # noqa: BLE001 - part of what the app sees
        return seen, type(exc).__name__
    return seen, None


def play(events: list[sse.Event], ending: tuple[str, int], is_async: bool, provider: str) -> dict[str, Any]:
    """Serve `events` ended as `ending` says; returns what the app saw and the single span."""
    how, at = ending
    parts = len(events)
    api = FakeAPI()
    stop_after = None
    if how == "drop":  # the connection breaks before part `at`
        api.sse(events, fail_after=at % (parts + 1))
    elif how == "cut":  # the body ends early, without an error
        api.sse(events[: at % parts])
    else:
        api.sse(events)
        if how == "break":
            stop_after = 1 + at % parts
    client = (make_anthropic if provider == "anthropic" else make_openai)(api, is_async)
    if provider == "anthropic":
        def open_stream() -> Any:
            return client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES, stream=True)
    else:
        def open_stream() -> Any:
            return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True})
    EXPORTER.clear()
    seen, error = consume(open_stream, is_async, stop_after)
    spans = [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]
    assert len(spans) == 1, spans  # exactly one span, ended by now
    return {"seen": seen, "error": error, "span": spans[0].attributes, "status": spans[0].status.status_code.name}


def delivered(events: list[sse.Event], ending: tuple[str, int], items_of: Any) -> tuple[list[str], bool]:
    """The items the app should see, and whether the stream ran to its natural end."""
    how, at = ending
    if how == "drop":
        return items_of(events[: at % (len(events) + 1)]), False
    if how == "cut":
        return items_of(events[: at % len(events)]), True
    items = items_of(events)
    if how == "break":
        return items[: 1 + at % len(events)], False
    return items, True


def check_outcome(got: dict[str, Any], expected_items: list[str], natural_end: bool, terminal: bool,
                  ending: tuple[str, int], drop_error: str) -> None:
    attrs = got["span"]
    assert got["seen"] == expected_items
    assert attrs["llmtrace.stream.chunks"] == len(expected_items)
    if ending[0] == "drop" and got["error"] is not None:
        assert got["error"] == drop_error
        assert attrs["llmtrace.stream.outcome"] == "error" and got["status"] == "ERROR"
    elif terminal:
        assert attrs["llmtrace.stream.outcome"] == "completed" and got["status"] != "ERROR"
    elif natural_end:  # ended without its terminal event
        assert attrs["llmtrace.stream.outcome"] == "error" and attrs["error.type"] == "stream_truncated"
    else:
        assert attrs["llmtrace.stream.outcome"] == "abandoned" and got["status"] != "ERROR"


@SETTINGS
@given(text=pieces, uncached=tokens, read=st.none() | tokens, write=st.none() | tokens,
       output=st.integers(1, 100_000), delta=st.sampled_from(["output-only", "cumulative", "revised"]),
       revised=tokens, ending=endings, is_async=st.booleans())
def test_anthropic_streams(text: list[str], uncached: int, read: int | None, write: int | None, output: int,
                           delta: str, revised: int, ending: tuple[str, int], is_async: bool) -> None:
    delta_usage: dict[str, Any] = {"output_tokens": output}
    if delta != "output-only":
        delta_usage.update(input_tokens=revised if delta == "revised" else uncached,
                           cache_read_input_tokens=read, cache_creation_input_tokens=write)
    events = sse.anthropic(text, input_tokens=uncached, cache_read=read, cache_write=write, output_tokens=output,
                           delta_usage=delta_usage)
    got = play(events, ending, is_async, "anthropic")

    def items_of(evs: list[sse.Event]) -> list[str]:
        return [name for name, _ in evs if name != "ping"]

    expected, natural_end = delivered(events, ending, items_of)
    check_outcome(got, expected, natural_end, "message_stop" in expected, ending, "ReadError")
    attrs = got["span"]
    if "message_start" not in expected:
        assert "gen_ai.usage.input_tokens" not in attrs
        return
    # Input includes cache reads and writes; message_delta's cumulative values replace message_start's.
    final_uncached = revised if delta == "revised" and "message_delta" in expected else uncached
    assert attrs["gen_ai.usage.input_tokens"] == final_uncached + (read or 0) + (write or 0)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == (read or 0)
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == (write or 0)
    if "message_delta" in expected:
        assert attrs["llmtrace.usage.source"] == "provider"
        assert attrs["gen_ai.usage.output_tokens"] == output  # the final value, never added to the placeholder
    else:
        assert attrs["llmtrace.usage.source"] == "estimated"
        shown = sum(len(p) for p in text[: expected.count("content_block_delta")])
        assert attrs["gen_ai.usage.output_tokens"] == -(-shown // 4)


@SETTINGS
@given(text=pieces, prompt=tokens, cached_share=st.floats(0, 1), completion=st.integers(0, 100_000),
       usage=st.booleans(), ending=endings, is_async=st.booleans())
def test_openai_chat_streams(text: list[str], prompt: int, cached_share: float, completion: int, usage: bool,
                             ending: tuple[str, int], is_async: bool) -> None:
    cached = int(prompt * cached_share)
    events = sse.openai_chat(text, usage=usage, prompt_tokens=prompt, cached=cached, completion_tokens=completion)
    got = play(events, ending, is_async, "openai")

    def items_of(evs: list[sse.Event]) -> list[str]:
        return ["usage" if not data["choices"] else "chunk" for _, data in evs if data != "[DONE]"]

    expected, natural_end = delivered(events, ending, items_of)
    # the terminal event is the chunk with a finish_reason: the one before the usage chunk / [DONE]
    finish_at = len(text) + 1
    check_outcome(got, expected, natural_end, len(expected) > finish_at, ending, "APIConnectionError")
    attrs = got["span"]
    if "usage" in expected:
        assert attrs["llmtrace.usage.source"] == "provider"
        assert attrs["gen_ai.usage.input_tokens"] == prompt
        assert attrs["gen_ai.usage.output_tokens"] == completion
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == cached
    elif expected:
        assert attrs["llmtrace.usage.source"] == "estimated"
        shown = sum(len(p) for p in text[: max(len(expected) - 1, 0)])
        assert attrs["gen_ai.usage.output_tokens"] == -(-shown // 4)
