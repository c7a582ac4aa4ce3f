"""Every covered call, sync and async, yields one CLIENT span with the contract's attributes, checked against the body sent."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests import sse
from tests.conftest import make_anthropic, make_openai, run

MSGS = [{"role": "user", "content": "Hi"}]
A = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": MSGS}
O = {"model": "gpt-4o-mini", "messages": MSGS}


async def adrain(stream: Any) -> list[Any]:
    return [event async for event in stream]


def consume(mode: str, stream: Any) -> list[Any]:
    return run(adrain(stream)) if mode == "async" else list(stream)


def assert_anthropic_span(span: Any, *, chunks: int | None = 7, stream: bool = True) -> None:
    attrs = span.attributes
    assert span.name == "chat claude-haiku-4-5"
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-haiku-4-5"
    assert attrs["gen_ai.request.stream"] is stream
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["server.address"] == "mock.local" and attrs["server.port"] == 80
    assert attrs["gen_ai.response.id"] == "msg_01ABC"
    assert attrs["gen_ai.response.model"] == "claude-haiku-4-5"
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attrs["gen_ai.usage.input_tokens"] == 12 + 4096 + 2048
    assert attrs["gen_ai.usage.output_tokens"] == 15
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 4096
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 2048
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 2048
    assert attrs["llmtrace.usage.source"] == "provider"
    assert attrs["llmtrace.cache.hit_ratio"] == pytest.approx(4096 / 6156)
    assert attrs["llmtrace.cache.outcome"] == "partial"
    assert attrs["llmtrace.stream.outcome"] == "completed"
    if stream:
        assert attrs["llmtrace.stream.chunks"] == chunks
        assert 0 < attrs["llmtrace.stream.time_to_first_event"] <= attrs["gen_ai.response.time_to_first_chunk"]
        assert attrs["llmtrace.stream.max_chunk_gap"] >= 0
    else:
        assert not any(k.startswith("llmtrace.stream.") and k != "llmtrace.stream.outcome" for k in attrs)
        assert "gen_ai.response.time_to_first_chunk" not in attrs


def anthropic_reply(api: Any) -> Any:
    return api.sse(sse.anthropic(cache_read=4096, cache_write=2048))


# --- Anthropic ---
def test_anthropic_create_stream(api, telemetry, mode):
    client = make_anthropic(anthropic_reply(api), mode == "async")
    stream = run(client.messages.create(**A, stream=True))
    events = consume(mode, stream)
    assert [e.type for e in events][0] == "message_start" and len(events) == 7
    assert_anthropic_span(telemetry.span())
    assert api.sent()["stream"] is True


def test_anthropic_create_plain(api, telemetry, mode):
    client = make_anthropic(api.json(sse.anthropic_message(cache_read=4096, cache_write=2048)), mode == "async")
    message = run(client.messages.create(**A))
    assert message.content[0].text == "Hello, world"
    assert_anthropic_span(telemetry.span(), stream=False)


def test_anthropic_stream_helper(api, telemetry, mode):
    client = make_anthropic(anthropic_reply(api), mode == "async")
    if mode == "async":
        async def go() -> str:
            async with client.messages.stream(**A) as stream:
                text = "".join([t async for t in stream.text_stream])
                assert (await stream.get_final_message()).usage.output_tokens == 15
                return text
        text = run(go())
    else:
        with client.messages.stream(**A) as stream:
            text = "".join(stream.text_stream)
            assert stream.get_final_message().usage.output_tokens == 15
    assert text == "Hello, world"
    assert_anthropic_span(telemetry.span())  # raw events are counted, not the helper's synthetic ones


def test_anthropic_beta_create_and_stream(api, telemetry, mode):
    client = make_anthropic(api.sse(sse.anthropic(cache_read=4096, cache_write=2048), repeat=2), mode == "async")
    consume(mode, run(client.beta.messages.create(**A, stream=True)))
    if mode == "async":
        async def go() -> None:
            async with client.beta.messages.stream(**A) as stream:
                await stream.get_final_message()
        run(go())
    else:
        with client.beta.messages.stream(**A) as stream:
            stream.get_final_message()
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        assert_anthropic_span(span)


def test_anthropic_tool_runner_one_span_per_turn(api, telemetry):
    from anthropic import beta_tool

    @beta_tool
    def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: the city
        """
        return "sunny"

    api.sse(sse.anthropic_tool_use()).sse(sse.anthropic(cache_read=4096, cache_write=2048))
    client = make_anthropic(api)
    runner = client.beta.messages.tool_runner(**A, tools=[get_weather], stream=True)
    for message_stream in runner:
        for _ in message_stream:
            pass
    spans = telemetry.spans()
    assert [s.attributes["gen_ai.response.finish_reasons"] for s in spans] == [("tool_use",), ("end_turn",)]
    assert spans[0].attributes["llmtrace.stream.chunks"] == 6
    assert spans[0].attributes["gen_ai.response.time_to_first_chunk"] > 0  # tool input counts as content
    assert len(api.requests) == 2


