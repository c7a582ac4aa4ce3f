from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmtrace
from llmtrace import _tokens
from tests import sse

# Estimates use the tokenizer once it has loaded in the background; loaded here, every test sees the same
# counts, and no test's warning filters meet the tokenizer's import.
_tokens.wait_until_loaded()

# One global SDK provider, as an app has: it also switches on the Anthropic SDK's own tracing.
EXPORTER = InMemorySpanExporter()
TRACER_PROVIDER = TracerProvider()
TRACER_PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(TRACER_PROVIDER)


class FakeAPI:
    """A provider behind `httpx2.MockTransport`: answers each request with the next queued reply, keeps requests.

    SSE bodies are generators, so events reach the SDK one at a time (as over a network), and a reply can
    end in a transport error part-way.
    """

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []
        self.replies: list[dict[str, Any]] = []

    def sse(self, events: list[sse.Event], *, fail_after: int | None = None, status: int = 200,
            repeat: int = 1) -> FakeAPI:
        for _ in range(repeat):
            self.replies.append({"kind": "sse", "parts": sse.encode(events), "fail_after": fail_after,
                                 "status": status})
        return self

    def json(self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None, repeat: int = 1) -> FakeAPI:
        for _ in range(repeat):
            self.replies.append({"kind": "json", "body": body, "status": status, "headers": headers or {}})
        return self

    def _reply(self, request: httpx2.Request) -> dict[str, Any]:
        self.requests.append(request)
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def sync_handler(self, request: httpx2.Request) -> httpx2.Response:
        return self._respond(request, _parts)

    def async_handler(self, request: httpx2.Request) -> httpx2.Response:
        return self._respond(request, _async_parts)

    def _respond(self, request: httpx2.Request, parts_of: Any) -> httpx2.Response:
        reply = self._reply(request)
        if reply["kind"] == "json":
            return httpx2.Response(reply["status"], json=reply["body"], headers=reply["headers"])
        return httpx2.Response(reply["status"], headers={"content-type": "text/event-stream"},
                               content=parts_of(reply["parts"], reply["fail_after"]))

    def sent(self, i: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[i].content)


def _parts(parts: list[bytes], fail_after: int | None) -> Iterator[bytes]:
    for i, part in enumerate(parts):
        if i == fail_after:
            raise httpx2.ReadError("connection reset mid-stream")
        yield part


async def _async_parts(parts: list[bytes], fail_after: int | None) -> Any:
    for i, part in enumerate(parts):
        if i == fail_after:
            raise httpx2.ReadError("connection reset mid-stream")
        await asyncio.sleep(0)
        yield part


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


def make_anthropic(api: FakeAPI, is_async: bool = False, cls: Any = None, **kwargs: Any) -> Any:
    import anthropic

    if is_async:
        cls = cls or anthropic.AsyncAnthropic
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(api.async_handler))
    else:
        cls = cls or anthropic.Anthropic
        http = httpx2.Client(transport=httpx2.MockTransport(api.sync_handler))
    kwargs.setdefault("api_key", "test")
    if kwargs["api_key"] is ...:  # platform clients take their own credentials
        del kwargs["api_key"]
    kwargs.setdefault("base_url", "http://mock.local")
    return cls(http_client=http, max_retries=0, **kwargs)


def make_openai(api: FakeAPI, is_async: bool = False, cls: Any = None, **kwargs: Any) -> Any:
    import openai

    if is_async:
        cls = cls or openai.AsyncOpenAI
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(api.async_handler))
    else:
        cls = cls or openai.OpenAI
        http = httpx2.Client(transport=httpx2.MockTransport(api.sync_handler))
    kwargs.setdefault("api_key", "test")
    if "azure_endpoint" not in kwargs:
        kwargs.setdefault("base_url", "http://mock.local/v1")
    return cls(http_client=http, max_retries=0, **kwargs)


class Telemetry:
    def __init__(self, reader: InMemoryMetricReader, meter_provider: MeterProvider) -> None:
        self.reader = reader
        self.meter_provider = meter_provider

    def instrument(self, **kwargs: Any) -> None:
        llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=self.meter_provider, **kwargs)

    def spans(self, all_scopes: bool = False) -> list[Any]:
        found = EXPORTER.get_finished_spans()
        return list(found) if all_scopes else [s for s in found if s.instrumentation_scope.name == "llmtrace"]

    def span(self) -> Any:
        [one] = self.spans()
        return one

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out.extend((dict(p.attributes), p) for p in metric.data.data_points)
        return out

    def metrics(self) -> dict[str, Any]:
        data = self.reader.get_metrics_data()
        return {m.name: m for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics
                for m in sm.metrics}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    EXPORTER.clear()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    fixture = Telemetry(reader, meter_provider)
    fixture.instrument()
    try:
        yield fixture
    finally:
        llmtrace.uninstrument()
        meter_provider.shutdown()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def run(coro_or_value: Any) -> Any:
    """Run a coroutine to completion (async mode) or pass a value through (sync mode)."""
    if asyncio.iscoroutine(coro_or_value):
        return asyncio.run(coro_or_value)
    return coro_or_value
