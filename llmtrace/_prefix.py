"""The cacheable prefix of a request, reduced to digests: what changed between two prefixes, and a stable fingerprint.

A part of the prefix (tools, system, messages up to the last breakpoint) is a sequence of blocks: the
tool definitions, the system text blocks (a plain-string system prompt is block 0), the messages. A
block's *text* is what `block_text` returns: a string, a text block's `text`, a message's content (its
parts one per line); anything else (a tool definition, an image, a tool call) reads as compact JSON with
sorted keys. Roles, type tags and `cache_control` markers are not text: cache markers are left out
entirely (moving one does not change the content), roles and type tags count only in the block's digest.

Each block is summarised by a digest and, for every text segment in it, the digests of its fixed
64-character windows, so that the first differing window (the change's offset, rounded down by at most
63 characters) is found without keeping any text. Summaries of strings are memoised by content, so a
prompt the app reuses is hashed once, not on every call.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Hashable
from functools import lru_cache
from typing import Any

WINDOW = 64  # characters per window: changed_offset is exact or rounded down by less than this
MAX_WINDOWS = 4096  # per text segment (256 Ki characters); a change beyond is located to its block only
MEMO_MIN_CHARS = 256  # strings from this length on have their summary memoised (shorter ones cost less to redo)
MEMO_ENTRIES = 4096
MEMO_BYTES = 2 << 20  # summaries held by the memo of strings and JSON values, at most
DIGEST_BYTES = 16
_ITEM = array("I").itemsize  # bytes per window digest (4 on every common platform)
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})
_FINGERPRINT_VERSION = b"llmtrace-prefix-v1\0"


class Text:
    """Summary of one text segment: its length, a digest of all of it, and 4-byte digests of its windows."""

    __slots__ = ("length", "digest", "windows")

    def __init__(self, s: str) -> None:
        self.length = len(s)
        self.digest = hashlib.sha256(s.encode("utf-8", "surrogatepass")).digest()[:DIGEST_BYTES]
        # In-process hashes: windows only ever meet windows of the same process. The low 4 bytes of each.
        end = min(len(s), MAX_WINDOWS * WINDOW)
        self.windows = array("I", [hash(s[i:i + WINDOW]) & 0xFFFFFFFF for i in range(0, end, WINDOW)]).tobytes()

    @property
    def size(self) -> int:
        """Bytes this summary holds, its objects' headers included (as tracemalloc counts them, near enough)."""
        return len(self.windows) + 250


class Block:
    """One block of a part, as read at the start of the call: the strings are kept by reference (they are
    immutable), so hashing them can wait until the call has ended."""

    __slots__ = ("shape", "segments")

    def __init__(self, value: Any) -> None:
        segments: list[str | Text] = []
        self.shape = _render(value, segments, memo=True)
        self.segments = segments


class BlockSummary:
    __slots__ = ("digest", "texts")

    def __init__(self, block: Block) -> None:
        self.texts = tuple([s if isinstance(s, Text) else text(s) for s in block.segments])
        if block.shape == "t":  # the common block, a plain text: its digest is its text's
            self.digest = self.texts[0].digest
            return
        shape = block.shape.encode("utf-8", "surrogatepass")
        self.digest = hashlib.sha256(b"%d:%s" % (len(shape), shape) + b"".join([t.digest for t in self.texts])
                                     ).digest()[:DIGEST_BYTES]


class PartSummary:
    """What the prefix memory keeps of a part: a digest, and per block the summaries that locate a change."""

    __slots__ = ("digest", "blocks")

    def __init__(self, blocks: tuple[BlockSummary, ...]) -> None:
        self.blocks = blocks
        if len(blocks) == 1:  # a part of one block (a system prompt, most often): its digest is the block's
            self.digest = blocks[0].digest
        else:
            self.digest = hashlib.sha256(b"".join([b.digest for b in blocks])).digest()[:DIGEST_BYTES]

    @property
    def size(self) -> int:
        """Bytes this summary holds, its objects' headers included (as tracemalloc counts them, near enough)."""
        return sum([t.size for b in self.blocks for t in b.texts]) + 150 * len(self.blocks) + 150


