"""The emulator speaks the providers' wire formats: the same event sequences and fields as the reference
bodies (tests/sse.py, taken from the real APIs), and the unmodified SDKs work against it."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests import sse
from tests.conftest import run
from tests.emulator.conftest import clients

SYSTEM = "You answer questions about the handbook. " * 300  # ~2,700 tokens: cacheable on every model here


def raw_events(emulator: Any, path: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """(event name, data) of a streamed reply, read straight off the wire."""
    with httpx2.Client(base_url=emulator.url) as http:
        reply = http.post(path, json=body, headers={"x-api-key": "unused"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    return parse(reply.content)


def parse(body: bytes) -> list[tuple[str | None, Any]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def reference(events: list[sse.Event]) -> list[tuple[str | None, Any]]:
    return parse(b"".join(sse.encode(events)))


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not contents."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def collapse(names: list[Any]) -> list[Any]:
    """Event names with repeats folded: the reference streams two deltas, the emulator as many as it generates."""
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]


def assert_same_shapes(got: list[tuple[str | None, Any]], want: list[tuple[str | None, Any]], key: Any) -> None:
    wanted = {key(name, data): shape(data) for name, data in want}
    for name, data in got:
        k = key(name, data)
        if k in wanted:
            assert _fields(shape(data)) >= _fields(wanted[k]), k


def _fields(s: Any, prefix: str = "") -> set[str]:
    """Every key path of a shape, ignoring where the reference has null (a value that may be absent)."""
    if isinstance(s, dict):
        return {p for k, v in s.items() if v is not None for p in {prefix + k} | _fields(v, prefix + k + ".")}
    if isinstance(s, list) and s:
        return _fields(s[0], prefix + "[].")
    return set()


def test_anthropic_stream_matches_reference(emulator: Any) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 40, "stream": True,
            "system": [{"type": "text", "text": SYSTEM * 2, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}]}
    got = raw_events(emulator, "/v1/messages", body)
    want = reference(sse.anthropic())
    assert collapse([n for n, _ in got]) == collapse([n for n, _ in want])
    assert all(data["type"] == name for name, data in got)
    assert_same_shapes(got, want, key=lambda name, data: name)
    start, delta = got[0][1]["message"]["usage"], got[-2][1]["usage"]
    # message_delta's usage is cumulative: the same input and cache numbers, the final output count
    assert {k: delta[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")} == \
           {k: start[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
    texts = [d["delta"]["text"] for n, d in got if n == "content_block_delta"]
    assert delta["output_tokens"] == 40 and len(texts) > 10
    assert start["cache_creation_input_tokens"] == start["cache_creation"]["ephemeral_5m_input_tokens"] > 4096


def test_openai_chat_stream_matches_reference(emulator: Any) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]}
    got = raw_events(emulator, "/v1/chat/completions", body)
    want = reference(sse.openai_chat())
    assert all(name is None for name, _ in got) and got[-1][1] == "[DONE]"
    chunks = [d for _, d in got[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and all(c["usage"] is None for c in chunks[:-1])
    assert_same_shapes(got[:-1], want[:-1], key=_chunk_kind)
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def _chunk_kind(_: Any, chunk: dict[str, Any]) -> str:
    if not chunk["choices"]:
        return "usage"
    return "finish" if chunk["choices"][0]["finish_reason"] else "delta"


def test_openai_chat_stream_without_include_usage_has_no_usage_field(emulator: Any) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    chunks = [d for _, d in raw_events(emulator, "/v1/chat/completions", body)[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_openai_responses_stream_matches_reference(emulator: Any) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "input": "hi", "instructions": SYSTEM}
    got = raw_events(emulator, "/v1/responses", body)
    want = reference(sse.openai_responses())
    assert collapse([n for n, _ in got]) == collapse([n for n, _ in want])
    assert [d["sequence_number"] for _, d in got] == list(range(len(got)))
    assert_same_shapes(got, want, key=lambda name, data: name)
    final = got[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "".join(
        d["delta"] for n, d in got if n == "response.output_text.delta")


@pytest.mark.parametrize("path,body,want", [
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
     sse.anthropic_message()),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
     sse.openai_chat_completion()),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}, sse.openai_response_object()),
])
def test_plain_replies_match_reference(emulator: Any, path: str, body: dict[str, Any], want: dict[str, Any]) -> None:
    with httpx2.Client(base_url=emulator.url) as http:
        got = http.post(path, json=body).json()
    assert _fields(shape(got)) >= _fields(shape(want))


async def _consume_async(stream: Any) -> list[Any]:
    return [item async for item in stream]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_unmodified_sdks_stream_and_plain(emulator: Any, is_async: bool) -> None:
    a, o = clients(emulator, is_async)
    system = [{"type": "text", "text": SYSTEM * 2, "cache_control": {"type": "ephemeral"}}]
    chat = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]

    async def both() -> dict[str, Any]:
        async def maybe(value: Any) -> Any:
            return await value if is_async else value

        out: dict[str, Any] = {}
        out["message"] = await maybe(a.messages.create(model="claude-haiku-4-5", max_tokens=30, system=system,
                                                       messages=[{"role": "user", "content": "hi"}]))
        stream = await maybe(a.messages.create(model="claude-haiku-4-5", max_tokens=30, system=system, stream=True,
                                               messages=[{"role": "user", "content": "hi"}]))
        out["events"] = await _consume_async(stream) if is_async else list(stream)
        out["completion"] = await maybe(o.chat.completions.create(model="gpt-4o-mini", messages=chat))
        stream = await maybe(o.chat.completions.create(model="gpt-4o-mini", messages=chat, stream=True,
                                                       stream_options={"include_usage": True}))
        out["chunks"] = await _consume_async(stream) if is_async else list(stream)
        out["response"] = await maybe(o.responses.create(model="gpt-4o-mini", input="hi", instructions=SYSTEM))
        return out

    out = asyncio_run(both()) if is_async else run_sync(both())
    assert out["message"].usage.cache_creation_input_tokens > 0  # written by the first call...
    assert out["events"][0].message.usage.cache_read_input_tokens == out["message"].usage.cache_creation_input_tokens
    assert [e.type for e in out["events"]][-2:] == ["message_delta", "message_stop"]
    assert out["completion"].usage.prompt_tokens_details.cached_tokens == 0
    assert out["chunks"][-1].usage.prompt_tokens_details.cached_tokens >= 1024  # ...and read by the second
    assert out["response"].output_text and out["response"].usage.input_tokens > 2000


def test_sdk_stream_helpers(emulator: Any) -> None:
    a, o = clients(emulator)
    with a.messages.stream(model="claude-haiku-4-5", max_tokens=25,
                           messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert stream.get_final_message().content[0].text == text
    assert stream.get_final_message().stop_reason == "max_tokens"
    with o.chat.completions.stream(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    with o.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        assert stream.get_final_response().status == "completed"


def test_bad_requests_get_provider_errors(emulator: Any) -> None:
    import anthropic
    import openai

    a, o = clients(emulator)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        a.messages.create(model="claude-haiku-4-5", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    marked = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        a.messages.create(model="claude-haiku-4-5", max_tokens=5, system=marked,
                          messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        o.chat.completions.create(model="gpt-4o-mini", messages=[])


def run_sync(coro: Any) -> Any:
    """Drive a coroutine that never really awaits (the sync clients) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("a sync client awaited")


def asyncio_run(coro: Any) -> Any:
    return run(coro)
