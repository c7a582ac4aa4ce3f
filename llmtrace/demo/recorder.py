"""What the demo shows: one row per finished llmtrace span, read back from llmtrace's own telemetry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import _semconv as sc


@dataclass(frozen=True, slots=True)
class Call:
    at: float  # seconds since the demo started, when the call ended
    phase: str  # "before" or "after" the scenario's change, by when the call started
    provider: str
    model: str
    outcome: str
    error_type: str | None
    ttft: float | None
    chunks: int
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    cache_outcome: str | None
    miss_reason: str | None
    cost: float | None
    savings: float | None


class Recorder(SpanExporter):
    """A span exporter that keeps the attributes the demo shows (the demo's own calls only: bounded).

    Its clock starts with the workload (`start()`), not when it is made: the emulator and the SDKs take a few
    seconds to come up, and the view, the summary and the report all count from the first request.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started: float | None = None
        self.changed_at: float | None = None  # seconds since the start, when the scenario changed things
        self._changed_ns: int | None = None  # the same instant on the spans' clock
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def start(self) -> None:
        self.started = self._clock()

    def elapsed(self) -> float:
        """Seconds since the workload started (0 before)."""
        return 0.0 if self.started is None else self._clock() - self.started

    @property
    def changed(self) -> bool:
        return self._changed_ns is not None

    def change(self) -> None:
        self.changed_at = self.elapsed()
        self._changed_ns = time.time_ns()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            if span.instrumentation_scope is None or span.instrumentation_scope.name != sc.INSTRUMENTATION_SCOPE:
                continue
            a = span.attributes or {}
            after = self._changed_ns is not None and (span.start_time or 0) >= self._changed_ns
            call = Call(
                at=self.elapsed(), phase="after" if after else "before",
                provider=str(a.get(sc.PROVIDER_NAME, "")), model=str(a.get(sc.REQUEST_MODEL, "")),
                outcome=str(a.get(sc.STREAM_OUTCOME, "")), error_type=a.get(sc.ERROR_TYPE),  # type: ignore[arg-type]
                ttft=a.get(sc.RESPONSE_TIME_TO_FIRST_CHUNK),  # type: ignore[arg-type]
                chunks=int(a.get(sc.STREAM_CHUNKS, 0)),  # type: ignore[arg-type]
                input_tokens=int(a.get(sc.USAGE_INPUT_TOKENS, 0)),  # type: ignore[arg-type]
                output_tokens=int(a.get(sc.USAGE_OUTPUT_TOKENS, 0)),  # type: ignore[arg-type]
                cache_read=int(a.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0)),  # type: ignore[arg-type]
                cache_write=int(a.get(sc.USAGE_CACHE_WRITE_INPUT_TOKENS, 0)),  # type: ignore[arg-type]
                cache_outcome=a.get(sc.CACHE_OUTCOME), miss_reason=a.get(sc.CACHE_MISS_REASON),  # type: ignore[arg-type]
                cost=a.get(sc.COST_USD), savings=a.get(sc.CACHE_SAVINGS_USD),  # type: ignore[arg-type]
            )
            with self._lock:
                self.calls.append(call)
        return SpanExportResult.SUCCESS

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def shutdown(self) -> None:
        pass
