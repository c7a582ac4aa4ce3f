"""The exporters llmtrace sets up when the app configured none, chosen as the OpenTelemetry SDK's own
auto-configuration chooses them, reporting failures once on our logger, and flushed at exit within a bound.

Which exporters: `OTEL_TRACES_EXPORTER` and `OTEL_METRICS_EXPORTER`, each a comma-separated list of names
(default `otlp`; `none` for none), resolved through the SDK's `opentelemetry_traces_exporter` /
`opentelemetry_metrics_exporter` entry points: `otlp` (over `OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL`:
`http/protobuf`, the default, to port 4318, or `grpc`), `console`, `otlp_proto_http`, `otlp_proto_grpc`, and
whatever else is installed (`prometheus`, `zipkin`...). A signal set to `none` gets a provider with no
exporter, as from the SDK: nothing is exported and nothing is dialled. `OTEL_SDK_DISABLED=true` sets up
nothing at all.

A dead or hanging collector must cost the app nothing: export runs on the SDK's background threads,
each attempt is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT`, and the first failure is logged once on the
`llmtrace` logger, in place of the exporters' own message per attempt. At exit, what is still buffered
gets one attempt (no retries), and the app waits for it at most `LLMTRACE_EXIT_FLUSH_TIMEOUT` seconds
(default 3) in all, whatever the collector does: a collector that accepts connections and never answers
no longer holds the exit for twice the export timeout.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from time import monotonic
from typing import Any, Literal

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("llmtrace")


# The OTLP exporters' per-attempt messages, which the one warning below replaces.
_QUIETED_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)
_QUIETED_MESSAGES = ("Transient error", "Failed to export", "Shutdown in progress, aborting retry")


class _QuietRetries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_QUIETED_MESSAGES)


def quiet_exporter_retries() -> None:
    for name in _QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietRetries) for f in logger.filters):
            logger.addFilter(_QuietRetries())


class _Once:
    def __init__(self) -> None:
        self.reported = False

    def failed(self, what: str, detail: object) -> None:
        if not self.reported:
            self.reported = True
            log.warning("llmtrace could not export %s to %s (%s); the app is unaffected, telemetry is being "
                        "dropped until the collector answers", what, _endpoint(), detail)

    def gave_up(self, seconds: float) -> None:
        if not self.reported:  # a collector already reported as failing needs no second word
            self.reported = True
            log.warning("llmtrace stopped waiting for %s after %g s at exit; telemetry not sent by then is "
                        "dropped (LLMTRACE_EXIT_FLUSH_TIMEOUT)", _endpoint(), seconds)


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")


_ONCE = _Once()  # one warning for the collector, whichever signal meets it first
_REPORTERS: weakref.WeakSet[Any] = weakref.WeakSet()


def no_retries_at_exit() -> None:
    for reporter in list(_REPORTERS):
        _stop_retrying(reporter._inner)


def _stop_retrying(exporter: Any) -> None:
    # The OTLP exporters wait between retries on an event that their shutdown sets; setting only that
    # event keeps the final export's one attempt. Private names, so looked up defensively.
    event = getattr(getattr(exporter, "_client", None), "_shutdown_event", None)  # HTTP
    event = event or getattr(exporter, "_shutdown_in_progress", None)  # gRPC
    if event is not None and hasattr(event, "set"):
        event.set()


class ReportingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter) -> None:
        self._inner, self._once = inner, _ONCE
        _REPORTERS.add(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:
            self._once.failed("spans", repr(exc))
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._once.failed("spans", result.name)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class ReportingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self._inner, self._once = inner, _ONCE
        _REPORTERS.add(self)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            self._once.failed("metrics", repr(exc))
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self._once.failed("metrics", result.name)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


# --- which exporters, as the SDK's auto-configuration picks them ---
Signal = Literal["traces", "metrics"]
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
EXIT_FLUSH_SECONDS = 3.0


def exporter_names(signal: Signal) -> list[str]:
    """Entry-point names from `OTEL_{TRACES,METRICS}_EXPORTER` (unset or empty: `otlp`; `none`: none)."""
    raw = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip() or "otlp"
    names = [name.strip().lower() for name in raw.split(",")]
    resolved = (_resolve_otlp(name, signal) for name in names if name and name != "none")
    return list(dict.fromkeys(name for name in resolved if name))


def _resolve_otlp(name: str, signal: Signal) -> str | None:
    if name != "otlp":
        return name
    protocol = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    # llmtrace's default is the specification's, http/protobuf (port 4318); the Python SDK's alone is grpc
    if protocol not in _OTLP_BY_PROTOCOL:
        log.warning("llmtrace: OTLP protocol %r is not supported (use http/protobuf or grpc); no %s are exported",
                    protocol, signal)
        return None
    return _OTLP_BY_PROTOCOL[protocol]


def _load(signal: Signal, name: str) -> Any:
    """The exporter (or metric reader) class for `name`, or None, said once, when it is not installed."""
    from opentelemetry.util._importlib_metadata import entry_points

    found = next(iter(entry_points(group=f"opentelemetry_{signal}_exporter", name=name)), None)
    if found is None:
        log.warning("llmtrace: OTEL_%s_EXPORTER names %r, which is not installed; no %s are exported there",
                    signal.upper(), name, signal)
        return None
    try:
        return found.load()
    except Exception as exc:
        log.warning("llmtrace could not load the %r %s exporter: %r", name, signal, exc)
        return None


def _built(signal: Signal, make: Any) -> list[Any]:
    """`make(name, cls)` for each exporter the variable names; one that cannot be set up is said and skipped."""
    built = []
    for name in exporter_names(signal):
        cls = _load(signal, name)
        if cls is None:
            continue
        try:
            built.append(make(name, cls))
        except Exception as exc:
            log.warning("llmtrace could not set up the %r %s exporter: %r", name, signal, exc)
    return built


def span_exporters() -> list[SpanExporter]:
    def make(name: str, cls: Any) -> SpanExporter:
        return ReportingSpanExporter(cls()) if name.startswith("otlp") else cls()

    return _built("traces", make)


def metric_readers() -> list[Any]:
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    def make(name: str, cls: Any) -> Any:
        if issubclass(cls, MetricReader):  # a pull exporter (prometheus) is a reader itself
            return cls()
        return PeriodicExportingMetricReader(ReportingMetricExporter(cls()) if name.startswith("otlp") else cls())

    return _built("metrics", make)


def default_providers(tracer_provider: Any, meter_provider: Any) -> tuple[Any, Any]:
    """The app's providers, or, when it configured none, ones with the exporters the standard OTEL_* variables
    name."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.resources import Resource

    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return tracer_provider, meter_provider
    made = []
    # As the SDK's auto-configuration does, a signal set to `none` still gets a provider, with no exporter:
    # nothing is sent anywhere, and an app (or `opentelemetry-instrument`) may add a processor of its own.
    if tracer_provider is None and _is_proxy(trace.get_tracer_provider()):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=Resource.create(), shutdown_on_exit=False)
        for exporter in span_exporters():
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        made.append(tracer_provider)
    if meter_provider is None and _is_proxy(metrics.get_meter_provider()):
        from opentelemetry.sdk.metrics import MeterProvider

        meter_provider = MeterProvider(resource=Resource.create(), metric_readers=metric_readers(),
                                       shutdown_on_exit=False)
        metrics.set_meter_provider(meter_provider)
        made.append(meter_provider)
    if made:
        quiet_exporter_retries()
        atexit.register(shutdown_within, made, exit_flush_seconds())
    return tracer_provider, meter_provider


