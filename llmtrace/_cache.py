"""Cache outcome of a call, why a cache missed, and where its prefix changed.

llmtrace keeps a small bounded in-process memory of recent cacheable prefixes: for each, digests of
its parts (model, tools, system, messages up to the last cache breakpoint), when it was last used, and
a fixed-size summary of each part that locates a change to its block and character offset (see
`_prefix`); never the content. A call that wrote or missed is compared with that memory to name what
changed, and where.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from . import _pricing
from ._prefix import EMPTY, Part, PartSummary, fingerprint, locate
from ._tokens import estimate_tokens

MEMORY_SIZE = 1024  # prefixes remembered per index; the oldest is forgotten first
SUMMARY_BYTES = 2 << 20  # the parts' summaries together, at most; the least recently used go first
# The part a miss reason names, and whose change the memory can locate.
LOCATED = {"tools_changed": "tools", "system_changed": "system", "prefix_changed": "messages",
           "messages_changed": "messages"}  # the last: Anthropic's own name for it


class CacheIntent:
    """What a request asked of the prompt cache: parts of its cacheable prefix, and their TTL."""

    __slots__ = ("provider", "model", "tools", "system", "prefix", "ttl")

    def __init__(self, provider: str, model: str, tools: Any, system: Any, prefix: Any, ttl: float) -> None:
        self.provider = provider
        self.model = model
        # Read now (the app may reuse and change its lists once the call is sent); hashed when the call ends.
        self.tools = Part(tools)
        self.system = Part(system)
        self.prefix = Part(prefix)
        self.ttl = ttl

    def prefix_tokens(self) -> int:
        return sum(estimate_tokens(text, remember=True) for part in (self.tools, self.system, self.prefix)
                   for block in part.raw for text in texts(block))

    def fingerprint(self, salt: bytes = b"") -> str:
        """The stable digest of this prefix (`llmtrace.cache.prefix_fingerprint`)."""
        parts = (self.tools.summary, self.system.summary, self.prefix.summary)
        return fingerprint(self.model, *(part.digest for part in parts), salt)


class Diagnosis(NamedTuple):
    """Why a write or miss was not a read, and where the prefix changed (for tools, system and messages)."""

    reason: str | None
    part: str | None = None  # "tools", "system" or "messages"
    block: int | None = None
    offset: int | None = None


def cache_outcome(read: int, write: int, asked: bool) -> str:
    if read:
        return "partial" if write else "hit"
    if write:
        return "write"
    return "miss" if asked else "none"


class PrefixMemory:
    """Recent cacheable prefixes, indexed by all their parts and by all-but-one, to name what changed, and
    the summaries of their parts, to say where."""

    def __init__(self, size: int = MEMORY_SIZE, summary_bytes: int = SUMMARY_BYTES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._full: OrderedDict[tuple, float] = OrderedDict()
        # the part that differs when a key matches here but not in `_full` -> {key: (time, that part's digest)}
        self._without: dict[str, OrderedDict[tuple, tuple[float, Any]]] = {
            "model_changed": OrderedDict(), "tools_changed": OrderedDict(),
            "system_changed": OrderedDict(), "prefix_changed": OrderedDict(),
        }
        self._summaries: OrderedDict[bytes, PartSummary] = OrderedDict()
        self._summary_budget = summary_bytes
        self._summary_held = 0

    def observe(self, intent: CacheIntent, outcome: str, now: float) -> Diagnosis:
        """Remember this use of the prefix; for a `write`/`miss`, say why it was not read, and where it changed."""
        tools, system, prefix = intent.tools.summary, intent.system.summary, intent.prefix.summary  # hashing: unlocked
        m, t, s, p = intent.model, tools.digest, system.digest, prefix.digest
        # name -> (key without that part, the part's digest, its summary when the change can be located)
        keys = {
            "model_changed": ((t, s, p), m, None), "tools_changed": ((m, s, p), t, tools),
            "system_changed": ((m, t, p), s, system), "prefix_changed": ((m, t, s), p, prefix),
        }
        full = (m, t, s, p)
        with self._lock:
            diagnosis = self._diagnose(full, keys, intent.ttl, now) if outcome in ("write", "miss") else Diagnosis(None)
            self._put(self._full, full, now)
            for name, (key, varying, summary) in keys.items():
                self._put(self._without[name], key, (now, varying))
                if summary is not None and summary.blocks:
                    self._keep(summary)
        return diagnosis

    def _diagnose(self, full: tuple, keys: dict[str, tuple[tuple, Any, PartSummary | None]], ttl: float,
                  now: float) -> Diagnosis:
        last = self._full.get(full)
        if last is not None:
            # Seen before: the cache lapsed, or (within its TTL) the provider evicted it: no reason to give.
            return Diagnosis("ttl_expired" if now - last > ttl else None)
        for name, (key, _, summary) in keys.items():  # in the contract's priority order
            seen = self._without[name].get(key)
            if seen is None:
                continue
            old = self._summaries.get(seen[1], EMPTY if seen[1] == EMPTY.digest else None) if summary else None
            where = locate(old, summary) if old is not None and summary is not None else None
            if where is None:
                return Diagnosis(name)
            return Diagnosis(name, LOCATED[name], *where)
        return Diagnosis("first_use")

    def _put(self, index: OrderedDict[tuple, Any], key: tuple, value: Any) -> None:
        index[key] = value
        index.move_to_end(key)
        if len(index) > self._size:
            index.popitem(last=False)

    def _keep(self, summary: PartSummary) -> None:
        if summary.digest in self._summaries:
            self._summaries.move_to_end(summary.digest)
            return
        self._summaries[summary.digest] = summary
        self._summary_held += summary.size
        while self._summaries and (self._summary_held > self._summary_budget or len(self._summaries) > 3 * self._size):
            self._summary_held -= self._summaries.popitem(last=False)[1].size


def below_minimum(intent: CacheIntent) -> bool:
    """Whether the cacheable prefix is shorter than the model's minimum cacheable length (when known)."""
    minimum = _pricing.min_cacheable_tokens(intent.model, intent.provider)
    return minimum is not None and intent.prefix_tokens() < minimum


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
