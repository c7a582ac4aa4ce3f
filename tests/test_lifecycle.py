"""Each way a stream can end, ends the span exactly once with the contract's outcome; the app sees what it saw bare."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, Callable

import pytest

import llmtrace
from tests import sse
from tests.conftest import FakeAPI, make_anthropic, make_openai

A = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
O = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream_options": {"include_usage": True}}
TEXT = ["a"] * 8
ERROR_EVENT = {
    "anthropic": ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    "openai": (None, {"error": {"message": "Overloaded", "type": "server_error", "code": "overloaded"}}),
}


def body(sdk: str) -> list[sse.Event]:
    return sse.anthropic(TEXT) if sdk == "anthropic" else sse.openai_chat(TEXT)


def opener(sdk: str, api: FakeAPI, is_async: bool) -> Callable[[], Any]:
    if sdk == "anthropic":
        client = make_anthropic(api, is_async)
        return lambda: client.messages.create(**A, stream=True)
    client = make_openai(api, is_async)
    return lambda: client.chat.completions.create(**O, stream=True)


def sync_scenario(how: str, open_stream: Callable[[], Any]) -> list[Any]:
    seen: list[Any] = []
    if how == "break":
        for i, event in enumerate(open_stream()):  # the stream itself is a temporary here
            seen.append(event)
            if i == 2:
                break
    elif how == "close":
        stream = open_stream()
        seen.append(next(stream))
        stream.close()
    elif how == "with":
        with open_stream() as stream:
            seen.append(next(iter(stream)))
    elif how == "gc":
        stream = open_stream()
        seen.append(next(stream))
        del stream
        gc.collect()
    else:  # drain, transport drop, error event, truncated: read it all
        seen.extend(open_stream())
    return seen


async def async_scenario(how: str, open_stream: Callable[[], Any]) -> list[Any]:
    seen: list[Any] = []
    if how == "break":
        i = 0
        async for event in await open_stream():
            seen.append(event)
            i += 1
            if i == 3:
                break
    elif how == "close":
        stream = await open_stream()
        seen.append(await stream.__anext__())
        await stream.close()
    elif how == "with":
        async with await open_stream() as stream:
            async for event in stream:
                seen.append(event)
                break
    elif how == "gc":
        stream = await open_stream()
        seen.append(await stream.__anext__())
        del stream
        gc.collect()
        await asyncio.sleep(0)  # the loop finalizes dropped async generators on its next turn
        await asyncio.sleep(0)
    else:
        seen.extend([event async for event in await open_stream()])
    return seen


CASES = {  # how: (reply, expected outcome, error.type)
    "drain": (lambda sdk, api: api.sse(body(sdk)), "completed", None),
    "break": (lambda sdk, api: api.sse(body(sdk)), "abandoned", None),
    "close": (lambda sdk, api: api.sse(body(sdk)), "abandoned", None),
    "with": (lambda sdk, api: api.sse(body(sdk)), "abandoned", None),
    "gc": (lambda sdk, api: api.sse(body(sdk)), "abandoned", None),
    "transport-drop": (lambda sdk, api: api.sse(body(sdk), fail_after=4), "error",
                       {"anthropic": "ReadError", "openai": "APIConnectionError"}),  # openai wraps it
    "error-event": (lambda sdk, api: api.sse(body(sdk)[:4] + [ERROR_EVENT[sdk]]), "error",
                    {"anthropic": "overloaded_error", "openai": "server_error"}),
    "truncated": (lambda sdk, api: api.sse(body(sdk)[:4]), "error", "stream_truncated"),
}


def outcome_of(run: Callable[[], list[Any]]) -> tuple[list[Any] | None, tuple[str, str] | None]:
    try:
        return [e.model_dump() for e in run()], None
    except Exception as exc:  # the app's view: type and message
        return None, (type(exc).__name__, str(exc))


@pytest.mark.parametrize("how", list(CASES))
@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_exit_paths(telemetry, mode, sdk, how, recwarn):
    reply, outcome, error_type = CASES[how]
    is_async = mode == "async"

    def scenario() -> list[Any]:
        api = FakeAPI()
        reply(sdk, api)
        open_stream = opener(sdk, api, is_async)
        if is_async:
            return asyncio.run(async_scenario(how, open_stream))
        return sync_scenario(how, open_stream)

    llmtrace.uninstrument()
    bare = outcome_of(scenario)
    telemetry.instrument()
    traced = outcome_of(scenario)
    assert traced == bare  # same items, same exception type and message

    [span] = telemetry.spans()  # exactly one, ended
    assert span.attributes["llmtrace.stream.outcome"] == outcome
    assert (span.status.status_code.name == "ERROR") == (outcome == "error")
    expected_type = error_type[sdk] if isinstance(error_type, dict) else error_type
    assert span.attributes.get("error.type") == expected_type
    if how == "break":
        assert span.attributes["llmtrace.stream.chunks"] == 3
    assert not [w for w in recwarn if "llmtrace" in str(w.filename) or "never awaited" in str(w.message)]


def test_consumer_exception_is_not_an_llm_error(api, telemetry):
    client = make_anthropic(api.sse(body("anthropic")))
    with pytest.raises(KeyError):
        with client.messages.create(**A, stream=True) as stream:
            for _ in stream:
                raise KeyError("app bug")
    span = telemetry.span()
    assert span.attributes["llmtrace.stream.outcome"] == "abandoned"
    assert span.status.status_code.name == "UNSET"


def test_cancelled_consumer_task_abandons(api, telemetry):
    client = make_anthropic(api.sse(body("anthropic")), is_async=True)

    async def main() -> None:
        async def consume() -> None:
            async with await client.messages.create(**A, stream=True) as stream:
                async for _ in stream:
                    await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    span = telemetry.span()
    assert span.attributes["llmtrace.stream.outcome"] == "abandoned"
    assert span.status.status_code.name == "UNSET"


def test_http_error_before_the_stream(api, telemetry, mode):
    import anthropic

    api.json({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}, status=429,
             headers={"retry-after": "1"})
    client = make_anthropic(api, mode == "async")
    with pytest.raises(anthropic.RateLimitError):
        if mode == "async":
            asyncio.run(client.messages.create(**A, stream=True))
        else:
            client.messages.create(**A, stream=True)
    span = telemetry.span()
    assert span.attributes["llmtrace.stream.outcome"] == "error"
    assert span.attributes["error.type"] == "rate_limit_error"
    assert "llmtrace.stream.chunks" in span.attributes and span.attributes["llmtrace.stream.chunks"] == 0