def test_anthropic_raw_and_streaming_response(api, telemetry, mode):
    client = make_anthropic(api.sse(sse.anthropic(cache_read=4096, cache_write=2048), repeat=2), mode == "async")
    if mode == "async":
        async def go() -> None:
            raw = await client.messages.with_raw_response.create(**A, stream=True)
            assert raw.headers["content-type"] == "text/event-stream"
            await adrain(await raw.parse())
            async with client.messages.with_streaming_response.create(**A, stream=True) as response:
                await adrain(await response.parse())
        run(go())
    else:
        raw = client.messages.with_raw_response.create(**A, stream=True)
        assert raw.headers["content-type"] == "text/event-stream"
        list(raw.parse())
        with client.messages.with_streaming_response.create(**A, stream=True) as response:
            list(response.parse())
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        assert_anthropic_span(span)


def test_anthropic_vertex(api, telemetry, mode):
    from anthropic import AnthropicVertex, AsyncAnthropicVertex

    cls = AsyncAnthropicVertex if mode == "async" else AnthropicVertex
    client = make_anthropic(anthropic_reply(api), mode == "async", cls=cls, region="us-east5", project_id="p",
                            access_token="t", api_key=...)
    consume(mode, run(client.beta.messages.create(**A, stream=True)))  # beta: a copied method on Vertex
    span = telemetry.span()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert span.attributes["gen_ai.usage.input_tokens"] == 6156
    assert "streamRawPredict" in str(api.requests[0].url)


# --- OpenAI ---
def assert_openai_span(span: Any, *, stream: bool = True, chunks: int = 5, operation: str = "chat",
                       model: str = "gpt-4o-mini", input_tokens: int = 2006, output_tokens: int = 300,
                       cached: int = 1920, finish: str = "stop", response_id: str = "chatcmpl-1") -> None:
    attrs = span.attributes
    assert span.name == f"{operation} {model}"
    assert span.kind == SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == operation
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == model
    assert attrs["gen_ai.request.stream"] is stream
    assert attrs["gen_ai.response.id"] == response_id
    assert attrs["gen_ai.response.model"] == model
    assert attrs["gen_ai.response.finish_reasons"] == (finish,)
    assert attrs["gen_ai.usage.input_tokens"] == input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == output_tokens
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == cached
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 0
    assert attrs["llmtrace.usage.source"] == "provider"
    assert attrs["llmtrace.stream.outcome"] == "completed"
    assert attrs["llmtrace.cache.outcome"] == ("hit" if cached else "none")
    if stream:
        assert attrs["llmtrace.stream.chunks"] == chunks
        assert attrs["gen_ai.response.time_to_first_chunk"] >= attrs["llmtrace.stream.time_to_first_event"] > 0


def test_openai_chat_create_stream(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_chat()), mode == "async")
    stream = run(client.chat.completions.create(**O, stream=True, stream_options={"include_usage": True}))
    chunks = consume(mode, stream)
    assert len(chunks) == 5
    assert_openai_span(telemetry.span())


def test_openai_chat_stream_without_usage_is_estimated(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_chat(usage=False)), mode == "async")
    consume(mode, run(client.chat.completions.create(**O, stream=True)))
    attrs = telemetry.span().attributes
    assert attrs["llmtrace.usage.source"] == "estimated"
    assert attrs["gen_ai.usage.output_tokens"] == 3  # "Hello, world": 12 characters at 4 per token
    assert attrs["gen_ai.usage.input_tokens"] >= 1
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs  # unknown, not zero
    assert "llmtrace.cost.usd" not in attrs  # cache reads unknown: no cost is guessed (docs/pricing.md)
    assert attrs["llmtrace.stream.outcome"] == "completed"
    assert not telemetry.points("llmtrace.usage.tokens")  # estimates never reach the token counters
    assert not telemetry.points("llmtrace.cost.usd")


def test_openai_chat_plain(api, telemetry, mode):
    client = make_openai(api.json(sse.openai_chat_completion()), mode == "async")
    completion = run(client.chat.completions.create(**O))
    assert completion.choices[0].message.content == "Hello, world"
    assert_openai_span(telemetry.span(), stream=False)


def test_openai_chat_stream_helper(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_chat()), mode == "async")
    if mode == "async":
        async def go() -> Any:
            async with client.chat.completions.stream(**O, stream_options={"include_usage": True}) as stream:
                return await stream.get_final_completion()
        final = run(go())
    else:
        with client.chat.completions.stream(**O, stream_options={"include_usage": True}) as stream:
            final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello, world"
    assert_openai_span(telemetry.span())
    assert api.requests[0].headers["x-stainless-helper-method"] == "chat.completions.stream"


def test_openai_responses_stream_and_helper(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_responses(), repeat=2), mode == "async")
    consume(mode, run(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True)))
    if mode == "async":
        async def go() -> Any:
            async with client.responses.stream(model="gpt-4o-mini", input="Hi") as stream:
                return await stream.get_final_response()
        final = run(go())
    else:
        with client.responses.stream(model="gpt-4o-mini", input="Hi") as stream:
            final = stream.get_final_response()
    assert final.output_text == "Hello, world"
    for span in telemetry.spans():
        assert_openai_span(span, chunks=10, finish="completed", response_id="resp_1")


def test_openai_responses_retrieve_stream(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_responses()), mode == "async")
    consume(mode, run(client.responses.retrieve("resp_1", stream=True)))
    span = telemetry.span()
    assert span.name == "chat gpt-4o-mini"  # named from the response: a retrieve carries no model
    assert span.attributes["gen_ai.usage.input_tokens"] == 2006
    assert api.requests[0].method == "GET"


def test_openai_responses_plain(api, telemetry, mode):
    client = make_openai(api.json(sse.openai_response_object()), mode == "async")
    response = run(client.responses.create(model="gpt-4o-mini", input="Hi"))
    assert response.output_text == "Hello, world"
    assert_openai_span(telemetry.span(), stream=False, finish="completed", response_id="resp_1")


def test_openai_legacy_completions(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_completions()), mode == "async")
    model = "gpt-3.5-turbo-instruct"
    consume(mode, run(client.completions.create(model=model, prompt="Say hi", stream=True,
                                                stream_options={"include_usage": True})))
    assert_openai_span(telemetry.span(), operation="text_completion", model=model, chunks=3, input_tokens=5,
                       output_tokens=4, cached=0, response_id="cmpl-1")


def test_openai_raw_and_streaming_response(api, telemetry, mode):
    client = make_openai(api.sse(sse.openai_chat(), repeat=2), mode == "async")
    kwargs = dict(O, stream=True, stream_options={"include_usage": True})
    if mode == "async":
        async def go() -> None:
            raw = await client.chat.completions.with_raw_response.create(**kwargs)
            assert raw.headers["content-type"] == "text/event-stream"
            await adrain(raw.parse())
            async with client.chat.completions.with_streaming_response.create(**kwargs) as response:
                await adrain(await response.parse())
        run(go())
    else:
        raw = client.chat.completions.with_raw_response.create(**kwargs)
        assert raw.headers["content-type"] == "text/event-stream"
        list(raw.parse())
        with client.chat.completions.with_streaming_response.create(**kwargs) as response:
            list(response.parse())
    spans = telemetry.spans()
    assert len(spans) == 2
    for span in spans:
        assert_openai_span(span)


def test_openai_azure(api, telemetry, mode):
    from openai import AsyncAzureOpenAI, AzureOpenAI

    cls = AsyncAzureOpenAI if mode == "async" else AzureOpenAI
    client = make_openai(api.sse(sse.openai_chat()), mode == "async", cls=cls, api_version="2024-10-21",
                         azure_endpoint="https://example-resource.openai.azure.com", azure_deployment="gpt-4o-mini")
    consume(mode, run(client.chat.completions.create(**O, stream=True, stream_options={"include_usage": True})))
    span = telemetry.span()
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert span.attributes["server.address"] == "example-resource.openai.azure.com"
    assert span.attributes["server.port"] == 443
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 1920


def test_openai_compatible_base_url(api, telemetry):
    client = make_openai(api.sse(sse.openai_chat(model="llama3.2")), base_url="http://localhost:11434/v1")
    list(client.chat.completions.create(model="llama3.2", messages=MSGS, stream=True,
                                        stream_options={"include_usage": True}))
    span = telemetry.span()
    assert span.name == "chat llama3.2"
    assert (span.attributes["server.address"], span.attributes["server.port"]) == ("localhost", 11434)


