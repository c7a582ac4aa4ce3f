"""The OTLP exporters llmtrace sets up when the app configured none, reporting failures once on our logger.

A dead or hanging collector must cost the app nothing: export runs on the SDK's background threads,
each attempt is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT`, and the first failure is logged once on the
`llmtrace` logger, in place of the exporters' own message per attempt. At exit, the final flush makes
one attempt instead of retrying until the timeout, so a dead collector does not hold the app's exit
for long.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Sequence
from typing import Any

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
            endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
            log.warning("llmtrace could not export %s to %s (%s); the app is unaffected, telemetry is being "
                        "dropped until the collector answers", what, endpoint, detail)


_ONCE = _Once()  # one warning for the collector, whichever signal meets it first
_REPORTERS: weakref.WeakSet[Any] = weakref.WeakSet()


def no_retries_at_exit() -> None:
    """Registered after the providers' exit hooks, so it runs before them (atexit is last-in, first-out)."""
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
