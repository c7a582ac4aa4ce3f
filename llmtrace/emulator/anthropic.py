"""The Anthropic Messages API: `POST /v1/messages`, streamed and not, with prompt caching.

Caching as documented: the prefix runs tools -> system -> messages; each `cache_control` block (at most
four; the top-level parameter marks the last block) is a breakpoint. The longest cached breakpoint
prefix is read, and the prefix up to the last breakpoint is written, when it reaches the model's
minimum cacheable length. Every breakpoint's TTL (5m or 1h) is refreshed when read. The real cache also
finds hits up to 20 blocks before a breakpoint; the emulator matches at breakpoints only.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import _pricing
from ._cache import TTL_SECONDS, PromptCache
from ._common import Reply, RequestError, canonical, compose, sse, strings, text_tokens

DEFAULT_MINIMUM = 1024  # for models missing from llmtrace's table of minimum cacheable lengths
MAX_BREAKPOINTS = 4
MESSAGE_OVERHEAD = 3  # framing tokens per message, counted in the uncached tail
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_DIAGNOSED = 10_000  # requests remembered for `diagnostics.previous_message_id`

Frame = tuple[bytes, bool]  # (bytes on the wire, whether it carries generated content)


@dataclass(frozen=True)
class _Block:
    part: str  # "tools", "system" or "messages"
    key: str  # canonical text, without cache markers
    tokens: int
    ttl: str | None  # set on a breakpoint


@dataclass(frozen=True)
class _Fingerprint:
    model: str
    system: int
    tools: int
    messages: tuple[int, ...]
    prefix_tokens: int


@dataclass
class Plan:
    id: str
    model: str
    reply: Reply
    usage: dict[str, Any]
    diagnostics: dict[str, Any] | None


class Anthropic:
    name = "anthropic"

    def __init__(self, cache: PromptCache, reply_tokens: int) -> None:
        self._cache = cache
        self._reply_tokens = reply_tokens
        self._ids = itertools.count(1)
        self._fingerprints: OrderedDict[str, _Fingerprint] = OrderedDict()

    def plan(self, body: dict[str, Any]) -> Plan:
        model = body.get("model")
        messages = body.get("messages")
        max_tokens = body.get("max_tokens")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            raise RequestError(400, "model and a non-empty messages list are required")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise RequestError(400, "max_tokens: a positive integer is required")
        blocks = _blocks(body)
        read, write_5m, write_1h = self._use_cache(model, blocks)
        total = sum(b.tokens for b in blocks) + MESSAGE_OVERHEAD * len(messages)
        message_id = f"msg_emu{next(self._ids):012x}"
        diagnostics = self._diagnose(body, message_id, model, blocks, fully_read=read > 0 and not write_5m + write_1h)
        question = " ".join(strings(messages[-1].get("content")))
        return Plan(
            id=message_id, model=model, reply=compose(question, self._reply_tokens, max_tokens),
            usage={
                "input_tokens": total - read - write_5m - write_1h,
                "cache_creation_input_tokens": write_5m + write_1h,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
            },
            diagnostics=diagnostics,
        )

    def _use_cache(self, model: str, blocks: list[_Block]) -> tuple[int, int, int]:
        """(tokens read, written for 5 minutes, written for 1 hour)."""
        minimum = _pricing.min_cacheable_tokens(model, "anthropic") or DEFAULT_MINIMUM
        breakpoints = []  # (prefix key, prefix tokens, ttl)
        prefix, tokens = hash(model), 0
        for block in blocks:
            prefix, tokens = hash((prefix, block.key)), tokens + block.tokens
            if block.ttl is not None:
                breakpoints.append((prefix, tokens, block.ttl))
        if not breakpoints or breakpoints[-1][1] < minimum:
            return 0, 0, 0  # nothing to cache, or too short: processed without caching, without error
        read = next((t for key, t, _ in reversed(breakpoints) if t >= minimum and self._cache.read(key)), 0)
        written = {"5m": 0, "1h": 0}
        covered = read
        for key, t, ttl in breakpoints:
            if t > covered:
                written[ttl] += t - covered
                covered = t
            if t > read and t >= minimum:
                self._cache.write(key, TTL_SECONDS[ttl])
        return read, written["5m"], written["1h"]

    def _diagnose(self, body: dict[str, Any], message_id: str, model: str, blocks: list[_Block],
                  fully_read: bool) -> dict[str, Any] | None:
        """`diagnostics.cache_miss_reason` against `previous_message_id`, when the request asks for it."""
        asked = body.get("diagnostics")
        if not isinstance(asked, dict):
            return None
        current = _Fingerprint(
            model, hash(tuple(b.key for b in blocks if b.part == "system")),
            hash(tuple(b.key for b in blocks if b.part == "tools")),
            tuple(hash(canonical(m)) for m in body["messages"]),
            sum(b.tokens for b in blocks if b.ttl is not None or b.part != "messages"),
        )
        self._fingerprints[message_id] = current
        if len(self._fingerprints) > _DIAGNOSED:
            self._fingerprints.popitem(last=False)
        previous_id = asked.get("previous_message_id")
        if previous_id is None or fully_read:
            return {"cache_miss_reason": None}
        previous = self._fingerprints.get(previous_id)
        if previous is None:
            return {"cache_miss_reason": {"type": "previous_message_not_found"}}
        if previous.model != current.model:
            reason = "model_changed"
        elif previous.system != current.system:
            reason = "system_changed"
        elif previous.tools != current.tools:
            reason = "tools_changed"
        elif current.messages[:len(previous.messages)] != previous.messages:
            reason = "messages_changed"
        else:
            return {"cache_miss_reason": None}
        return {"cache_miss_reason": {"type": reason, "cache_missed_input_tokens": previous.prefix_tokens}}

    def document(self, plan: Plan) -> dict[str, Any]:
        message = self._message(plan, content=[{"type": "text", "text": plan.reply.text}])
        message.update(stop_reason=_stop_reason(plan.reply))
        message["usage"]["output_tokens"] = plan.reply.output_tokens
        return message

    def _message(self, plan: Plan, content: list[dict[str, Any]]) -> dict[str, Any]:
        message = {
            "id": plan.id, "type": "message", "role": "assistant", "model": plan.model, "content": content,
            "stop_reason": None, "stop_sequence": None,
            "usage": {**plan.usage, "output_tokens": 1, "service_tier": "standard"},
        }
        if plan.diagnostics is not None:
            message["diagnostics"] = plan.diagnostics
        return message

    def frames(self, plan: Plan, fault: str | None) -> Iterator[Frame]:
        """The event sequence of a streamed message (`ping` included, as the API sends it)."""
        yield sse("message_start", {"type": "message_start", "message": self._message(plan, content=[])}), False
        yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}), False
        yield sse("ping", {"type": "ping"}), False
        half = len(plan.reply.pieces) // 2
        for n, piece in enumerate(plan.reply.pieces):
            if n == half and fault == "error-event":
                yield self.error_event(), False
                return
            if n == half and fault == "malformed":
                yield b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "del\n\n', False
            if n == half and fault == "unknown-event":
                yield sse("future_event", {"type": "future_event", "detail": "not in this SDK version"}), False
            yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": piece}}), True
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0}), False
        if fault == "no-usage":
            return  # cut short without an error: no message_delta, so no final usage
        usage = {key: plan.usage[key] for key in
                 ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": _stop_reason(plan.reply), "stop_sequence": None},
                                    "usage": {**usage, "output_tokens": plan.reply.output_tokens}}), False
        yield sse("message_stop", {"type": "message_stop"}), False

    @staticmethod
    def error_event() -> bytes:
        return sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    @staticmethod
    def error(status: int, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def _stop_reason(reply: Reply) -> str:
    return "max_tokens" if reply.hit_limit else "end_turn"


def _blocks(body: dict[str, Any]) -> list[_Block]:
    """The request's blocks in cache-prefix order, with their breakpoints."""
    parts: list[tuple[str, dict[str, Any]]] = []
    for tool in body.get("tools") or []:
        parts.append(("tools", tool))
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or []:
        parts.append(("system", block))
    for message in body["messages"]:
        content = message.get("content")
        for block in [{"type": "text", "text": content}] if isinstance(content, str) else content or []:
            parts.append(("messages", {"role": message.get("role"), **block}))
    top = body.get("cache_control")
    marks = [p.get("cache_control") if isinstance(p, dict) else None for _, p in parts]
    if isinstance(top, dict) and parts and marks[-1] is None:
        marks[-1] = top  # the top-level parameter marks the last cacheable block
    if sum(m is not None for m in marks) > MAX_BREAKPOINTS:
        raise RequestError(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                f"Found {sum(m is not None for m in marks)}.")
    blocks = []
    for (part, value), mark in zip(parts, marks):
        ttl = None
        if isinstance(mark, dict):
            ttl = mark.get("ttl", "5m")
            if ttl not in TTL_SECONDS:
                raise RequestError(400, f"cache_control.ttl: Input should be '5m' or '1h', not {ttl!r}")
        text = canonical(value) if part == "tools" else " ".join(strings(value))
        blocks.append(_Block(part, canonical(value), text_tokens(text), ttl))
    return blocks
