"""Invariants over generated streams (Hypothesis), for every streaming call style of both SDKs.

Each example serves one generated SSE body (any number of text deltas; usage present, absent or partial;
any cache numbers) and ends it one way: drained, broken out of after k items, closed after k items,
dropped and garbage-collected after k items, cut short by the server, or broken by the transport. The
same scenario runs on a bare client and on an instrumented one, and:

* the app sees exactly the items (and the exception) the bare SDK gives, and the SDK pulls exactly as
  many parts from the connection (llmtrace never reads ahead);
* exactly one llmtrace span ends, and one call is counted in the metrics, with the same outcome;
* `llmtrace.stream.chunks` is the number of raw items that reached the stream (pings and `[DONE]` aside);
* the outcome is `completed` once the terminal event arrived, `error` on a transport failure or a
  stream that ended without its terminal event, `abandoned` otherwise;
* token numbers: Anthropic input = uncached + cache read + cache write, output = the final cumulative
  `message_delta` value; OpenAI cached tokens as reported; `llmtrace.usage.source` is `provider` only
  when the provider's final usage arrived, and `estimated` (output counted from the text seen: by the
  tokenizer for an OpenAI stream that asked for no usage, else at four characters a token) otherwise.

The bare client is the same SDK class with its original, unpatched `request()`: the SDK code path is
the same, with llmtrace out of it, and no re-instrumenting between the two runs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import Iterator
from typing import Any, Callable

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llmtrace
from llmtrace._tokens import CHARS_PER_TOKEN, count_tokens, encode
from tests import sse
from tests.conftest import EXPORTER, TRACER_PROVIDER

EXAMPLES = {"anthropic": 500, "chat": 300, "responses": 250}  # OpenAI: chat + responses = 550
SETTINGS = {name: settings(max_examples=n, deadline=None, derandomize=True, database=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            for name, n in EXAMPLES.items()}
MESSAGES = [{"role": "user", "content": "hi"}]
RAN: dict[str, int] = {name: 0 for name in EXAMPLES}  # examples actually run, checked at the end

tokens = st.integers(0, 2_000_000)
maybe_tokens = st.none() | tokens
pieces = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
                  max_size=30)
# How the app or the transport ends the stream; the integer picks a position (k items, or a part).
endings = st.tuples(st.sampled_from(["drain", "break", "close", "gc", "drop", "cut"]), st.integers(0, 10_000))


class Server:
    """The provider: serves the current example's body one SSE part at a time, and counts the parts pulled."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.fail_after: int | None = None
        self.pulled = 0

    def serve(self, events: list[sse.Event], fail_after: int | None = None) -> None:
        self.parts, self.fail_after = sse.encode(events), fail_after

    def _body(self) -> Iterator[bytes]:
        for i, part in enumerate(self.parts):
            if i == self.fail_after:
                raise httpx2.ReadError("connection reset mid-stream")
            self.pulled += 1
            yield part

    def sync_handler(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=self._body())

    def async_handler(self, request: httpx2.Request) -> httpx2.Response:
        async def body() -> Any:
            for part in self._body():
                yield part

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


SERVER = Server()
READER = InMemoryMetricReader()
CLIENTS: dict[tuple[str, bool, bool], Any] = {}  # (sdk, is_async, traced) -> client, reused by every example


