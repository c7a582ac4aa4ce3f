"""The metric instruments, recorded once per call when its outcome is known (never per chunk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.metrics import Meter

from . import _semconv as sc

if TYPE_CHECKING:
    from ._telemetry import Outcome


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
        self.usage_tokens = meter.create_counter(
            sc.METRIC_USAGE_TOKENS, unit="{token}",
            description="Tokens by type; input includes cache reads and writes")
        self.requests = meter.create_counter(
            sc.METRIC_REQUESTS, unit="{request}", description="Calls by stream outcome and cache outcome")
        self.cost = meter.create_counter(sc.METRIC_COST, unit="{USD}", description="Cost of calls, from the price table")
        self.savings = meter.create_counter(
            sc.METRIC_CACHE_SAVINGS, unit="{USD}", description="Discount earned by prompt-cache reads")
        self.write_premium = meter.create_counter(
            sc.METRIC_CACHE_WRITE_PREMIUM, unit="{USD}", description="Extra paid for prompt-cache writes")
        self.chunks = meter.create_histogram(
            sc.METRIC_STREAM_CHUNKS, unit="{chunk}", description="Items per stream",
            explicit_bucket_boundaries_advisory=sc.CHUNK_BUCKETS)

    def record(self, o: Outcome) -> None:
        base = {
            sc.PROVIDER_NAME: o.provider,
            sc.REQUEST_MODEL: o.model,
            sc.OPERATION_NAME: o.operation,
        }
        if o.server_address:
            base[sc.SERVER_ADDRESS] = o.server_address
        self.duration.record(o.duration, {**base, sc.ERROR_TYPE: o.error_type} if o.error_type else base)
        if o.time_to_first_chunk is not None:
            self.time_to_first_chunk.record(o.time_to_first_chunk, base)
        if o.chunks is not None:
            self.chunks.record(o.chunks, base)
        requests = {**base, sc.STREAM_OUTCOME: o.stream_outcome}
        if o.cache_outcome is not None:
            requests[sc.CACHE_OUTCOME] = o.cache_outcome
        if o.miss_reason is not None:
            requests[sc.CACHE_MISS_REASON] = o.miss_reason
        self.requests.add(1, requests)
        if not o.provider_usage:  # estimates stay on the span: metrics carry the provider's numbers only
            return
        self.token_usage.record(o.input_tokens, {**base, sc.TOKEN_TYPE: "input"})
        self.token_usage.record(o.output_tokens, {**base, sc.TOKEN_TYPE: "output"})
        for token_type, value in (("input", o.input_tokens), ("output", o.output_tokens),
                                  ("cache_read", o.cache_read), ("cache_write", o.cache_write)):
            self.usage_tokens.add(value, {**base, sc.LLMTRACE_TOKEN_TYPE: token_type})
        if o.cost is not None:
            self.cost.add(o.cost.total, base)
            self.savings.add(o.cost.read_discount, base)
            self.write_premium.add(o.cost.write_premium, base)
