"""The default set-up honours the standard exporter switches as the OpenTelemetry SDK's auto-configuration
does: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = otlp (the default), console, none, or a list."""

from __future__ import annotations

import json
import logging
import re

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from llmtrace import _exporters
from tests.otlp import Receiver, receiver  # noqa: F401  (a fixture)
from tests.test_telemetry_faults import HangingCollector, hanging_collector, run_app  # noqa: F401

OTEL_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
                  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("value, names", [
    (None, ["otlp_proto_http"]), ("", ["otlp_proto_http"]), ("otlp", ["otlp_proto_http"]),
    ("console", ["console"]), (" Console ", ["console"]), ("none", []), ("NONE", []),
    ("console,otlp", ["console", "otlp_proto_http"]), ("otlp, console, otlp", ["otlp_proto_http", "console"]),
    ("otlp_proto_grpc", ["otlp_proto_grpc"]),
])
def test_exporter_names(monkeypatch: pytest.MonkeyPatch, value: str | None, names: list[str]) -> None:
    if value is not None:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", value)
    assert _exporters.exporter_names("traces") == names
    assert _exporters.exporter_names("metrics") == names


def test_otlp_follows_the_protocol_variables(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert _exporters.exporter_names("traces") == ["otlp_proto_grpc"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")  # per signal wins
    assert _exporters.exporter_names("metrics") == ["otlp_proto_http"]
    [exporter] = _exporters.span_exporters()
    assert isinstance(exporter, _exporters.ReportingSpanExporter) and isinstance(exporter._inner, GrpcSpanExporter)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        assert _exporters.exporter_names("traces") == []
    assert "'http/json' is not supported" in caplog.text


def test_exporters_built(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,otlp,zipkin")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,console")
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        console, otlp = _exporters.span_exporters()
    assert isinstance(console, ConsoleSpanExporter)
    assert isinstance(otlp, _exporters.ReportingSpanExporter) and isinstance(otlp._inner, OTLPSpanExporter)
    assert "OTEL_TRACES_EXPORTER names 'zipkin', which is not installed" in caplog.text
    readers = _exporters.metric_readers()
    inner = [r._exporter for r in readers]
    assert isinstance(inner[0], _exporters.ReportingMetricExporter) and isinstance(inner[0]._inner, OTLPMetricExporter)
    assert isinstance(inner[1], ConsoleMetricExporter)
    for reader in readers:
        reader.shutdown()


def printed_json(stdout: str) -> list[dict]:
    """The JSON documents the console exporters printed, among the app's own lines."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", at)) != -1:
        try:
            document, at = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(document)
    return found


def test_console(hanging_collector: HangingCollector) -> None:
    done = run_app({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": hanging_collector.url})
    assert done.returncode == 0 and not done.stderr, done.stderr
    documents = printed_json(done.stdout)
    spans = [d for d in documents if "llmtrace.stream.outcome" in d.get("attributes", {})]  # llmtrace's own
    assert [s["name"] for s in spans] == ["chat claude-haiku-4-5"] * 3
    assert all(s["attributes"]["llmtrace.stream.outcome"] == "completed" for s in spans)
    metric_names = set(re.findall(r'"name": "([a-z_.]+)"', done.stdout))
    assert {"llmtrace.requests", "gen_ai.client.operation.duration"} <= metric_names
    assert not hanging_collector.accepted  # nothing dialled the OTLP endpoint


def test_none(hanging_collector: HangingCollector) -> None:
    done = run_app({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": hanging_collector.url})
    assert done.returncode == 0 and not done.stderr, done.stderr  # no warning about an endpoint it must not use
    assert done.stdout.splitlines() == ["Hello, world"] * 3  # nothing printed either
    assert not hanging_collector.accepted


def test_otlp_and_console_together(receiver: Receiver) -> None:
    done = run_app({"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert [name for name, a in receiver.spans if "llmtrace.stream.outcome" in a] == ["chat claude-haiku-4-5"] * 3
    assert {"llmtrace.requests", "gen_ai.client.operation.duration"} <= receiver.metric_names  # metrics: otlp
    assert '"name": "chat claude-haiku-4-5"' in done.stdout  # and the console too


def test_only_metrics_off(receiver: Receiver) -> None:
    done = run_app({"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert len([a for _, a in receiver.spans if "llmtrace.stream.outcome" in a]) == 3 and not receiver.metric_names