def _clients() -> None:
    import anthropic
    import openai
    from anthropic import _base_client as anthropic_base
    from openai import _base_client as openai_base

    for sdk, base, sync_cls, async_cls, url in (
            ("anthropic", anthropic_base, anthropic.Anthropic, anthropic.AsyncAnthropic, "http://mock.local"),
            ("openai", openai_base, openai.OpenAI, openai.AsyncOpenAI, "http://mock.local/v1")):
        for is_async, cls, client_base, http_cls, handler in (
                (False, sync_cls, base.SyncAPIClient, httpx2.Client, SERVER.sync_handler),
                (True, async_cls, base.AsyncAPIClient, httpx2.AsyncClient, SERVER.async_handler)):
            original = client_base.__dict__["request"]  # taken while uninstrumented: the SDK's own method
            assert type(original).__name__ == "function", original
            bare_cls = type(f"Bare{cls.__name__}", (cls,), {"request": original})
            for traced, make in ((False, bare_cls), (True, cls)):
                http = http_cls(transport=httpx2.MockTransport(handler))
                CLIENTS[sdk, is_async, traced] = make(api_key="test", base_url=url, http_client=http, max_retries=0)


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    llmtrace.uninstrument()
    _clients()
    meter_provider = MeterProvider(metric_readers=[READER], shutdown_on_exit=False)
    llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=meter_provider)
    # What loads on first use (the tokenizer's tables, the SDKs' models) loads now, to be frozen with the rest.
    count_tokens("warm")
    for sdk, events, create, helper in (
            ("anthropic", sse.anthropic(), anthropic_create, anthropic_stream),
            ("openai", sse.openai_chat(), chat_create(True), chat_stream(True)),
            ("openai", sse.openai_responses(), responses_create, responses_stream)):
        SERVER.serve(events)
        run_app(sdk, create, False, False, False, ("drain", 0))
        run_app(sdk, helper, True, False, False, ("drain", 0))
    gc.collect()
    gc.freeze()  # what exists now outlives every example: each example's collections then scan only its own objects
    yield
    gc.unfreeze()
    llmtrace.uninstrument()
    meter_provider.shutdown()
    for client in CLIENTS.values():
        asyncio.run(client.close()) if asyncio.iscoroutinefunction(client.close) else client.close()
    CLIENTS.clear()


# --- call styles: how a stream is opened ---
def anthropic_create(c: Any) -> Any:
    return c.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES, stream=True)


def anthropic_stream(c: Any) -> Any:
    return c.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)


def chat_create(include_usage: bool) -> Callable[[Any], Any]:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    return lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra)


def chat_stream(include_usage: bool) -> Callable[[Any], Any]:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    return lambda c: c.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, **extra)


def responses_create(c: Any) -> Any:
    return c.responses.create(model="gpt-4o-mini", input="hi", stream=True)


def responses_stream(c: Any) -> Any:
    return c.responses.stream(model="gpt-4o-mini", input="hi")


# --- the app: what it does with the stream ---
def view(item: Any) -> Any:
    return item.model_dump(exclude_unset=True) if hasattr(item, "model_dump") else repr(item)


def sync_app(open_call: Callable[[], Any], manager: bool, how: str, k: int, seen: list[Any]) -> None:
    if how in ("drain", "drop", "cut"):
        if manager:
            with open_call() as stream:
                for item in stream:
                    seen.append(view(item))
        else:
            for item in open_call():
                seen.append(view(item))
    elif how == "break":  # a `for` loop left after k items; nothing closes the stream but its collection
        context = open_call()
        stream = context.__enter__() if manager else context
        try:
            for item in stream:
                seen.append(view(item))
                if len(seen) >= k:
                    break
        finally:
            if manager:
                context.__exit__(None, None, None)
    else:  # close / gc after k items (k may be 0)
        context = open_call()
        stream = context.__enter__() if manager else context
        iterator = iter(stream)
        for _ in range(k):
            try:
                seen.append(view(next(iterator)))
            except StopIteration:
                break
        if how == "close":
            stream.close()
        else:
            del context, stream, iterator
            gc.collect()


async def async_app(open_call: Callable[[], Any], manager: bool, how: str, k: int, seen: list[Any]) -> None:
    if how in ("drain", "drop", "cut"):
        if manager:
            async with open_call() as stream:
                async for item in stream:
                    seen.append(view(item))
        else:
            async for item in await open_call():
                seen.append(view(item))
    elif how == "break":
        context = open_call() if manager else await open_call()
        stream = await context.__aenter__() if manager else context
        try:
            async for item in stream:
                seen.append(view(item))
                if len(seen) >= k:
                    break
        finally:
            if manager:
                await context.__aexit__(None, None, None)
    else:
        context = open_call() if manager else await open_call()
        stream = await context.__aenter__() if manager else context
        iterator = stream.__aiter__()
        for _ in range(k):
            try:
                seen.append(view(await iterator.__anext__()))
            except StopAsyncIteration:
                break
        if how == "close":
            await stream.close()
        else:
            del context, stream, iterator
            gc.collect()
            for _ in range(3):  # the loop finalizes dropped async generators on its next turns
                await asyncio.sleep(0)


