"""Telemetry: turns a finished CallRecord into span attributes and metric points, once, without ever raising."""

from __future__ import annotations

import json
import logging
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any, Callable, Mapping

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from . import _cache, _prefix
from . import _semconv as sc
from ._metrics import instruments_for
from ._pricing import Cost, PriceTable
from ._record import Outcome
from ._tokens import CHARS_PER_TOKEN, estimate_tokens
from ._version import __version__

if TYPE_CHECKING:
    from ._record import CallRecord, EventReader

log = logging.getLogger("llmtrace")

DEFAULT_CAPTURE_MAX_CHARS = 16_384  # per captured attribute; a span carries at most three
# Told of every finished call, with its span attributes (the pytest plugin's `llm_cache` fixture is one).
Observer = Callable[["CallRecord", Mapping[str, Any]], None]


class Telemetry:
    """One per `instrument()`: the tracer, instruments, prices and prefix memory that every call reports to."""

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None, *,
                 capture_content: bool, prices: PriceTable, capture_max_chars: int = DEFAULT_CAPTURE_MAX_CHARS,
                 emit_cache_creation: bool = True, openai_stream_usage: bool = False) -> None:
        from opentelemetry import metrics, trace

        self.tracer = trace.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider)
        meter_provider = meter_provider or metrics.get_meter_provider()
        meter = metrics.get_meter(sc.INSTRUMENTATION_SCOPE, __version__, meter_provider=meter_provider)
        self.instruments = instruments_for(meter, meter_provider)
        self.capture_content = capture_content
        self.capture_max_chars = capture_max_chars
        self.emit_cache_creation = emit_cache_creation
        self.openai_stream_usage = openai_stream_usage
        self.prices = prices
        self.prefixes = _cache.PrefixMemory()
        self.fingerprint_salt = _prefix.salt_from_env()
        self.observers: tuple[Observer, ...] = ()  # replaced, never mutated: finishing calls read it unlocked
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()

    # --- logging: a failing exporter or an odd event must not flood the app's logs ---
    def warn_once(self, key: str, message: str, *args: Any) -> None:
        with self._warned_lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning(message, *args)

    def reader_failed(self, record: CallRecord, exc: Exception) -> EventReader:
        """Log once; the rest of this stream passes through unread (returns the reader to use from now on)."""
        record.read = _skip_event
        self.warn_once(f"reader:{record.provider}:{type(exc).__name__}",
                       "llmtrace could not read a %s stream event (%r); the app is unaffected, and this "
                       "call's telemetry may be incomplete", record.provider, exc)
        return _skip_event

    # --- the call ---
    def start(self, read: EventReader, read_final: EventReader, *, provider: str, operation: str, model: str | None, stream: bool,
              server_address: str | None, server_port: int | None, request: Any,
              cache: _cache.CacheIntent | None, attributes: dict[str, Any]) -> CallRecord:
        from ._record import CallRecord

        attrs: dict[str, Any] = {sc.OPERATION_NAME: operation, sc.PROVIDER_NAME: provider, sc.REQUEST_STREAM: stream}
        if model:
            attrs[sc.REQUEST_MODEL] = model
        if server_address:
            attrs[sc.SERVER_ADDRESS] = server_address
        if server_port:
            attrs[sc.SERVER_PORT] = server_port
        attrs.update(attributes)
        if self.capture_content:
            self._capture_request(attrs, request)
        span = self.tracer.start_span(f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT,
                                      attributes=attrs)
        record = CallRecord(self, span, read, read_final, provider=provider, operation=operation, request_model=model,
                            server_address=server_address, server_port=server_port, stream=stream,
                            request=request, cache=cache)
        if self.capture_content:
            record.capture, record.capture_room = [], self.capture_max_chars
        return record

    def finish(self, r: CallRecord, end_time: float) -> None:
        try:
            outcome = self._finish(r, end_time)
        except Exception as exc:
            self.warn_once(f"finish:{type(exc).__name__}", "llmtrace could not record a call: %r", exc)
            _end_quietly(r.span)
            return
        finally:
            r.request = None  # release the request body as soon as the call is over
        try:
            self.instruments.record(outcome, r.span)
        except Exception as exc:
            self.warn_once(f"metrics:{type(exc).__name__}", "llmtrace could not record metrics: %r", exc)

    def _finish(self, r: CallRecord, end_time: float) -> Outcome:
        span = r.span
        attrs: dict[str, Any] = {sc.STREAM_OUTCOME: r.outcome}
        if not r.request_model and r.response_model:
            span.update_name(f"{r.operation} {r.response_model}")
        if r.response_id:
            attrs[sc.RESPONSE_ID] = r.response_id
        if r.response_model:
            attrs[sc.RESPONSE_MODEL] = r.response_model
        if r.finish_reasons:
            attrs[sc.RESPONSE_FINISH_REASONS] = tuple(r.finish_reasons[i] for i in sorted(r.finish_reasons))
        elif r.finish_reason:
            attrs[sc.RESPONSE_FINISH_REASONS] = (r.finish_reason,)
        provider_usage, output_tokens = self._usage(r, attrs)
        cache_outcome, miss_reason, cost = self._cache(r, attrs, output_tokens) if r.usage_seen else (None, None, None)
        if r.cache is not None:
            attrs[sc.CACHE_PREFIX_FINGERPRINT] = r.cache.fingerprint(self.fingerprint_salt)
        ttfc = r.first_token - r.start if r.first_token else None
        if r.stream:
            attrs[sc.STREAM_CHUNKS] = r.chunks
            if r.chunks:
                attrs[sc.STREAM_TIME_TO_FIRST_EVENT] = r.first_chunk - r.start
                attrs[sc.STREAM_MAX_CHUNK_GAP] = r.max_gap
            if ttfc is not None:
                attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        if r.capture is not None:
            text = "".join(r.capture)
            attrs[sc.OUTPUT_MESSAGES] = text if r.capture_room >= 0 else text + "…[truncated]"
        error_type = None
        if r.outcome == "error":
            error_type = r.provider_error or _error_type(r.error)
            attrs[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, str(r.error) if r.error is not None else error_type))
        span.set_attributes(attrs)
        # The span ends when the call did: the work above (counting tokens, above all) is not the call's time.
        started = getattr(span, "start_time", None)
        span.end(end_time=started + int((end_time - r.start) * 1e9) if isinstance(started, int) else None)
        for observe in self.observers:
            self._notify(observe, r, attrs)
        return Outcome(
            provider=r.provider, model=r.request_model or r.response_model or "unknown", operation=r.operation,
            server_address=r.server_address, duration=end_time - r.start, error_type=error_type,
            stream_outcome=r.outcome or "error", time_to_first_chunk=ttfc if r.stream else None,
            chunks=r.chunks if r.stream else None, provider_usage=provider_usage, input_tokens=r.input_tokens,
            output_tokens=r.output_tokens, cache_read=r.cache_read, cache_write=r.cache_write,
            cache_outcome=cache_outcome, miss_reason=miss_reason, cost=cost if provider_usage else None,
        )

    def _usage(self, r: CallRecord, attrs: dict[str, Any]) -> tuple[bool, int]:
        """Usage attributes: the provider's numbers, or an estimate labelled as one. Returns
        (whether the provider reported all of it, the output tokens on the span)."""
        provider_usage = r.usage_seen and (r.output_final or not r.stream)
        counter, r.out_text = r.out_text, None  # its text is let go whatever happens
        if provider_usage:
            output_tokens = r.output_tokens
        elif counter is not None:  # a stream known from its start to carry no usage: the tokenizer's count
            output_tokens = counter.total()
        else:
            output_tokens = -(-r.out_chars // CHARS_PER_TOKEN)
        got_response = r.chunks > 0 or (not r.stream and r.outcome == "completed")
        if r.usage_seen or got_response:
            attrs[sc.USAGE_INPUT_TOKENS] = r.input_tokens if r.usage_seen else _estimate_prompt_tokens(r.request)
            attrs[sc.USAGE_OUTPUT_TOKENS] = output_tokens
            attrs[sc.USAGE_SOURCE] = "provider" if provider_usage else "estimated"
            if r.reasoning_tokens:
                attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = r.reasoning_tokens
        return provider_usage, output_tokens

    def _cache(self, r: CallRecord, attrs: dict[str, Any],
               output_tokens: int) -> tuple[str, str | None, Cost | None]:
        """Cache and cost attributes, from the provider's cache numbers (0 is a fact, and kept)."""
        attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = r.cache_read
        attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] = r.cache_write
        if self.emit_cache_creation:
            attrs[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] = r.cache_write
        if r.input_tokens:
            attrs[sc.CACHE_HIT_RATIO] = r.cache_read / r.input_tokens
        cache_outcome = _cache.cache_outcome(r.cache_read, r.cache_write, r.cache is not None)
        attrs[sc.CACHE_OUTCOME] = cache_outcome
        miss_reason = self._miss_reason(r, cache_outcome, attrs)
        if miss_reason:
            attrs[sc.CACHE_MISS_REASON] = miss_reason
        if r.cache is not None:
            attrs[sc.CACHE_TTL] = r.cache.ttl
        cost = self._cost(r, output_tokens)
        if cost is not None:
            attrs[sc.COST_USD] = cost.total
            attrs[sc.CACHE_SAVINGS_USD] = cost.savings
        return cache_outcome, miss_reason, cost

    def _miss_reason(self, r: CallRecord, cache_outcome: str, attrs: dict[str, Any]) -> str | None:
        if r.cache is None:
            return None
        # Remember every cacheable prefix, hits included: a later miss is explained against it.
        diagnosis = self.prefixes.observe(r.cache, cache_outcome, monotonic())
        if cache_outcome not in ("write", "miss"):
            return None
        if r.provider_miss_reason:
            reason = r.provider_miss_reason
        elif cache_outcome == "miss" and _cache.below_minimum(r.cache):
            return "below_minimum"
        else:
            reason = diagnosis.reason
        if diagnosis.block is not None and _cache.LOCATED.get(reason or "") == diagnosis.part:
            attrs[sc.CACHE_CHANGED_BLOCK] = diagnosis.block
            if diagnosis.offset is not None:
                attrs[sc.CACHE_CHANGED_OFFSET] = diagnosis.offset
        return reason

    def _notify(self, observe: Observer, r: CallRecord, attrs: Mapping[str, Any]) -> None:
        try:
            observe(r, attrs)
        except Exception as exc:
            self.warn_once(f"observer:{type(exc).__name__}", "llmtrace: a call observer failed: %r", exc)

    def _cost(self, r: CallRecord, output_tokens: int) -> Cost | None:
        model = r.response_model if r.response_model and self.prices.lookup(r.response_model) else r.request_model
        if not model:
            return None
        return self.prices.cost(model, input_tokens=r.input_tokens, output_tokens=output_tokens,
                                cache_read=r.cache_read, cache_write=r.cache_write, cache_write_1h=r.cache_write_1h)

    def _capture_request(self, attrs: dict[str, Any], request: Any) -> None:
        if not isinstance(request, dict):
            return
        messages = request.get("messages", request.get("input", request.get("prompt")))
        system = request.get("system", request.get("instructions"))
        if messages is not None:
            attrs[sc.INPUT_MESSAGES] = _capped(_json(messages), self.capture_max_chars)
        if isinstance(system, (str, list)):
            attrs[sc.SYSTEM_INSTRUCTIONS] = _capped(_json(system), self.capture_max_chars)