def _is_proxy(provider: Any) -> bool:
    return type(provider).__name__ in ("ProxyTracerProvider", "_ProxyMeterProvider", "NoOpTracerProvider",
                                       "NoOpMeterProvider")


def exit_flush_seconds() -> float:
    try:
        seconds = float(os.environ.get("LLMTRACE_EXIT_FLUSH_TIMEOUT", EXIT_FLUSH_SECONDS))
    except ValueError:
        return EXIT_FLUSH_SECONDS
    return seconds if 0 <= seconds < float("inf") else EXIT_FLUSH_SECONDS


def shutdown_within(providers: Sequence[Any], seconds: float) -> None:
    """Shut the providers down (flushing what they hold, one attempt each) in daemon threads, waiting `seconds`
    in all: an export the collector never answers is left behind, and dies with the process."""
    no_retries_at_exit()
    deadline = monotonic() + seconds
    threads = [threading.Thread(target=_shutdown, args=(p, seconds), name="llmtrace-exit-flush", daemon=True)
               for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - monotonic(), 0))
    if any(thread.is_alive() for thread in threads):
        _ONCE.gave_up(seconds)


def _shutdown(provider: Any, seconds: float) -> None:
    try:
        if hasattr(provider, "get_meter"):
            provider.shutdown(timeout_millis=seconds * 1000)
        else:
            provider.shutdown()
    except Exception as exc:
        log.debug("llmtrace: shutting down %r failed: %r", provider, exc)
