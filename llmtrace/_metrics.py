"""The metric instruments, recorded once per call when its outcome is known (never per chunk).

Counters add up in a small in-process table (one dict update per value, all of a call's under one
lock) that observable counters report when a reader collects: the OpenTelemetry SDK spends ~8 µs on
each synchronous measurement, and a call has eight counter values. Histograms stay synchronous (there
is no asynchronous histogram); the latency ones carry exemplars pointing at the call's span. Attribute
sets are built once per (provider, model, operation, server) and reused.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Span, set_span_in_context

from . import _semconv as sc

if TYPE_CHECKING:
    from ._record import Outcome

Key = tuple[tuple[str, str], ...]  # a point's attributes, as items
NO_EXEMPLAR = Context()  # a context with no span: the SDK's trace-based filter samples no exemplar from it
CACHE_LIMIT = 2048  # attribute sets kept per table; past it they are built per call (like the SDK's own limit)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")


class _Points:
    """The attribute sets of one (provider, model, operation, server): built once, reused by every call.

    The SDK copies the attributes it is given, so the same dicts can be passed every time."""

    __slots__ = ("base", "key", "input", "output", "usage_keys", "_requests", "_errors")

    def __init__(self, provider: str, model: str, operation: str, server_address: str | None) -> None:
        base = {sc.PROVIDER_NAME: provider, sc.REQUEST_MODEL: model, sc.OPERATION_NAME: operation}
        if server_address:
            base[sc.SERVER_ADDRESS] = server_address
        self.base = base
        self.key: Key = tuple(base.items())
        self.input = {**base, sc.TOKEN_TYPE: "input"}
        self.output = {**base, sc.TOKEN_TYPE: "output"}
        self.usage_keys = tuple(self.key + ((sc.LLMTRACE_TOKEN_TYPE, t),) for t in TOKEN_TYPES)
        self._requests: dict[tuple[str, str | None, str | None], Key] = {}
        self._errors: dict[str, dict[str, str]] = {}

    def requests(self, stream_outcome: str, cache_outcome: str | None, miss_reason: str | None) -> Key:
        found = self._requests.get((stream_outcome, cache_outcome, miss_reason))
        if found is None:
            extra = [(sc.STREAM_OUTCOME, stream_outcome)]
            if cache_outcome is not None:
                extra.append((sc.CACHE_OUTCOME, cache_outcome))
            if miss_reason is not None:
                extra.append((sc.CACHE_MISS_REASON, miss_reason))
            found = self.key + tuple(extra)
            if len(self._requests) < CACHE_LIMIT:
                self._requests[(stream_outcome, cache_outcome, miss_reason)] = found
        return found

    def with_error(self, error_type: str) -> dict[str, str]:
        found = self._errors.get(error_type)
        if found is None:
            found = {**self.base, sc.ERROR_TYPE: error_type}
            if len(self._errors) < CACHE_LIMIT:
                self._errors[error_type] = found
        return found


class _Sums:
    """Cumulative sums by attribute set for one counter; read by its observable counter at collection."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.sums: dict[Key, float] = {}

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self.sums.items())
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
        self._lock = threading.Lock()  # one for every counter: a call adds all its values at once
        self.usage_tokens = self._counter(meter, sc.METRIC_USAGE_TOKENS, "{token}",
                                          "Tokens by type; input includes cache reads and writes")
        self.requests = self._counter(meter, sc.METRIC_REQUESTS, "{request}",
                                      "Calls by stream outcome and cache outcome")
        self.cost = self._counter(meter, sc.METRIC_COST, "{USD}", "Cost of calls, from the price table")
        self.savings = self._counter(meter, sc.METRIC_CACHE_SAVINGS, "{USD}", "Discount earned by prompt-cache reads")
        self.write_premium = self._counter(meter, sc.METRIC_CACHE_WRITE_PREMIUM, "{USD}",
                                           "Extra paid for prompt-cache writes")
        self._points: dict[tuple[str, str, str, str | None], _Points] = {}

    def _counter(self, meter: Meter, name: str, unit: str, description: str) -> _Sums:
        sums = _Sums(self._lock)
        meter.create_observable_counter(name, callbacks=[sums.observe], unit=unit, description=description)
        return sums

    def points(self, provider: str, model: str, operation: str, server_address: str | None) -> _Points:
        found = self._points.get((provider, model, operation, server_address))
        if found is None:
            found = _Points(provider, model, operation, server_address)
            if len(self._points) < CACHE_LIMIT:  # model names come from requests: bounded
                self._points[(provider, model, operation, server_address)] = found
        return found

    def record(self, o: Outcome, span: Span) -> None:
        points = self.points(o.provider, o.model, o.operation, o.server_address)
        # Exemplars link latency buckets to this call's trace; counts of tokens and chunks need none.
        context = set_span_in_context(span)
        self.duration.record(o.duration, points.with_error(o.error_type) if o.error_type else points.base, context)
        if o.time_to_first_chunk is not None:
            self.time_to_first_chunk.record(o.time_to_first_chunk, points.base, context)
        if o.chunks is not None:
            self.chunks.record(o.chunks, points.base, NO_EXEMPLAR)
        requests = points.requests(o.stream_outcome, o.cache_outcome, o.miss_reason)
        if not o.provider_usage:  # estimates stay on the span: metrics carry the provider's numbers only
            with self._lock:
                _add(self.requests.sums, requests, 1)
            return
        self.token_usage.record(o.input_tokens, points.input, NO_EXEMPLAR)
        self.token_usage.record(o.output_tokens, points.output, NO_EXEMPLAR)
        key, (k_input, k_output, k_read, k_write) = points.key, points.usage_keys
        cost = o.cost
        with self._lock:
            _add(self.requests.sums, requests, 1)
            tokens = self.usage_tokens.sums
            _add(tokens, k_input, o.input_tokens)
            _add(tokens, k_output, o.output_tokens)
            _add(tokens, k_read, o.cache_read)
            _add(tokens, k_write, o.cache_write)
            if cost is not None:
                _add(self.cost.sums, key, cost.total)
                _add(self.savings.sums, key, cost.read_discount)
                _add(self.write_premium.sums, key, cost.write_premium)


def _add(sums: dict[Key, float], key: Key, value: float) -> None:
    sums[key] = sums.get(key, 0) + value


_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_by_provider_lock = threading.Lock()


def instruments_for(meter: Meter, provider: MeterProvider) -> Instruments:
    """One set of instruments per meter provider: instrumenting again reuses them (and their totals)."""
    with _by_provider_lock:
        found = _by_provider.get(provider)
        if found is None:
            found = _by_provider[provider] = Instruments(meter)
        return found