def _skip_event(record: CallRecord, event: Any) -> None:
    pass


def _end_quietly(span: Any) -> None:
    try:
        span.end()
    except Exception:
        pass  # already reported by warn_once in finish(); a broken span processor must not reach the app


# What both SDKs raise for an error the provider reports inside a stream (anthropic 2.13, openai 3.57): the
# class says nothing, the provider's error type (`overloaded_error`, `server_error`) says what happened.
_GENERIC_SDK_ERRORS = frozenset({"APIError", "APIStatusError"})


def _error_type(error: BaseException | None) -> str:
    """The exception's class name, which both SDKs give the same failure (`RateLimitError` for any 429, where the
    providers' own types are `rate_limit_error` and `requests`); the provider's type for their generic class."""
    if error is None:
        return "error"
    name = type(error).__name__
    if name in _GENERIC_SDK_ERRORS:
        provider_type = getattr(error, "type", None)
        if isinstance(provider_type, str) and provider_type:
            return provider_type
    return name


def _estimate_prompt_tokens(request: Any) -> int:
    if not isinstance(request, dict):
        return 0
    parts = [request.get(k) for k in ("system", "instructions", "tools", "messages", "input", "prompt")]
    return sum(estimate_tokens(t, remember=True) for p in parts if p is not None for t in _cache.texts(p))


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"

