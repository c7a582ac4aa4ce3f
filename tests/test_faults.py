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
