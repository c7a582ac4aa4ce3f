"""The emulator's prompt cache: prefix fingerprints with a TTL that a read refreshes, as the providers document."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
OPENAI_TTL = 300.0  # "typically 5-10 minutes of inactivity"; the emulator takes the short end
CAPACITY = 100_000  # entries; the least recently used is evicted first


class PromptCache:
    """Prefix key -> (expiry, ttl). A read refreshes the expiry; an expired entry is gone."""

    def __init__(self, clock: Callable[[], float], capacity: int = CAPACITY) -> None:
        self._clock = clock
        self._capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, key: Hashable) -> bool:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            expiry, ttl = entry
            if now >= expiry:
                del self._entries[key]
                return False
            self._entries[key] = (now + ttl, ttl)
            self._entries.move_to_end(key)
            return True

    def write(self, key: Hashable, ttl: float) -> None:
        now = self._clock()
        with self._lock:
            expiry, known_ttl = self._entries.get(key, (0.0, 0.0))
            self._entries[key] = (max(expiry, now + ttl), max(ttl, known_ttl))
            self._entries.move_to_end(key)
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
