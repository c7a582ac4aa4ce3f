"""Anthropic Messages API (first-party, Bedrock, Vertex; stable and beta)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace

from .._cache import CacheIntent
from .._stream import Patch
from . import KindCache, ProviderNames, given, request_options, start_call, with_options

if TYPE_CHECKING:
    from .._record import CallRecord, EventReader
    from .._telemetry import Telemetry

MESSAGES_PATHS = frozenset({"/v1/messages", "/v1/messages?beta=true"})
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


class AnthropicAdapter:
    sdk = "anthropic"
    patches = (
        Patch("anthropic._base_client", "SyncAPIClient.request", "call"),
        Patch("anthropic._base_client", "AsyncAPIClient.request", "async_call"),
    )

    def __init__(self) -> None:
        self.provider = ProviderNames(lambda name: "aws.bedrock" if "Bedrock" in name or "AWS" in name
                                      else "gcp.vertex_ai" if "Vertex" in name or "GoogleCloud" in name
                                      else "anthropic")
        self.result_kind = _result_kinds()
        self.read_event = event_reader()

    def start(self, telemetry: Telemetry, instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[CallRecord, tuple[Any, ...], dict[str, Any]] | None:
        options = request_options(args, kwargs)
        if options is None or options.url not in MESSAGES_PATHS or options.method.lower() != "post":
            return None
        body = options.json_data if isinstance(options.json_data, dict) else {}
        model = given(body.get("model"), str)
        record = start_call(telemetry, instance, body, provider=self.provider(instance), operation="chat",
                            model=model, stream=bool(kwargs.get("stream", False)), read=self.read_event,
                            read_final=read_message, cache=cache_intent(body, model), max_tokens=body.get("max_tokens"))
        if options.span_name:
            args, kwargs = _without_native_span(instance, options, record, args, kwargs)
        return record, args, kwargs

    def items(self, stream: Any) -> Any:
        # anthropic 2.13: Stream.__iter__ / __aiter__ also report each item to the SDK's own tracing observer
        return stream


def read_message(record: CallRecord, message: Any) -> None:
    record.response_id = message.id
    record.response_model = message.model
    record.finish_reason = message.stop_reason
    read_usage(record, message.usage)
    record.output_final = True
    _read_diagnostics(record, message)
    if record.capture is not None:
        for block in message.content or ():
            if getattr(block, "type", None) == "text":
                record.captured(block.text)


def event_reader() -> EventReader:
    """The stream event reader. Events are told apart by their `type` string (anthropic builds an event of an
    unknown type as its first union member with the foreign `type`), except content delta events, the bulk of a
    stream, whose class the SDK picks by that same `type`; deltas by class where the class is known, by their
    `type` otherwise. A class check costs a fraction of a pydantic field read (about 70 ns: pydantic's
    `__getattr__` keeps CPython from specialising attribute loads on its models)."""
    from anthropic.types import (InputJSONDelta, RawContentBlockDeltaEvent, SignatureDelta, TextDelta,
                                 ThinkingDelta)
    from anthropic.types.beta import (BetaInputJSONDelta, BetaRawContentBlockDeltaEvent, BetaSignatureDelta,
                                      BetaTextDelta, BetaThinkingDelta)

    delta_events = (RawContentBlockDeltaEvent, BetaRawContentBlockDeltaEvent)
    text_deltas = (TextDelta, BetaTextDelta)
    other_deltas = {InputJSONDelta: "partial_json", BetaInputJSONDelta: "partial_json",
                    ThinkingDelta: "thinking", BetaThinkingDelta: "thinking",
                    SignatureDelta: None, BetaSignatureDelta: None}  # a signature is not generated content

    def read_event(r: CallRecord, event: Any) -> None:
        kind = "content_block_delta" if type(event) in delta_events else event.type
        if kind == "content_block_delta":
            delta = event.delta
            cls = type(delta)
            if cls in text_deltas:
                text = delta.text
                r.out_chars += len(text)
                if r.capture is not None:
                    r.captured(text)
            else:
                field = other_deltas.get(cls, _BY_TYPE)
                if field is _BY_TYPE:  # a delta class this table does not know: its `type` decides
                    field = _DELTA_FIELDS.get(delta.type, "")
                if field is None:
                    return
                if field:
                    r.out_chars += len(getattr(delta, field, None) or "")
            if not r.first_token:
                r.first_token = r.last
        elif kind == "message_delta":
            r.finish_reason = event.delta.stop_reason
            usage = event.usage
            if usage is not None:
                _read_delta_usage(r, usage)
        elif kind == "message_start":
            message = event.message
            r.response_id = message.id
            r.response_model = message.model
            if message.usage is not None:
                read_usage(r, message.usage)  # anthropic 2.12: output_tokens here is a placeholder
            _read_diagnostics(r, message)
        elif kind == "message_stop":
            r.terminal = True

    return read_event


_BY_TYPE = object()
# Content delta `type` -> the field holding its generated text ("" for content without a known text field,
# None for what is not generated content).
_DELTA_FIELDS: dict[str, str | None] = {"text_delta": "text", "input_json_delta": "partial_json",
                                        "thinking_delta": "thinking", "signature_delta": None}


def _read_delta_usage(r: CallRecord, usage: Any) -> None:
    # Cumulative totals: assign, never add. Input and cache fields are optional here.
    uncached = usage.input_tokens
    if uncached is None:
        uncached = r.input_tokens - r.cache_read - r.cache_write
    if usage.cache_read_input_tokens is not None:
        r.cache_read = usage.cache_read_input_tokens
    if usage.cache_creation_input_tokens is not None:
        r.cache_write = usage.cache_creation_input_tokens
        r.cache_write_1h = min(r.cache_write_1h, r.cache_write)
    r.input_tokens = uncached + r.cache_read + r.cache_write
    r.output_tokens = usage.output_tokens
    r.output_final = r.usage_seen = True
    details = getattr(usage, "output_tokens_details", None)
    if details is not None and details.thinking_tokens:
        r.reasoning_tokens = details.thinking_tokens


def read_usage(r: CallRecord, usage: Any) -> None:
    r.cache_read = usage.cache_read_input_tokens or 0
    r.cache_write = usage.cache_creation_input_tokens or 0
    breakdown = usage.cache_creation
    r.cache_write_1h = (breakdown.ephemeral_1h_input_tokens or 0) if breakdown is not None else 0
    r.input_tokens = (usage.input_tokens or 0) + r.cache_read + r.cache_write
    r.output_tokens = usage.output_tokens or 0
    r.usage_seen = True
    details = getattr(usage, "output_tokens_details", None)
    if details is not None and details.thinking_tokens:
        r.reasoning_tokens = details.thinking_tokens


def _read_diagnostics(r: CallRecord, message: Any) -> None:
    # The provider's own cache diagnosis, present when the request asked for it (`diagnostics=`).
    diagnostics = getattr(message, "diagnostics", None)
    reason = getattr(diagnostics, "cache_miss_reason", None)
    if reason is not None:
        r.provider_miss_reason = getattr(reason, "type", None) or str(reason)


def cache_intent(body: dict[str, Any], model: str | None) -> CacheIntent | None:
    """The cacheable prefix a request marked (block-level or top-level `cache_control`), or None."""
    ttls: list[str] = []
    top = given(body.get("cache_control"), dict)
    if top is not None:
        ttls.append(top.get("ttl", "5m"))
    tools = given(body.get("tools"), list)
    system = body.get("system")
    messages = given(body.get("messages"), list) or []
    for block in tools or ():
        _collect_ttl(block, ttls)
    for block in given(system, list) or ():
        _collect_ttl(block, ttls)
    last_breakpoint = len(messages) - 1 if top is not None else -1
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            before = len(ttls)
            for block in content:
                _collect_ttl(block, ttls)
            if len(ttls) > before:
                last_breakpoint = max(last_breakpoint, i)
    if not ttls:
        return None
    ttl = max(TTL_SECONDS.get(t, 300.0) for t in ttls)
    return CacheIntent("anthropic", model or "", tools, given(system, (str, list)), messages[: last_breakpoint + 1], ttl)


def _collect_ttl(block: Any, ttls: list[str]) -> None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if isinstance(control, dict):
        ttls.append(control.get("ttl", "5m"))


def _without_native_span(instance: Any, options: Any, record: CallRecord, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """anthropic >= 2.10 traces its own calls: keep one GenAI span per call (ours), and its propagation."""
    settings = instance.open_telemetry
    if not settings["traces"]["enabled"]:
        return args, kwargs
    update: dict[str, Any] = {"span_name": None}  # the SDK starts no span for a request without a span name
    if settings["propagation"]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(record.span))
        if carrier:
            headers = options.headers if isinstance(options.headers, dict) else {}
            update["headers"] = {**headers, **carrier}
    return with_options(args, kwargs, options.model_copy(update=update))


def _result_kinds() -> KindCache:
    import anthropic
    from anthropic._response import APIResponse, AsyncAPIResponse

    return KindCache(((anthropic.Stream, "stream"), (anthropic.AsyncStream, "async_stream"),
                      (APIResponse, "response"), (AsyncAPIResponse, "async_response")))

