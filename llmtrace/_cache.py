"""Cache outcome of a call, and why a cache missed.

llmtrace keeps a small bounded in-process memory of recent cacheable prefixes: for each, hashes of
its parts (model, tools, system, messages up to the last cache breakpoint) and when it was last
used; never the content. A call that wrote or missed is compared with that memory to name what
changed. Hashes are Python's in-process `hash` of the parts: cheap, and never leave the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from . import _pricing
from ._tokens import estimate_tokens

MEMORY_SIZE = 1024  # prefixes remembered per index; the oldest is forgotten first


class CacheIntent:
    """What a request asked of the prompt cache: parts of its cacheable prefix, and their TTL."""

    __slots__ = ("provider", "model", "tools", "system", "prefix", "ttl", "_parts")

    def __init__(self, provider: str, model: str, tools: Any, system: Any, prefix: Any, ttl: float) -> None:
        self.provider = provider
        self.model = model
        self.tools = _fingerprint(tools)
        self.system = _fingerprint(system)
        self.prefix = _fingerprint(prefix)
        self.ttl = ttl
        self._parts = (tools, system, prefix)  # the request's own objects, for a length estimate on a miss

    def prefix_tokens(self) -> int:
        return sum(estimate_tokens(text, remember=True) for part in self._parts for text in texts(part))


def cache_outcome(read: int, write: int, asked: bool) -> str:
    if read:
        return "partial" if write else "hit"
    if write:
        return "write"
    return "miss" if asked else "none"


class PrefixMemory:
    """Recent cacheable prefixes, indexed by all their parts and by all-but-one, to name what changed."""

    def __init__(self, size: int = MEMORY_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._full: OrderedDict[tuple, float] = OrderedDict()
        # name of the part that differs when a key matches here but not in `_full`
        self._without: dict[str, OrderedDict[tuple, float]] = {
            "model_changed": OrderedDict(), "tools_changed": OrderedDict(),
            "system_changed": OrderedDict(), "prefix_changed": OrderedDict(),
        }

    def observe(self, intent: CacheIntent, outcome: str, now: float) -> str | None:
        """Remember this use of the prefix; for a `write`/`miss` outcome, say why it was not read."""
        m, t, s, p = intent.model, intent.tools, intent.system, intent.prefix
        keys = {
            "model_changed": (t, s, p), "tools_changed": (m, s, p),
            "system_changed": (m, t, p), "prefix_changed": (m, t, s),
        }
        full = (m, t, s, p)
        with self._lock:
            reason = self._reason(full, keys, intent.ttl, now) if outcome in ("write", "miss") else None
            self._put(self._full, full, now)
            for name, key in keys.items():
                self._put(self._without[name], key, now)
        return reason

    def _reason(self, full: tuple, keys: dict[str, tuple], ttl: float, now: float) -> str | None:
        last = self._full.get(full)
        if last is not None:
            # Seen before: the cache lapsed, or (within its TTL) the provider evicted it: no reason to give.
            return "ttl_expired" if now - last > ttl else None
        for name, key in keys.items():  # in the contract's priority order
            if key in self._without[name]:
                return name
        return "first_use"

    def _put(self, index: OrderedDict[tuple, float], key: tuple, now: float) -> None:
        index[key] = now
        index.move_to_end(key)
        if len(index) > self._size:
            index.popitem(last=False)


def below_minimum(intent: CacheIntent) -> bool:
    """Whether the cacheable prefix is shorter than the model's minimum cacheable length (when known)."""
    minimum = _pricing.min_cacheable_tokens(intent.model, intent.provider)
    return minimum is not None and intent.prefix_tokens() < minimum


def _fingerprint(part: Any) -> int:
    return hash(_frozen(part)) if part is not None else 0


def _frozen(part: Any) -> Any:
    """A hashable twin of a JSON-like request part. Strings hash once and cache their hash, so a system
    prompt the app reuses costs nothing to fingerprint again; `repr` would copy it every call."""
    if isinstance(part, dict):
        return tuple((k, _frozen(v)) for k, v in part.items())
    if isinstance(part, (list, tuple)):
        return tuple(_frozen(v) for v in part)
    try:
        return hash(part)
    except TypeError:  # an SDK object in the request: fall back to its text form
        return hash(repr(part))


def texts(part: Any) -> list[str]:
    """Every string value in a JSON-like request part (keys and type tags aside, close enough for a length)."""
    out: list[str] = []
    stack = [part]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in ("type", "cache_control", "role"))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out