def run_app(sdk: str, opener: Callable[[Any], Any], manager: bool, is_async: bool, traced: bool,
            ending: tuple[str, int]) -> dict[str, Any]:
    client = CLIENTS[sdk, is_async, traced]
    how, k = ending
    seen: list[Any] = []
    error = None
    SERVER.pulled = 0  # a body never started pulls nothing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if is_async:
                asyncio.run(async_app(lambda: opener(client), manager, how, k, seen))
            else:
                sync_app(lambda: opener(client), manager, how, k, seen)
        except Exception as exc:  # noqa: BLE001 - part of what the app sees
            error = (type(exc).__name__, str(exc))
        gc.collect()  # whatever the app dropped is collected, as it would be eventually
    return {"seen": seen, "error": error, "pulled": SERVER.pulled,
            "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}


def metric_totals() -> tuple[dict[str, float], float]:
    """Requests counted per outcome, and the sum of the chunk-count histogram, so far."""
    requests: dict[str, float] = {}
    chunks = 0.0
    data = READER.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    if metric.name == "llmtrace.requests":
                        outcome = point.attributes["llmtrace.stream.outcome"]
                        requests[outcome] = requests.get(outcome, 0) + point.value
                    elif metric.name == "llmtrace.stream.chunks":
                        chunks += point.sum
    return requests, chunks


def play(kind: str, events: list[sse.Event], opener: Callable[[Any], Any], manager: bool, is_async: bool,
         ending: tuple[str, int]) -> dict[str, Any]:
    """Runs the scenario bare, then traced; checks the app's view is the same; returns the traced run and its span."""
    RAN[kind] += 1
    sdk = "anthropic" if kind == "anthropic" else "openai"
    how, at = ending
    parts = len(events)
    if how == "drop":  # the connection breaks before part `at`
        SERVER.serve(events, fail_after=at % (parts + 1))
    elif how == "cut":  # the body ends early, without an error
        SERVER.serve(events[: at % parts])
    else:
        SERVER.serve(events)
    ending = (how, at % (parts + 2))  # k items: 0 .. past the end

    bare = run_app(sdk, opener, manager, is_async, False, ending)
    EXPORTER.clear()
    requests_before, chunks_before = metric_totals()
    traced = run_app(sdk, opener, manager, is_async, True, ending)
    assert traced["seen"] == bare["seen"]  # the same items, in the same order
    assert traced["error"] == bare["error"]  # the same exception, type and message
    assert traced["pulled"] == bare["pulled"]  # nothing read ahead, nothing left unread that the SDK reads
    assert traced["warnings"] == bare["warnings"]

    spans = [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]
    assert len(spans) == 1, spans  # exactly one span, ended by now
    [span] = spans
    outcome = span.attributes["llmtrace.stream.outcome"]
    requests_after, chunks_after = metric_totals()
    counted = {o: n - requests_before.get(o, 0) for o, n in requests_after.items() if n != requests_before.get(o, 0)}
    assert counted == {outcome: 1}  # one call in the metrics, with the span's outcome
    assert chunks_after - chunks_before == span.attributes["llmtrace.stream.chunks"]
    return {**traced, "ending": ending, "span": span.attributes, "status": span.status.status_code.name}


def check_outcome(got: dict[str, Any], delivered: list[Any], terminal: bool, drop_error: str) -> None:
    """Outcome and chunk count, from the raw items that reached the stream (`delivered`)."""
    attrs = got["span"]
    assert attrs["llmtrace.stream.chunks"] == len(delivered)
    how = got["ending"][0]
    if got["error"] is not None and got["error"][0] == drop_error:  # the transport broke under the stream
        assert how == "drop"
        assert attrs["llmtrace.stream.outcome"] == "error" and got["status"] == "ERROR"
        assert attrs["error.type"] == drop_error
    elif terminal:
        assert attrs["llmtrace.stream.outcome"] == "completed" and got["status"] != "ERROR"
        assert "error.type" not in attrs
    elif how in ("drain", "drop", "cut") and got["error"] is None:  # read to its end, without a terminal event
        assert attrs["llmtrace.stream.outcome"] == "error" and got["status"] == "ERROR"
        assert attrs["error.type"] == "stream_truncated"
    else:  # stopped by the app (or a helper's own exception) before the end
        assert attrs["llmtrace.stream.outcome"] == "abandoned" and got["status"] != "ERROR"
        assert "error.type" not in attrs


def estimated_output(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def data_of(events: list[sse.Event]) -> list[Any]:
    return [data if isinstance(data, str) else json.loads(json.dumps(data)) for _, data in events]


# --- Anthropic Messages: create(stream=True) and messages.stream() ---
@SETTINGS["anthropic"]
@given(text=pieces, uncached=tokens, read=maybe_tokens, write=maybe_tokens, output=st.integers(1, 100_000),
       delta=st.sampled_from(["output-only", "cumulative", "revised", "partial"]), revised=tokens,
       ending=endings, is_async=st.booleans(), helper=st.booleans())
def test_anthropic_streams(text: list[str], uncached: int, read: int | None, write: int | None, output: int,
                           delta: str, revised: int, ending: tuple[str, int], is_async: bool, helper: bool) -> None:
    delta_usage: dict[str, Any] = {"output_tokens": output}
    if delta == "cumulative":
        delta_usage.update(input_tokens=uncached, cache_read_input_tokens=read, cache_creation_input_tokens=write)
    elif delta == "revised":  # the final numbers differ from message_start's: they replace them
        delta_usage.update(input_tokens=revised, cache_read_input_tokens=revised // 3,
                           cache_creation_input_tokens=revised // 5)
    elif delta == "partial":  # present but null: message_start's numbers stand
        delta_usage.update(input_tokens=None, cache_read_input_tokens=None, cache_creation_input_tokens=None)
    events = sse.anthropic(text, input_tokens=uncached, cache_read=read, cache_write=write, output_tokens=output,
                           delta_usage=delta_usage, ping=bool(len(text) % 2))
    got = play("anthropic", events, anthropic_stream if helper else anthropic_create, helper, is_async, ending)

    raw = [(name, data) for name, data in events[: got["pulled"]] if name != "ping"]
    names = [name for name, _ in raw]
    if not helper:
        assert [item["type"] for item in got["seen"]] == names  # the raw stream: one item per event
    check_outcome(got, raw, "message_stop" in names, "ReadError")
    attrs = got["span"]
    if "message_start" not in names:
        assert "gen_ai.usage.input_tokens" not in attrs and "llmtrace.usage.source" not in attrs
        return
    final_uncached, final_read, final_write = uncached, read or 0, write or 0
    if "message_delta" in names and delta in ("cumulative", "revised"):
        final_uncached = delta_usage["input_tokens"]
        final_read = delta_usage["cache_read_input_tokens"] or 0 if delta == "revised" else final_read
        final_write = delta_usage["cache_creation_input_tokens"] or 0 if delta == "revised" else final_write
    assert attrs["gen_ai.usage.input_tokens"] == final_uncached + final_read + final_write
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == final_read
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == final_write
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == final_write
    if "message_delta" in names:
        assert attrs["llmtrace.usage.source"] == "provider"
        assert attrs["gen_ai.usage.output_tokens"] == output  # the final value, never added to the placeholder
    else:
        assert attrs["llmtrace.usage.source"] == "estimated"
        shown = sum(len(d["delta"]["text"]) for name, d in raw if name == "content_block_delta")
        assert attrs["gen_ai.usage.output_tokens"] == estimated_output(shown)


# --- OpenAI Chat Completions: create(stream=True) and chat.completions.stream(), with and without usage ---
@SETTINGS["chat"]
@given(text=pieces, prompt=tokens, cached_share=st.floats(0, 1), completion=st.integers(0, 100_000),
       include_usage=st.booleans(), details=st.sampled_from(["full", "no-details", "null-cached"]),
       ending=endings, is_async=st.booleans(), helper=st.booleans())
def test_openai_chat_streams(text: list[str], prompt: int, cached_share: float, completion: int,
                             include_usage: bool, details: str, ending: tuple[str, int], is_async: bool,
                             helper: bool) -> None:
    cached = int(prompt * cached_share)
    events = sse.openai_chat(text, usage=include_usage, prompt_tokens=prompt, cached=cached,
                             completion_tokens=completion)
    if include_usage and details != "full":  # usage details are optional, and so are their fields
        usage = events[-2][1]["usage"]
        if details == "no-details":
            del usage["prompt_tokens_details"], usage["completion_tokens_details"]
        else:
            usage["prompt_tokens_details"]["cached_tokens"] = None
    opener = (chat_stream if helper else chat_create)(include_usage)
    got = play("chat", events, opener, helper, is_async, ending)

    raw = [data for data in data_of(events[: got["pulled"]]) if data != "[DONE]"]
    if not helper:
        assert [item["choices"] for item in got["seen"]] == [d["choices"] for d in raw]
    # the terminal event is the chunk with a finish_reason
    terminal = any(d["choices"] and d["choices"][0]["finish_reason"] for d in raw)
    check_outcome(got, raw, terminal, "APIConnectionError")
    attrs = got["span"]
    usage_chunks = [d["usage"] for d in raw if not d["choices"] and d.get("usage")]
    if usage_chunks:
        [usage] = usage_chunks
        assert attrs["llmtrace.usage.source"] == "provider"
        assert attrs["gen_ai.usage.input_tokens"] == prompt  # includes the cached tokens
        assert attrs["gen_ai.usage.output_tokens"] == completion
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == (cached if details == "full" else 0)
    elif raw:
        assert attrs["llmtrace.usage.source"] == "estimated"
        text = "".join(d["choices"][0]["delta"].get("content") or "" for d in raw if d["choices"])
        # a stream asked for no usage is counted by the tokenizer; one cut before its usage, at 4 characters
        expected = estimated_output(len(text)) if include_usage else len(encode(text))
        assert attrs["gen_ai.usage.output_tokens"] == expected
        assert "gen_ai.usage.cache_read.input_tokens" not in attrs  # unknown, not a made-up zero
    else:
        assert "llmtrace.usage.source" not in attrs


# --- OpenAI Responses: create(stream=True) and responses.stream() ---
@SETTINGS["responses"]
@given(text=pieces, input_tokens=tokens, cached_share=st.floats(0, 1), output=st.integers(0, 100_000),
       usage=st.sampled_from(["full", "absent", "no-details"]), ending=endings, is_async=st.booleans(),
       helper=st.booleans())
def test_openai_responses_streams(text: list[str], input_tokens: int, cached_share: float, output: int, usage: str,
                                  ending: tuple[str, int], is_async: bool, helper: bool) -> None:
    cached = int(input_tokens * cached_share)
    events = sse.openai_responses(text, usage=sse.responses_usage(input_tokens, cached, output))
    final = events[-1][1]["response"]
    if usage == "absent":
        final["usage"] = None
    elif usage == "no-details":
        final["usage"]["input_tokens_details"] = None
    got = play("responses", events, responses_stream if helper else responses_create, helper, is_async, ending)

    raw = data_of(events[: got["pulled"]])
    types = [d["type"] for d in raw]
    if not helper:
        assert [item["type"] for item in got["seen"]] == types
    check_outcome(got, raw, "response.completed" in types, "APIConnectionError")
    attrs = got["span"]
    if "response.completed" in types and usage != "absent":
        assert attrs["llmtrace.usage.source"] == "provider"
        assert attrs["gen_ai.usage.input_tokens"] == input_tokens
        assert attrs["gen_ai.usage.output_tokens"] == output
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == (cached if usage == "full" else 0)
    elif raw:
        assert attrs["llmtrace.usage.source"] == "estimated"
        shown = sum(len(d["delta"]) for d in raw if d["type"] == "response.output_text.delta")
        assert attrs["gen_ai.usage.output_tokens"] == estimated_output(shown)
    else:
        assert "llmtrace.usage.source" not in attrs


def test_examples_ran() -> None:
    """At least 500 generated streams per SDK went through the checks above (when run in this module)."""
    if not all(RAN.values()):
        pytest.skip("run together with the property tests")
    assert RAN["anthropic"] >= 500
    assert RAN["chat"] + RAN["responses"] >= 500
