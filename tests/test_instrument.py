"""instrument()/uninstrument(), transparency to the app, coexistence with the Anthropic SDK's own tracing."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import anthropic
import openai
import pytest
from opentelemetry import trace

import llmtrace
from tests import sse
from tests.conftest import EXPORTER, FakeAPI, make_anthropic, make_openai

ROOT = Path(__file__).resolve().parents[1]
A = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
O = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def test_public_api():
    assert llmtrace.__all__ == ["LLMTraceInstrumentor", "__version__", "instrument", "uninstrument"]


def test_streams_keep_their_types(api, telemetry):
    a = make_anthropic(api.sse(sse.anthropic()))
    stream = a.messages.create(**A, stream=True)
    assert isinstance(stream, anthropic.Stream)
    with a.messages.stream(**A) as helper:
        assert type(helper).__name__ == "MessageStream"
        assert isinstance(helper._raw_stream, anthropic.Stream)
    o = make_openai(FakeAPI().sse(sse.openai_chat()))
    assert isinstance(o.chat.completions.create(**O, stream=True), openai.Stream)
    stream.close()


def test_request_is_identical_apart_from_trace_context(telemetry):
    """The instrumented request equals the bare one; OpenAI gets no headers, Anthropic only its own traceparent."""

    def send(instrumented: bool) -> tuple[dict, dict, dict, dict]:
        if not instrumented:
            llmtrace.uninstrument()
        a_api, o_api = FakeAPI().sse(sse.anthropic()), FakeAPI().sse(sse.openai_chat())
        list(make_anthropic(a_api).messages.create(**A, stream=True))
        list(make_openai(o_api).chat.completions.create(**O, stream=True))
        if not instrumented:
            telemetry.instrument()
        return (dict(a_api.requests[0].headers), a_api.sent(), dict(o_api.requests[0].headers), o_api.sent())

    bare, traced = send(False), send(True)
    volatile = {"x-stainless-retry-count", "x-stainless-read-timeout", "idempotency-key", "traceparent", "tracestate"}
    for i in (0, 2):
        assert {k: v for k, v in traced[i].items() if k not in volatile} == {
            k: v for k, v in bare[i].items() if k not in volatile}
    assert traced[1] == bare[1] and traced[3] == bare[3]  # bodies byte-for-byte
    assert "traceparent" not in traced[2]  # OpenAI: nothing added
    [a_span] = [s for s in telemetry.spans() if s.attributes["gen_ai.provider.name"] == "anthropic"]
    assert traced[0]["traceparent"].split("-")[1:3] == [f"{a_span.context.trace_id:032x}",
                                                        f"{a_span.context.span_id:016x}"]  # our span, not a hidden one


def test_one_genai_span_with_the_sdks_native_tracing_on(api, telemetry):
    """anthropic traces itself whenever an SDK TracerProvider is global (as here): still one CLIENT span."""
    client = make_anthropic(api.sse(sse.anthropic(), repeat=3))
    assert client.open_telemetry["traces"]["enabled"]
    list(client.messages.create(**A, stream=True))
    with client.messages.stream(**A) as stream:
        stream.until_done()
    spans = telemetry.spans(all_scopes=True)
    assert [s.instrumentation_scope.name for s in spans] == ["llmtrace"] * 2
    assert all("traceparent" in r.headers for r in api.requests)


def test_native_propagation_off_is_respected(api, telemetry):
    client = make_anthropic(api.sse(sse.anthropic()), open_telemetry={"propagation": False})
    list(client.messages.create(**A, stream=True))
    assert "traceparent" not in api.requests[0].headers
    assert len(telemetry.spans(all_scopes=True)) == 1


def test_callers_current_span_is_unchanged(api, telemetry):
    tracer = trace.get_tracer("app")
    client = make_anthropic(api.sse(sse.anthropic()))
    with tracer.start_as_current_span("request handler") as parent:
        stream = client.messages.create(**A, stream=True)
        assert trace.get_current_span() is parent
        next(iter(stream))
        assert trace.get_current_span() is parent
        with tracer.start_as_current_span("app work") as child:
            pass
        list(stream)
    llm = telemetry.span()
    assert llm.parent.span_id == parent.get_span_context().span_id
    assert child.parent.span_id == parent.get_span_context().span_id  # never a child of the LLM span


def test_uninstrument_restores_originals(api, telemetry):
    from anthropic._base_client import SyncAPIClient

    patched = SyncAPIClient.__dict__["request"]
    assert hasattr(patched, "__wrapped__")
    telemetry.instrument()  # idempotent: no second wrapper
    assert SyncAPIClient.__dict__["request"] is patched
    llmtrace.uninstrument()
    assert SyncAPIClient.__dict__["request"] is patched.__wrapped__
    EXPORTER.clear()
    list(make_anthropic(api.sse(sse.anthropic())).messages.create(**A, stream=True))
    assert not [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


APP = """
import json, httpx2
{setup}
from tests import sse
from tests.conftest import FakeAPI, EXPORTER
import anthropic, openai
a = FakeAPI().sse(sse.anthropic()); o = FakeAPI().sse(sse.openai_chat())
list(anthropic.Anthropic(api_key="k", base_url="http://mock.local", http_client=httpx2.Client(
    transport=httpx2.MockTransport(a.sync_handler))).messages.create(
    model="claude-haiku-4-5", max_tokens=8, messages=[{{"role": "user", "content": "Hi"}}], stream=True))
