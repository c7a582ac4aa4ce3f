"""What both dialects share: request errors, the generated reply, SSE framing and fault names."""

from __future__ import annotations

import itertools
import json
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .._tokens import count_tokens, encode

# Faults a request can ask for with the `x-llmtrace-fault` header (or a config's fault rates).
FAULT_HEADER = "x-llmtrace-fault"
FAULTS = (
    "disconnect",  # the connection drops half-way through the stream
    "error-event",  # the provider sends its `error` event (overloaded) half-way through
    "rate-limit",  # HTTP 429 with retry-after
    "server-error",  # HTTP 500 with retry-after
    "slow-first-token",  # the first content token comes ten times later than configured
    "no-usage",  # no final usage: chat withholds its usage chunk; Messages and Responses end before the event
    # that carries it (message_delta, response.completed), without an error
    "malformed",  # one event's JSON is cut off
    "unknown-event",  # an event type the SDKs do not know yet
)

_WORDS = (
    "check", "the", "customer's", "plan", "first", "then", "quote", "limit", "from", "section", "and", "rotate",
    "key", "under", "settings", "workspace", "export", "audit", "log", "invoice", "refund", "within", "days",
    "region", "backup", "kept", "for", "thirty", "rule", "applies", "only", "to", "paid", "plans", "support",
)


class RequestError(Exception):
    """A request the real API would refuse: answered with the provider's error shape and this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Reply:
    pieces: tuple[str, ...]  # the text as streamed, one piece per content event
    output_tokens: int
    hit_limit: bool  # stopped by max_tokens rather than by the end of the answer

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def compose(seed: str, wanted: int, limit: int | None) -> Reply:
    """A deterministic answer of about `wanted` tokens (fewer when `limit`, the request's max, is lower)."""
    rng = random.Random(zlib.crc32(seed.encode()))
    budget = min(wanted, limit) if limit is not None else wanted
    pieces: list[str] = []
    tokens = 0
    for n in itertools.count():
        word = rng.choice(_WORDS)
        piece = (word.capitalize() if n == 0 else " " + word) + ("." if n % 9 == 8 else "")
        cost = _piece_tokens(piece)
        if tokens + cost > budget:
            break
        pieces.append(piece)
        tokens += cost
    return Reply(tuple(pieces), tokens, limit is not None and limit < wanted)


@lru_cache(maxsize=4096)
def _piece_tokens(piece: str) -> int:
    return max(count_tokens(piece), 1)


@lru_cache(maxsize=4096)
def token_ids(text: str) -> tuple[int, ...]:
    return tuple(encode(text))


def text_tokens(text: str) -> int:
    return len(token_ids(text))


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event: `event:` line when named, then the JSON (or literal) data line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + b"data: " + payload.encode() + b"\n\n"


def canonical(value: Any) -> str:
    """A stable text form of a request part, without its cache markers (they do not change the prefix)."""
    return json.dumps(_strip(value), sort_keys=True, separators=(",", ":"))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strings(value: Any) -> list[str]:
    """The text of a request part: its string values, without keys and type tags."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in ("type", "cache_control", "role") for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []
