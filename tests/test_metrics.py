"""Every metric instrument of the contract, with its exact name, unit and attribute keys, for both SDKs."""

from __future__ import annotations

from typing import Any

import pytest

from tests import sse
from tests.conftest import make_anthropic, make_openai

BASE_KEYS = {"gen_ai.provider.name", "gen_ai.request.model", "gen_ai.operation.name", "server.address"}
CONTRACT = {  # instrument: (unit, extra attribute keys)
    "gen_ai.client.operation.duration": ("s", set()),
    "gen_ai.client.operation.time_to_first_chunk": ("s", set()),
    "gen_ai.client.token.usage": ("{token}", {"gen_ai.token.type"}),
    "llmtrace.usage.tokens": ("{token}", {"llmtrace.token.type"}),
    "llmtrace.requests": ("{request}", {"llmtrace.stream.outcome", "llmtrace.cache.outcome"}),
    "llmtrace.cost.usd": ("{USD}", set()),
    "llmtrace.cache.savings.usd": ("{USD}", set()),
    "llmtrace.cache.write_premium.usd": ("{USD}", set()),
    "llmtrace.stream.chunks": ("{chunk}", set()),
}
STREAM_ONLY = {"gen_ai.client.operation.time_to_first_chunk", "llmtrace.stream.chunks"}
A = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
O = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def anthropic_stream(api: Any) -> None:
    api.sse(sse.anthropic(input_tokens=12, cache_read=4096, cache_write=2048, output_tokens=15))
    list(make_anthropic(api).messages.create(**A, stream=True))


def anthropic_plain(api: Any) -> None:
    api.json(sse.anthropic_message(input_tokens=12, cache_read=4096, cache_write=2048, output_tokens=15))
    make_anthropic(api).messages.create(**A)


def openai_stream(api: Any) -> None:
    api.sse(sse.openai_chat(prompt_tokens=6156, cached=4096, completion_tokens=15))
    list(make_openai(api).chat.completions.create(**O, stream=True, stream_options={"include_usage": True}))


def openai_plain(api: Any) -> None:
    api.json(sse.openai_chat_completion(prompt_tokens=6156, cached=4096, completion_tokens=15))
    make_openai(api).chat.completions.create(**O)


CALLS = {"anthropic-stream": (anthropic_stream, "anthropic", 2048), "anthropic-plain": (anthropic_plain, "anthropic", 2048),
         "openai-stream": (openai_stream, "openai", 0), "openai-plain": (openai_plain, "openai", 0)}


@pytest.mark.parametrize("call", list(CALLS))
def test_every_instrument_with_contract_names_units_and_keys(api, telemetry, call):
    drive, provider, cache_write = CALLS[call]
    drive(api)
    metrics = telemetry.metrics()
    streamed = call.endswith("stream")
    expected = {name for name in CONTRACT if streamed or name not in STREAM_ONLY}
    assert set(metrics) == expected
    for name in expected:
        unit, extra = CONTRACT[name]
        assert metrics[name].unit == unit, name
        for attributes, _ in telemetry.points(name):
            assert set(attributes) == BASE_KEYS | extra, (name, attributes)
            assert attributes["gen_ai.provider.name"] == provider

    tokens = {a["llmtrace.token.type"]: p.value for a, p in telemetry.points("llmtrace.usage.tokens")}
    assert tokens == {"input": 6156, "output": 15, "cache_read": 4096, "cache_write": cache_write}
    usage = {a["gen_ai.token.type"]: p.sum for a, p in telemetry.points("gen_ai.client.token.usage")}
    assert usage == {"input": 6156, "output": 15}
    [(attrs, requests)] = telemetry.points("llmtrace.requests")
    assert requests.value == 1
    assert attrs["llmtrace.stream.outcome"] == "completed"
    assert attrs["llmtrace.cache.outcome"] == ("partial" if cache_write else "hit")
    [(_, duration)] = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.sum > 0
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]  # semconv buckets
    if streamed:
        [(_, chunks)] = telemetry.points("llmtrace.stream.chunks")
        assert chunks.sum == (7 if provider == "anthropic" else 5)


def test_miss_reason_label_and_error_type(api, telemetry):
    system = [{"type": "text", "text": "You are terse. " * 400, "cache_control": {"type": "ephemeral"}}]
    api.sse(sse.anthropic(cache_read=0, cache_write=2048)).json(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529)
    client = make_anthropic(api)
    list(client.messages.create(**A, system=system, stream=True))
    with pytest.raises(Exception):
        client.messages.create(**A, stream=True)
    requests = {(a["llmtrace.stream.outcome"], a.get("llmtrace.cache.miss_reason")): p.value
                for a, p in telemetry.points("llmtrace.requests")}
    assert requests == {("completed", "first_use"): 1, ("error", None): 1}
    errors = [a for a, _ in telemetry.points("gen_ai.client.operation.duration") if "error.type" in a]
    assert [a["error.type"] for a in errors] == ["OverloadedError"]  # the SDK's class for a 529


def test_latency_exemplars_point_at_the_call_and_counts_carry_none(api, telemetry):
    anthropic_stream(api)
    span = telemetry.span()
    metrics = telemetry.metrics()  # one collection: each collection hands out and resets the exemplars
    for name in ("gen_ai.client.operation.duration", "gen_ai.client.operation.time_to_first_chunk"):
        [point] = metrics[name].data.data_points
        assert [(e.trace_id, e.span_id) for e in point.exemplars] == [(span.context.trace_id,
                                                                       span.context.span_id)], name
    for name in ("gen_ai.client.token.usage", "llmtrace.stream.chunks"):
        assert all(not point.exemplars for point in metrics[name].data.data_points), name


def test_counters_add_up_across_calls(api, telemetry):
    for _ in range(4):
        anthropic_stream(api)
    by_type = {attrs["llmtrace.token.type"]: p.value for attrs, p in telemetry.points("llmtrace.usage.tokens")}
    assert by_type == {"input": 4 * 6156, "output": 4 * 15, "cache_read": 4 * 4096, "cache_write": 4 * 2048}
    [(attrs, requests)] = telemetry.points("llmtrace.requests")
    assert requests.value == 4 and attrs["llmtrace.cache.outcome"] == "partial"