list(openai.OpenAI(api_key="k", base_url="http://mock.local/v1", http_client=httpx2.Client(
    transport=httpx2.MockTransport(o.sync_handler))).chat.completions.create(
    model="gpt-4o-mini", messages=[{{"role": "user", "content": "Hi"}}], stream=True))
print(json.dumps([s.name for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]))
"""


def test_instrument_before_the_sdks_are_imported():
    setup = """
import sys
import llmtrace
from tests.conftest import TRACER_PROVIDER
llmtrace.instrument(tracer_provider=TRACER_PROVIDER)
assert "anthropic" not in sys.modules and "openai" not in sys.modules
"""
    # tests.conftest imports neither SDK at module level
    proc = _run(APP.format(setup=setup))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["chat claude-haiku-4-5", "chat gpt-4o-mini"]


def test_streaming_helpers_are_patched_when_the_app_first_imports_them():
    """instrument() does not import the SDKs' streaming helpers (tens of ms an app may never need); the helper's
    close is still seen once the app uses it."""
    code = """
import json, sys, httpx2
import openai
import llmtrace
from tests.conftest import TRACER_PROVIDER, EXPORTER, FakeAPI
from tests import sse
helpers = ("openai.lib.streaming.chat._completions", "openai.lib.streaming.responses._responses")
fresh = [m for m in helpers if m not in sys.modules]
llmtrace.instrument(tracer_provider=TRACER_PROVIDER)
untouched = [m for m in fresh if m not in sys.modules]
api = FakeAPI().sse(sse.openai_chat(["a"] * 8))
client = openai.OpenAI(api_key="k", base_url="http://mock.local/v1",
                       http_client=httpx2.Client(transport=httpx2.MockTransport(api.sync_handler)))
with client.chat.completions.stream(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]) as stream:
    for event in stream:
        break
    ended = [s.attributes["llmtrace.stream.outcome"] for s in EXPORTER.get_finished_spans()]
    stream_alive = stream  # still referenced: only the helper's close can have ended the span
print(json.dumps({"fresh": fresh, "untouched": untouched, "ended": ended,
                  "after": [s.attributes["llmtrace.stream.outcome"] for s in EXPORTER.get_finished_spans()]}))
"""
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["fresh"] and found["untouched"] == found["fresh"]  # instrument() imported none of them
    assert found["ended"] == [] and found["after"] == ["abandoned"]  # ended by the with-exit, not by GC


def test_opentelemetry_instrument_needs_no_code_change(tmp_path):
    """`opentelemetry-instrument python app.py` finds llmtrace through its entry point."""
    app = tmp_path / "app.py"
    # The app adds nothing but an in-memory exporter to the provider llmtrace set up, to look at the spans.
    setup = ("from opentelemetry import trace; from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
             "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
             "EXPORTER = InMemorySpanExporter(); trace.get_tracer_provider().add_span_processor("
             "SimpleSpanProcessor(EXPORTER))")
    app.write_text(APP.format(setup=setup).replace("from tests.conftest import FakeAPI, EXPORTER",
                                                   "from tests.conftest import FakeAPI"))
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "opentelemetry-instrument"), sys.executable, str(app)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                               "OTEL_LOGS_EXPORTER": "none", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["chat claude-haiku-4-5", "chat gpt-4o-mini"]


def _stream_memory(n_chunks: int) -> int:
    """Peak memory held while one instrumented stream of n_chunks is read, over the SDK's own."""
    events = sse.anthropic(["x"] * n_chunks, ping=False)
    api = FakeAPI().sse(events)
    client = make_anthropic(api)
    gc.collect()
    tracemalloc.start()
    try:
        stream = client.messages.create(**A, stream=True)
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in stream:
            pass
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_memory_per_stream_does_not_grow_with_length(telemetry):
    small, large = _stream_memory(2_000), _stream_memory(20_000)
    # The parts of the body are pre-built in the test (not traced here); what grows is what the stream holds.
    assert large - small < 32 * 1024, (small, large)