class Part:
    """One part of a request's cacheable prefix: read when the call starts, summarised once, when first asked."""

    __slots__ = ("raw", "blocks", "_summary")

    def __init__(self, value: Any) -> None:
        self.raw = blocks_of(value)
        self.blocks = tuple([Block(b) for b in self.raw])
        self._summary: PartSummary | None = None if self.blocks else EMPTY

    @property
    def summary(self) -> PartSummary:
        if self._summary is None:
            self._summary = PartSummary(tuple([BlockSummary(b) for b in self.blocks]))
        return self._summary


EMPTY = PartSummary(())  # no tools, no system prompt, no messages in the prefix


def blocks_of(part: Any) -> tuple[Any, ...]:
    """The blocks of a request part: list items, or the part itself (a plain-string system prompt is block 0)."""
    if part is None or part == []:
        return ()
    if isinstance(part, (list, tuple)):
        return tuple(part)
    return (part,)


def block_text(value: Any) -> str:
    """The text of one block, whose character offsets `changed_offset` counts (see the module docstring)."""
    segments: list[str | Text] = []
    _render(value, segments, memo=False)
    return "\n".join(s for s in segments if isinstance(s, str))


def locate(old: PartSummary, new: PartSummary) -> tuple[int, int | None] | None:
    """(block, character offset) of the first difference between two summaries of a part, or None when they
    are equal. The offset is exact or rounded down to a window start; None when the change lies beyond the
    windows kept (past the first `MAX_WINDOWS * WINDOW` characters of a segment)."""
    for index in range(max(len(old.blocks), len(new.blocks))):
        if index >= len(old.blocks) or index >= len(new.blocks):
            return index, 0  # a block added or removed here
        a, b = old.blocks[index], new.blocks[index]
        if a.digest == b.digest:
            continue
        start = 0
        for ta, tb in zip(a.texts, b.texts):
            if ta.digest != tb.digest:
                offset = _offset(ta, tb)
                return index, None if offset is None else start + offset
            start += ta.length + 1  # segments are joined by a newline
        if len(a.texts) != len(b.texts):
            return index, max(start - 1, 0)  # one block's text goes on where the other's ends
        return index, 0  # the same text: a role or type tag differs
    return None


def _offset(a: Text, b: Text) -> int | None:
    window = _first_mismatch(a.windows, b.windows)
    common = min(len(a.windows), len(b.windows)) // _ITEM
    if window < common:
        return window * WINDOW
    shorter = min(a.length, b.length)
    if a.length != b.length and shorter <= common * WINDOW:
        return shorter  # one is the other plus more text
    return None  # equal as far as the windows go


def _first_mismatch(a: bytes, b: bytes) -> int:
    """Index of the first differing window digest (the shorter count when one is a prefix of the other)."""
    n = min(len(a), len(b)) // _ITEM
    if a[:_ITEM * n] == b[:_ITEM * n]:
        return n
    low, high = 0, n  # equal up to low windows, not up to high: C-speed comparisons, log n of them
    while high - low > 1:
        middle = (low + high) // 2
        if a[:_ITEM * middle] == b[:_ITEM * middle]:
            low = middle
        else:
            high = middle
    return low