def test_openai_module_level_client(api, telemetry, monkeypatch):
    import httpx2
    import openai

    monkeypatch.setattr(openai, "api_key", "test")
    monkeypatch.setattr(openai, "base_url", "http://mock.local/v1")
    monkeypatch.setattr(openai, "http_client", httpx2.Client(transport=httpx2.MockTransport(api.sync_handler)))
    monkeypatch.setattr(openai, "_client", None)
    api.json(sse.openai_chat_completion())
    openai.chat.completions.create(**O)
    assert_openai_span(telemetry.span(), stream=False)


def test_anthropic_bedrock(telemetry, mode):
    """Bedrock: stable and beta (a copied method) resources, streamed over AWS event-stream framing and plain."""
    import httpx2
    from anthropic import AnthropicBedrock, AsyncAnthropicBedrock

    model = "anthropic.claude-haiku-4-5-20251001-v1:0"
    frames = sse.aws_event_stream([e for e in sse.anthropic(model=model, cache_read=4096, cache_write=2048)
                                   if e[0] != "ping"])
    replies = [httpx2.Response(200, json=sse.anthropic_message(model=model, cache_read=4096, cache_write=2048))]

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("invoke-with-response-stream"):
            content: Any = _async_parts(frames) if mode == "async" else iter(frames)
            return httpx2.Response(200, headers={"content-type": "application/vnd.amazon.eventstream"}, content=content)
        return replies[0]

    is_async = mode == "async"
    http = (httpx2.AsyncClient if is_async else httpx2.Client)(transport=httpx2.MockTransport(handler))
    cls = AsyncAnthropicBedrock if is_async else AnthropicBedrock
    client = cls(aws_access_key="a", aws_secret_key="b", aws_region="us-east-1", base_url="http://mock.local",
                 http_client=http, max_retries=0)
    request = dict(A, model=model)
    consume(mode, run(client.messages.create(**request, stream=True)))
    run(client.beta.messages.create(**request))
    spans = telemetry.spans()
    assert [s.attributes["gen_ai.request.stream"] for s in spans] == [True, False]
    for span in spans:
        assert span.name == f"chat {model}"
        assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert span.attributes["gen_ai.usage.input_tokens"] == 6156
        assert span.attributes["gen_ai.usage.output_tokens"] == 15
    assert spans[0].attributes["llmtrace.stream.chunks"] == 7


async def _async_parts(parts: list[bytes]) -> Any:
    for part in parts:
        yield part


def test_raw_response_of_a_plain_call(api, telemetry, mode):
    client = make_openai(api.json(sse.openai_chat_completion()), mode == "async")
    raw = run(client.chat.completions.with_raw_response.create(**O))
    assert raw.headers["content-type"] == "application/json"
    assert not telemetry.spans()  # the body is read when the app parses it
    completion = raw.parse()
    assert raw.parse() is completion  # the SDK's cache still works through the proxy
    assert completion.choices[0].message.content == "Hello, world"
    assert_openai_span(telemetry.span(), stream=False)


def test_streaming_response_closed_without_parse(api, telemetry):
    client = make_anthropic(api.sse(sse.anthropic()))
    with client.messages.with_streaming_response.create(**A, stream=True) as response:
        assert response.http_request.method == "POST"
    span = telemetry.span()
    assert span.attributes["llmtrace.stream.outcome"] == "abandoned"


def test_openai_stream_usage_opt_in(api, telemetry, mode):
    """Opted in, llmtrace asks for usage and hides the extra chunk: the app sees what it would have seen."""
    import llmtrace

    llmtrace.uninstrument()
    telemetry.instrument(openai_stream_usage=True)
    client = make_openai(api.sse(sse.openai_chat()), mode == "async")
    chunks = consume(mode, run(client.chat.completions.create(**O, stream=True)))
    assert api.sent()["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks) and len(chunks) == 4  # the usage-only chunk is not shown
    attrs = telemetry.span().attributes
    assert attrs["llmtrace.usage.source"] == "provider"
    assert attrs["gen_ai.usage.input_tokens"] == 2006 and attrs["llmtrace.stream.chunks"] == 4


def chat_chunks_n2() -> list[sse.Event]:
    """A real `n=2` stream's shape: each chunk carries one choice, the two choices interleave and finish apart."""
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini"}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> sse.Event:
        return None, dict(base, choices=[{"index": index, "delta": delta, "finish_reason": finish}])

    chunks = [chunk(0, {"role": "assistant", "content": ""}), chunk(1, {"role": "assistant", "content": ""}),
              chunk(0, {"content": "Hello"}), chunk(1, {"content": "Hi"}), chunk(1, {"content": " there"}),
              chunk(1, {}, "stop"), chunk(0, {"content": ", world"}), chunk(0, {}, "length"),
              (None, dict(base, choices=[], usage={"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27,
                                                   "prompt_tokens_details": {"cached_tokens": 0}}))]
    return chunks + [(None, "[DONE]")]


def test_openai_chat_n2_stream_one_finish_reason_per_choice(api, telemetry, mode):
    client = make_openai(api.sse(chat_chunks_n2()), mode == "async")
    stream = run(client.chat.completions.create(**O, n=2, stream=True, stream_options={"include_usage": True}))
    assert len(consume(mode, stream)) == 9
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.response.finish_reasons"] == ("length", "stop")  # in choice index order
    assert attrs["llmtrace.stream.chunks"] == 9
    assert attrs["llmtrace.stream.outcome"] == "completed"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (20, 7)
    assert attrs["llmtrace.usage.source"] == "provider"


def test_openai_chat_n2_stream_cut_after_one_choice_is_not_completed(api, telemetry):
    events = chat_chunks_n2()
    client = make_openai(api.sse(events[:6]))  # choice 1 finished, choice 0 never did, no [DONE]
    list(client.chat.completions.create(**O, n=2, stream=True))
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["llmtrace.stream.outcome"] == "error"  # ended without its terminal event: truncated
    assert attrs["error.type"] == "stream_truncated"


def test_openai_chat_n2_plain_one_finish_reason_per_choice(api, telemetry, mode):
    completion = sse.openai_chat_completion()
    completion["choices"] = [{"index": 1, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"},
                             {"index": 0, "message": {"role": "assistant", "content": "Hello"},
                              "finish_reason": "length"}]
    client = make_openai(api.json(completion), mode == "async")
    run(client.chat.completions.create(**O, n=2))
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.response.finish_reasons"] == ("length", "stop")
    assert attrs["llmtrace.stream.outcome"] == "completed"
    assert attrs["gen_ai.usage.output_tokens"] == 300


def test_openai_legacy_completions_n2(api, telemetry, mode):
    base = {"id": "cmpl-2", "object": "text_completion", "created": 1700000000, "model": "gpt-3.5-turbo-instruct"}
    chunks = [dict(base, choices=[{"index": i, "text": t, "logprobs": None, "finish_reason": f}])
              for i, t, f in ((0, "Hello", None), (1, "Hi", "stop"), (0, "!", "stop"))]
    client = make_openai(api.sse([(None, c) for c in chunks] + [(None, "[DONE]")]), mode == "async")
    consume(mode, run(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", n=2, stream=True)))
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.response.finish_reasons"] == ("stop", "stop")
    assert attrs["llmtrace.stream.chunks"] == 3
    assert attrs["llmtrace.stream.outcome"] == "completed"


# --- OpenAI streams are read from the source their own iteration only re-yields ---
def test_openai_stream_classes_are_read_one_layer_closer():
    """The shortcut is taken for the SDK's own stream classes; a later SDK whose iteration does more turns it off,
    and this test says so."""
    import openai

    from llmtrace.providers.openai import _only_reyields

    assert _only_reyields(openai.Stream) and _only_reyields(openai.AsyncStream)


def test_a_stream_class_with_iteration_of_its_own_is_read_through_it(api, telemetry, mode):
    import openai
    from openai.types.chat import ChatCompletionChunk

    seen: list[str] = []

    class Sync(openai.Stream[ChatCompletionChunk]):  # a stream class that does something per item, as an app's or a later SDK's may
        def __iter__(self) -> Any:
            for item in self._iterator:
                seen.append(item.id)
                yield item

    class Async(openai.AsyncStream[ChatCompletionChunk]):
        async def __aiter__(self) -> Any:
            async for item in self._iterator:
                seen.append(item.id)
                yield item

    client = make_openai(api.sse(sse.openai_chat()), mode == "async")
    stream = run(client.post("/chat/completions", cast_to=ChatCompletionChunk, body={**O, "stream": True},
                             stream=True, stream_cls=Async if mode == "async" else Sync))
    items = consume(mode, stream)
    assert len(seen) == len(items) == 5  # every item went through the class's own iteration
    [span] = telemetry.spans()
    assert span.attributes["llmtrace.stream.chunks"] == 5
    assert span.attributes["llmtrace.stream.outcome"] == "completed"
