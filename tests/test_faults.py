"""The fault matrix: every call style x every way a stream ends or fails, sync and async.

Each cell runs the same scenario bare and instrumented and asserts: the app sees the same items and the
same exception (type and message), exactly one llmtrace span ends, with the contract's outcome, and no
warning reaches the app.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any, Callable

import pytest

import llmtrace
from tests import sse
from tests.conftest import FakeAPI, make_anthropic, make_openai

A = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
USAGE = {"stream_options": {"include_usage": True}}
RESP = {"model": "gpt-4o-mini", "input": "Hi"}
TEXT = ["a"] * 8

# call style: (sdk, body kind, opener(client) -> stream or stream manager, is a manager)
STYLES: dict[str, tuple[str, str, Callable[[Any], Any], bool]] = {
    "anthropic-create": ("anthropic", "messages", lambda c: c.messages.create(**A, stream=True), False),
    "anthropic-stream": ("anthropic", "messages", lambda c: c.messages.stream(**A), True),
    "chat-create": ("openai", "chat", lambda c: c.chat.completions.create(**CHAT, **USAGE, stream=True), False),
    "chat-stream": ("openai", "chat", lambda c: c.chat.completions.stream(**CHAT, **USAGE), True),
    "responses-create": ("openai", "responses", lambda c: c.responses.create(**RESP, stream=True), False),
    "responses-stream": ("openai", "responses", lambda c: c.responses.stream(**RESP), True),
}


def body(kind: str, fault: str) -> list[sse.Event]:
    events = {"messages": sse.anthropic(TEXT), "chat": sse.openai_chat(TEXT), "responses": sse.openai_responses(TEXT)}[kind]
    if fault == "error-event":
        error = {"messages": ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                 "chat": (None, {"error": {"message": "Overloaded", "type": "server_error", "code": "overloaded"}}),
                 "responses": ("error", {"type": "error", "code": "server_error", "message": "Overloaded", "param": None,
                                         "sequence_number": 6})}[kind]
        return events[:6] + [error]
    if fault == "malformed-json":
        return events[:5] + [(events[5][0], "{not json")] + events[5:]
    if fault == "unknown-event":
        unknown = {"messages": ("future_event", {"type": "future_event", "detail": 1}),
                   "chat": (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
                                   "model": "gpt-4o-mini", "choices": [], "future_field": {"x": 1}}),
                   "responses": ("response.future_event", {"type": "response.future_event", "sequence_number": 5})}[kind]
        return events[:5] + [unknown] + events[5:]
    if fault == "no-usage":
        if kind == "messages":  # a message_delta without its usage block
            return [(n, {k: v for k, v in d.items() if k != "usage"} if n == "message_delta" else d) for n, d in events]
        if kind == "chat":
            return sse.openai_chat(TEXT, usage=False)
        return sse.openai_responses(TEXT, usage={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                                                 "input_tokens_details": {"cached_tokens": 0},
                                                 "output_tokens_details": {"reasoning_tokens": 0}})
    return events


HTTP_ERRORS = {
    429: {"anthropic": {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}},
          "openai": {"error": {"message": "Slow down", "type": "requests", "code": "rate_limit_exceeded"}}},
    500: {"anthropic": {"type": "error", "error": {"type": "api_error", "message": "Internal"}},
          "openai": {"error": {"message": "Internal", "type": "server_error", "code": None}}},
}


def reply(api: FakeAPI, sdk: str, kind: str, fault: str) -> None:
    if fault in ("http-429", "http-500"):
        status = int(fault[-3:])
        api.json(HTTP_ERRORS[status][sdk], status=status, headers={"retry-after": "1"})
    else:
        api.sse(body(kind, fault), fail_after=5 if fault == "transport-drop" else None)


# --- scenarios: what the app does with the stream ---
def sync_run(how: str, open_call: Callable[[], Any], manager: bool) -> list[Any]:
    seen: list[Any] = []

    def opened() -> Any:
        return open_call().__enter__() if manager else open_call()

    if how == "break":
        for i, event in enumerate(opened()):
            seen.append(event)
            if i == 2:
                break
    elif how == "close":
        stream = opened()
        seen.append(next(iter(stream)))
        stream.close()
    elif how in ("with", "consumer-exception"):
        with open_call() as stream:
            for event in stream:
                seen.append(event)
                if how == "consumer-exception":
                    raise KeyError("app bug")
                break
    elif how == "gc":
        stream = opened()
        seen.append(next(iter(stream)))
        del stream
        gc.collect()
    elif manager:
        with open_call() as stream:
            seen.extend(stream)
    else:
        seen.extend(open_call())
    return seen


async def async_run(how: str, open_call: Callable[[], Any], manager: bool) -> list[Any]:
    seen: list[Any] = []

    async def opened() -> Any:
        return await (open_call().__aenter__() if manager else open_call())

    if how == "break":
        async for event in await opened():
            seen.append(event)
            if len(seen) == 3:
                break
    elif how == "close":
        stream = await opened()
        seen.append(await stream.__aiter__().__anext__())
        await stream.close()
    elif how in ("with", "consumer-exception"):
        context = open_call() if manager else await open_call()
        async with context as stream:
            async for event in stream:
                seen.append(event)
                if how == "consumer-exception":
                    raise KeyError("app bug")
                break
    elif how == "gc":
        stream = await opened()
        seen.append(await stream.__aiter__().__anext__())
        del stream
        gc.collect()
        for _ in range(3):  # the loop finalizes dropped async generators on its next turns
            await asyncio.sleep(0)
    elif how == "cancel":
        async def consume() -> None:
            context = open_call() if manager else await open_call()
            async with context as stream:
                async for event in stream:
                    seen.append(event)
                    await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        while not seen:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    elif manager:
        async with open_call() as stream:
            seen.extend([event async for event in stream])
    else:
        seen.extend([event async for event in await open_call()])
    return seen


READS = {"drain", "transport-drop", "error-event", "http-429", "http-500", "malformed-json", "unknown-event", "no-usage"}
APP_ENDS = ["break", "close", "with", "gc", "consumer-exception", "cancel"]


def expected(style: str, fault: str) -> tuple[str, str | None]:
    sdk, kind = STYLES[style][0], STYLES[style][1]
    if fault in APP_ENDS:
        return "abandoned", None
    if fault == "transport-drop":
        return "error", "ReadError" if sdk == "anthropic" else "APIConnectionError"
    if fault == "error-event":
        return "error", {"messages": "overloaded_error", "chat": "server_error", "responses": "server_error"}[kind]
    if fault.startswith("http-"):
        # one fault, one name: the SDKs' exception class, the same in both (the providers' own types differ)
        return "error", {"http-429": "RateLimitError", "http-500": "InternalServerError"}[fault]
    if fault == "malformed-json":
        return "error", "JSONDecodeError"
    if fault == "no-usage" and style == "anthropic-stream":
        # The SDK's helper itself raises on a message_delta without usage: to the raw stream its reader is a
        # consumer that stopped reading.
        return "abandoned", None
    return "completed", None  # drain, unknown-event, no-usage


def app_view(run: Callable[[], list[Any]]) -> tuple[list[Any] | None, tuple[str, str] | None]:
    try:
        return [e.model_dump() if hasattr(e, "model_dump") else e for e in run()], None
    except Exception as exc:
        return None, (type(exc).__name__, str(exc))


@pytest.mark.parametrize("fault", ["drain", *APP_ENDS, *sorted(READS - {"drain"})])
@pytest.mark.parametrize("style", list(STYLES))
def test_fault_matrix(telemetry, mode, style, fault):
    if fault == "cancel" and mode == "sync":
        pytest.skip("cancellation is an asyncio task's")
    sdk, kind, opener, manager = STYLES[style]
    is_async = mode == "async"

    def scenario() -> list[Any]:
        api = FakeAPI()
        reply(api, sdk, kind, fault)
        client = (make_anthropic if sdk == "anthropic" else make_openai)(api, is_async)
        how = fault if fault in APP_ENDS else "drain"
        if is_async:
            return asyncio.run(async_run(how, lambda: opener(client), manager))
        return sync_run(how, lambda: opener(client), manager)

    llmtrace.uninstrument()
    with warnings.catch_warnings(record=True) as bare_warnings:
        warnings.simplefilter("always")
        bare = app_view(scenario)
        gc.collect()
    telemetry.instrument()
    with warnings.catch_warnings(record=True) as traced_warnings:
        warnings.simplefilter("always")
        traced = app_view(scenario)
        gc.collect()
    assert traced == bare  # same items, same exception type and message
    assert [str(w.message) for w in traced_warnings] == [str(w.message) for w in bare_warnings]

    [span] = telemetry.spans()  # exactly one, ended
    outcome, error_type = expected(style, fault)
    assert span.attributes["llmtrace.stream.outcome"] == outcome
    assert (span.status.status_code.name == "ERROR") == (outcome == "error")
    assert span.attributes.get("error.type") == error_type
    if fault == "break" and not manager:
        assert span.attributes["llmtrace.stream.chunks"] == 3
    if fault == "no-usage" and kind == "chat":
        assert span.attributes["llmtrace.usage.source"] == "estimated"


# --- plain (non-streamed) calls stopped by the app before their response arrived ---
PLAIN = {
    "anthropic-plain": ("anthropic", lambda c: c.messages.create(**A)),
    "chat-plain": ("openai", lambda c: c.chat.completions.create(**CHAT)),
    "responses-plain": ("openai", lambda c: c.responses.create(**RESP)),
}


class Unanswered:
    """A provider that takes requests and never answers (or, sync, is interrupted by Ctrl-C while waiting)."""

    def __init__(self) -> None:
        self.arrived: asyncio.Event | None = None

    def sync_handler(self, request: Any) -> Any:
        raise KeyboardInterrupt  # delivered to the thread making the call, as Ctrl-C is to the main thread

    async def async_handler(self, request: Any) -> Any:
        assert self.arrived is not None
        self.arrived.set()
        await asyncio.sleep(3600)


def plain_client(sdk: str, server: Unanswered, is_async: bool) -> Any:
    api = FakeAPI()
    api.sync_handler, api.async_handler = server.sync_handler, server.async_handler  # type: ignore[method-assign]
    return (make_anthropic if sdk == "anthropic" else make_openai)(api, is_async)


async def stopped_plain_call(how: str, sdk: str, call: Callable[[Any], Any]) -> type[BaseException]:
    server = Unanswered()
    server.arrived = asyncio.Event()
    client = plain_client(sdk, server, True)
    if how == "wait_for":
        try:
            await asyncio.wait_for(call(client), 0.05)  # the server never answers: this always times out
        except asyncio.TimeoutError as exc:
            return type(exc)
    else:
        task = asyncio.create_task(call(client))
        await asyncio.wait_for(server.arrived.wait(), 60)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            return type(exc)
    raise AssertionError("the call was not stopped")


@pytest.mark.parametrize("how", ["wait_for", "task-cancel", "ctrl-c"])
@pytest.mark.parametrize("style", list(PLAIN))
def test_plain_call_stopped_before_its_response(telemetry, style, how):
    sdk, call = PLAIN[style]
    if how == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            call(plain_client(sdk, Unanswered(), False))
        expected_type = "KeyboardInterrupt"
    else:
        seen = asyncio.run(stopped_plain_call(how, sdk, call))
        assert seen is (asyncio.TimeoutError if how == "wait_for" else asyncio.CancelledError)
        expected_type = "CancelledError"  # what reaches the call inside wait_for, too

    [span] = telemetry.spans()
    attrs = span.attributes
    assert attrs["llmtrace.stream.outcome"] == "error"
    assert attrs["error.type"] == expected_type
    assert span.status.status_code.name == "ERROR"
    assert not any(k.startswith("gen_ai.usage.") for k in attrs)  # no response: nothing to estimate
    assert "llmtrace.usage.source" not in attrs and "llmtrace.cost.usd" not in attrs
    [(point_attrs, point)] = telemetry.points("llmtrace.requests")
    assert point_attrs["llmtrace.stream.outcome"] == "error" and point.value == 1
    assert not telemetry.points("llmtrace.cost.usd")
    [(duration_attrs, _)] = telemetry.points("gen_ai.client.operation.duration")
    assert duration_attrs["error.type"] == expected_type


# --- every way the SDKs close a stream ends the span at once (not at garbage collection) ---
def test_openai_async_stream_aclose_ends_the_span(telemetry):
    import time

    api = FakeAPI().sse(sse.openai_chat(TEXT))
    client = make_openai(api, True)

    async def go() -> Any:
        stream = await client.chat.completions.create(**CHAT, **USAGE, stream=True)
        await stream.__anext__()
        await stream.aclose()  # what LiteLLM's `async with` awaits: openai's alias of close()
        return stream, time.time_ns()

    stream, closed_at = asyncio.run(go())
    [span] = telemetry.spans()  # ended by aclose(): `stream` is still referenced here
    assert span.attributes["llmtrace.stream.outcome"] == "abandoned"
    assert span.attributes["llmtrace.stream.chunks"] == 1
    assert span.end_time <= closed_at
    assert stream.response.is_closed


def test_close_aliases_exist_exactly_where_the_sdk_has_them(telemetry, mode):
    is_async = mode == "async"
    for sdk, open_stream in (("anthropic", lambda c: c.messages.create(**A, stream=True)),
                             ("openai", lambda c: c.chat.completions.create(**CHAT, stream=True))):
        make = make_anthropic if sdk == "anthropic" else make_openai
        streams = []
        for instrumented in (False, True):
            if not instrumented:
                llmtrace.uninstrument()
            else:
                telemetry.instrument()
            client = make(FakeAPI().sse(body("messages" if sdk == "anthropic" else "chat", "drain")), is_async)

            async def opened() -> Any:
                return await open_stream(client)
            streams.append(asyncio.run(opened()) if is_async else open_stream(client))
        bare, traced = streams
        for alias in ("close", "aclose"):
            assert hasattr(traced, alias) == hasattr(bare, alias), (sdk, mode, alias)
