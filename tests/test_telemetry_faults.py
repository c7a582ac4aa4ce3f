"""When telemetry itself fails — a dead or hanging collector, a span processor or metrics pipeline that
raises, a broken pricing file — the app's calls succeed unchanged, llmtrace says so once on its logger,
and the process still exits promptly."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import llmtrace
from tests import sse
from tests.conftest import FakeAPI, make_anthropic, make_openai

APP = textwrap.dedent('''
    import anthropic, httpx2, llmtrace
    llmtrace.instrument()  # no providers configured: llmtrace's default OTLP exporters
    from tests import sse
    body = b"".join(sse.encode(sse.anthropic()))
    http = httpx2.Client(transport=httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)))
    client = anthropic.Anthropic(api_key="test", base_url="http://mock.local", http_client=http)
    for _ in range(3):
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=5,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            print("".join(stream.text_stream))
''')


# Prints how long the interpreter's exit took, from the end of the app's code to the last exit hook (this one,
# registered first, runs last): what the user waits for after the app is done.
TIMED_EXIT = textwrap.dedent('''
    import atexit, sys, time
    ENDED = []
    atexit.register(lambda: print(f"exit took {time.monotonic() - ENDED[0]:.2f} s", file=sys.stderr))
''') + APP + "ENDED.append(time.monotonic())\n"


def run_app(env: dict[str, str], app: str = APP) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ".", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
    # The timeout is a safety net against a hang, not a measure of speed.
    return subprocess.run([sys.executable, "-c", app], capture_output=True, text=True, timeout=120,
                          env={**base, **env})


def assert_one_warning(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Hello, world"] * 3  # the app's own output, unchanged
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llmtrace could not export"), done.stderr


def test_dead_collector() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert_one_warning(run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}))


class HangingCollector:
    """Accepts connections, keeps them open and never answers (a wedged collector, a black-holing proxy)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.accepted.append(self.server.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.server.close()


@pytest.fixture
def hanging_collector() -> Iterator[HangingCollector]:
    collector = HangingCollector()
    yield collector
    collector.close()


def test_hanging_collector(hanging_collector: HangingCollector) -> None:
    # each export attempt is bounded by the standard timeout; at exit there is one attempt, no retries
    assert_one_warning(run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": hanging_collector.url,
                                "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}))


def exit_seconds(done: subprocess.CompletedProcess[str]) -> float:
    [line] = [line for line in done.stderr.splitlines() if line.startswith("exit took ")]
    return float(line.split()[2])


def test_exit_is_bounded_with_a_hanging_collector(hanging_collector: HangingCollector) -> None:
    """With the default export timeout (10 s), a collector that never answers used to hold the exit for about
    twice that; the final flush now waits LLMTRACE_EXIT_FLUSH_TIMEOUT (3 s) in all, whatever the collector does."""
    done = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": hanging_collector.url}, TIMED_EXIT)
    assert done.returncode == 0, done.stderr
    assert hanging_collector.accepted  # it really was dialled, and held the connections
    assert exit_seconds(done) < 9  # 3 s and a generous margin for a loaded machine; the default timeout is 10 s
    warnings = [line for line in done.stderr.splitlines() if line.startswith("llmtrace")]
    assert len(warnings) == 1 and "at exit" in warnings[0], done.stderr  # said once, naming the bound


def test_exit_flush_bound_is_configurable(hanging_collector: HangingCollector) -> None:
    done = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": hanging_collector.url, "LLMTRACE_EXIT_FLUSH_TIMEOUT": "0.5"},
                   TIMED_EXIT)
    assert done.returncode == 0, done.stderr
    assert exit_seconds(done) < 6
    assert "after 0.5 s at exit" in done.stderr


class Raising(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("processor on_start broke")

    def on_end(self, span: Any) -> None:
        raise RuntimeError("processor on_end broke")


def calls(is_async: bool = False) -> list[Any]:
    """What the app sees from a streamed Anthropic call and a streamed OpenAI call."""
    anthropic_api = FakeAPI().sse(sse.anthropic())
    openai_api = FakeAPI().sse(sse.openai_chat())
    a, o = make_anthropic(anthropic_api), make_openai(openai_api)
    events = [e.model_dump() for e in a.messages.create(model="claude-haiku-4-5", max_tokens=5, stream=True,
                                                        messages=[{"role": "user", "content": "hi"}])]
    chunks = [c.model_dump() for c in o.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                                 messages=[{"role": "user", "content": "hi"}],
                                                                 stream_options={"include_usage": True})]
    return [events, chunks]


@pytest.fixture
def bare_view() -> list[Any]:
    llmtrace.uninstrument()
    return calls()


def llmtrace_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmtrace" and r.levelno >= logging.WARNING]


def test_raising_span_processor(bare_view: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()
    provider.add_span_processor(Raising())
    llmtrace.instrument(tracer_provider=provider, meter_provider=MeterProvider())
    try:
        with caplog.at_level(logging.WARNING, logger="llmtrace"):
            assert calls() == bare_view
            assert calls() == bare_view
    finally:
        llmtrace.uninstrument()
    [warning] = llmtrace_warnings(caplog)
    assert "processor on_" in warning


class RaisingInstruments:
    """A meter provider whose instruments raise when recorded to (a broken metrics pipeline)."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("create_"):
            return lambda *a, **k: self
        if name in ("record", "add"):
            def broken(*a: Any, **k: Any) -> None:
                raise ValueError("metrics pipeline broke")
            return broken
        raise AttributeError(name)


def test_raising_metrics(bare_view: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    from tests.conftest import EXPORTER, TRACER_PROVIDER

    EXPORTER.clear()
    llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=RaisingInstruments())
    try:
        with caplog.at_level(logging.WARNING, logger="llmtrace"):
            assert calls() == bare_view
            assert calls() == bare_view
    finally:
        llmtrace.uninstrument()
    [warning] = llmtrace_warnings(caplog)
    assert "metrics pipeline broke" in warning
    spans = [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]
    assert len(spans) == 4  # the spans still carry everything


@pytest.mark.parametrize("content", ["{not json", '{"models": 5}', '{"models": {"gpt-4o-mini": {"input": -1, "output": 1}}}'])
def test_broken_pricing_file(bare_view: list[Any], caplog: pytest.LogCaptureFixture, tmp_path: Any,
                             monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    from tests.conftest import EXPORTER, TRACER_PROVIDER

    prices = tmp_path / "prices.json"
    prices.write_text(content)
    monkeypatch.setenv("LLMTRACE_PRICING_FILE", str(prices))
    EXPORTER.clear()
    reader = InMemoryMetricReader()
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=MeterProvider(metric_readers=[reader]))
        try:
            assert calls() == bare_view
        finally:
            llmtrace.uninstrument()
    [warning] = llmtrace_warnings(caplog)
    assert str(prices) in warning and "bundled prices" in warning
    spans = [s for s in EXPORTER.get_finished_spans() if s.instrumentation_scope.name == "llmtrace"]
    assert all(s.attributes["llmtrace.cost.usd"] > 0 for s in spans)  # the bundled table still prices them


def test_broken_pricing_mapping(bare_view: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    from tests.conftest import TRACER_PROVIDER

    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        llmtrace.instrument(tracer_provider=TRACER_PROVIDER, meter_provider=MeterProvider(),
                            pricing={"models": {"my-model": {"input": "cheap"}}})
        try:
            assert calls() == bare_view
        finally:
            llmtrace.uninstrument()
    [warning] = llmtrace_warnings(caplog)
    assert "pricing mapping" in warning