@lru_cache(maxsize=4096)
def fingerprint(model: str, tools: bytes, system: bytes, messages: bytes, salt: bytes = b"") -> str:
    """A 32-character hex digest of the cacheable prefix, from its parts' digests: equal in every process and on
    every host for equal prefixes; keyed with the deployment's salt, when it has one, so that a guessed prompt
    cannot be confirmed. Memoised: a prefix the app reuses costs a lookup."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, key=salt)
    h.update(_FINGERPRINT_VERSION + model.encode("utf-8", "surrogatepass") + b"\0")
    h.update(tools + system + messages)
    return h.hexdigest()


def salt_from_env() -> bytes:
    """`LLMTRACE_FINGERPRINT_SALT` as a blake2b key (at most 64 bytes: a longer salt is hashed down)."""
    salt = os.environ.get("LLMTRACE_FINGERPRINT_SALT", "").encode()
    return salt if len(salt) <= 64 else hashlib.sha512(salt).digest()


# --- rendering a block: its text segments, and its shape (everything else that makes it what it is) ---

def _render(value: Any, out: list[str | Text], memo: bool) -> str:
    if isinstance(value, str):
        out.append(value)
        return "t"
    if isinstance(value, dict):
        kind = value.get("type")
        text = value.get("text")
        if isinstance(text, str) and (kind is None or kind in _TEXT_TYPES):
            out.append(text)
            return "t" + _rest(value, ("type", "text", "cache_control"), out, memo)
        content = value.get("content")
        if isinstance(content, (str, list)):
            # A string content is shorthand for one text block: the same prompt, whichever way the app wrote it.
            inner = _render([content] if isinstance(content, str) else content, out, memo)
            return f"m{value.get('role')}/{kind}({inner})" + _rest(value, ("role", "type", "content", "cache_control"),
                                                                   out, memo)
    elif isinstance(value, list):
        return "[" + ",".join([_render(item, out, memo) for item in value]) + "]"
    out.append(_json_text(value) if memo else _json(value))
    return "j"


def _rest(value: dict[str, Any], known: tuple[str, ...], out: list[str | Text], memo: bool) -> str:
    """A block's keys besides its text, as one more JSON segment (e.g. an assistant message's tool calls)."""
    if len(value) <= 1 or all(k in known for k in value):
        return ""
    rest = {k: v for k, v in value.items() if k not in known}
    out.append(_json_text(rest) if memo else _json(rest))
    return "+"


def _json(value: Any) -> str:
    try:
        return json.dumps(_without_markers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=str)
    except (TypeError, ValueError):  # keys of mixed types, a circular structure
        return repr(value)


def _without_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_markers(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, (list, tuple)):
        return [_without_markers(v) for v in value]
    return value


def _json_text(value: Any) -> Text:
    """The summary of a value's JSON text, memoised by the value's marshalled form: a tool list the app reuses is
    neither serialised nor hashed again (marshal is C-fast and exact about types; mutated values key anew).
    Version 2 writes no back-references, so equal values marshal alike whatever refers to their parts."""
    try:
        packed = marshal.dumps(value, 2)
    except ValueError:  # an object marshal does not know (an SDK model): no memo
        return Text(_json(value))
    key = ("json", hash(packed), len(packed))
    found = _MEMO.get(key)
    if found is None:
        found = Text(_json(value))
        _MEMO.put(key, found)
    return found


def text(s: str) -> Text:
    """The summary of a string; long strings' summaries are memoised by content (`hash(s)` is cached in the
    string, so the same string object costs a dictionary lookup)."""
    if len(s) < MEMO_MIN_CHARS:
        return Text(s)
    key = (hash(s), len(s))
    found = _MEMO.get(key)
    if found is None:
        found = Text(s)
        _MEMO.put(key, found)
    return found


class _Memo:
    """A thread-safe LRU memo of summaries, bounded in entries and in the window bytes it holds."""

    def __init__(self, entries: int, budget: int) -> None:
        self._entries = entries
        self._budget = budget
        self._held = 0
        self._items: OrderedDict[Hashable, Text] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Text | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: Text) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._held -= old.size
            self._items[key] = value
            self._held += value.size
            while self._items and (len(self._items) > self._entries or self._held > self._budget):
                self._held -= self._items.popitem(last=False)[1].size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def held(self) -> int:
        return self._held


_MEMO = _Memo(MEMO_ENTRIES, MEMO_BYTES)
