"""The metric instruments, recorded once per call when its outcome is known (never per chunk).

Counters add up in a small in-process table (one dict update per value) that observable counters
report when a reader collects: the OpenTelemetry SDK spends ~10 µs on each synchronous measurement,
and a call has eight counter values. Histograms stay synchronous (there is no asynchronous
histogram); their exemplars point at the call's span.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Span, set_span_in_context

from . import _semconv as sc

if TYPE_CHECKING:
    from ._telemetry import Outcome

Key = tuple[tuple[str, str], ...]  # a point's attributes, as items


class _Totals:
    """Cumulative sums by attribute set; bounded by the attributes' cardinality, like the SDK's own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[Key, float] = {}

    def add(self, key: Key, value: float) -> None:
        with self._lock:
            self._sums[key] = self._sums.get(key, 0) + value

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._sums.items())
        return [Observation(value, dict(key)) for key, value in items]


class Instruments:
    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION, unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS)
        self.time_to_first_chunk = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
            description="Time from the call to the first chunk of generated content",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS)
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE, unit="{token}", description="Input and output tokens per call",
            explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS)
        self.chunks = meter.create_histogram(
            sc.METRIC_STREAM_CHUNKS, unit="{chunk}", description="Items per stream",
            explicit_bucket_boundaries_advisory=sc.CHUNK_BUCKETS)
        self.usage_tokens = self._counter(meter, sc.METRIC_USAGE_TOKENS, "{token}",
                                          "Tokens by type; input includes cache reads and writes")
        self.requests = self._counter(meter, sc.METRIC_REQUESTS, "{request}",
                                      "Calls by stream outcome and cache outcome")
        self.cost = self._counter(meter, sc.METRIC_COST, "{USD}", "Cost of calls, from the price table")
        self.savings = self._counter(meter, sc.METRIC_CACHE_SAVINGS, "{USD}", "Discount earned by prompt-cache reads")
        self.write_premium = self._counter(meter, sc.METRIC_CACHE_WRITE_PREMIUM, "{USD}",
                                           "Extra paid for prompt-cache writes")

    @staticmethod
    def _counter(meter: Meter, name: str, unit: str, description: str) -> _Totals:
        totals = _Totals()
        meter.create_observable_counter(name, callbacks=[totals.observe], unit=unit, description=description)
        return totals

    def record(self, o: Outcome, span: Span) -> None:
        base = {sc.PROVIDER_NAME: o.provider, sc.REQUEST_MODEL: o.model, sc.OPERATION_NAME: o.operation}
        if o.server_address:
            base[sc.SERVER_ADDRESS] = o.server_address
        key: Key = tuple(base.items())  # built in the same order every time, so equal sets give equal keys
        context = set_span_in_context(span)  # exemplars link latency buckets to this call's trace
        self.duration.record(o.duration, {**base, sc.ERROR_TYPE: o.error_type} if o.error_type else base, context)
        if o.time_to_first_chunk is not None:
            self.time_to_first_chunk.record(o.time_to_first_chunk, base, context)
        if o.chunks is not None:
            self.chunks.record(o.chunks, base, context)
        requests = [(sc.STREAM_OUTCOME, o.stream_outcome)]
        if o.cache_outcome is not None:
            requests.append((sc.CACHE_OUTCOME, o.cache_outcome))
        if o.miss_reason is not None:
            requests.append((sc.CACHE_MISS_REASON, o.miss_reason))
        self.requests.add(key + tuple(requests), 1)
        if not o.provider_usage:  # estimates stay on the span: metrics carry the provider's numbers only
            return
        self.token_usage.record(o.input_tokens, {**base, sc.TOKEN_TYPE: "input"}, context)
        self.token_usage.record(o.output_tokens, {**base, sc.TOKEN_TYPE: "output"}, context)
        for token_type, value in (("input", o.input_tokens), ("output", o.output_tokens),
                                  ("cache_read", o.cache_read), ("cache_write", o.cache_write)):
            self.usage_tokens.add(key + ((sc.LLMTRACE_TOKEN_TYPE, token_type),), value)
        if o.cost is not None:
            self.cost.add(key, o.cost.total)
            self.savings.add(key, o.cost.read_discount)
            self.write_premium.add(key, o.cost.write_premium)


_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_by_provider_lock = threading.Lock()


def instruments_for(meter: Meter, provider: MeterProvider) -> Instruments:
    """One set of instruments per meter provider: instrumenting again reuses them (and their totals)."""
    with _by_provider_lock:
        found = _by_provider.get(provider)
        if found is None:
            found = _by_provider[provider] = Instruments(meter)
        return found
