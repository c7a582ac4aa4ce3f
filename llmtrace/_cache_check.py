"""The `llm_cache` fixture's recorder: every Anthropic/OpenAI call a test makes, and assertions on its prompt cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _cache, _pricing
from . import _semconv as sc
from ._prefix import Part, block_text

if TYPE_CHECKING:
    from ._record import CallRecord

EXCERPT = 36  # characters shown on each side of a difference
PARTS = ("tools", "system", "messages")
HINTS = {
    "tools": "build the tool list in a fixed order, and keep each definition the same from request to request",
    "system": "keep what changes from request to request (timestamps, request ids, user names) out of the system "
              "prompt: put it after the last cache_control breakpoint, e.g. in the user message",
    "messages": "keep the cached part of the conversation the same from call to call: append new turns, do not "
                "rewrite earlier ones",
}


@dataclass(frozen=True)
class PrefixBlock:
    text: str  # the block's text, as `llmtrace.cache.changed_offset` counts its characters
    digest: bytes


@dataclass(frozen=True)
class RecordedCall:
    """One Anthropic or OpenAI call the test made, as llmtrace saw it."""

    number: int  # 1 for the test's first call
    provider: str
    model: str
    server: str | None  # host:port the call went to
    asked: bool  # whether the request asked for caching (see docs/cache-diagnosis.md)
    tools: tuple[PrefixBlock, ...]
    system: tuple[PrefixBlock, ...]
    messages: tuple[PrefixBlock, ...]  # up to the last cache breakpoint
    prefix_tokens: int  # of the cacheable prefix, by llmtrace's local tokenizer (0 when caching was not asked for)
    prompt_chars: int  # of the whole prompt
    usage: bool  # the response reported usage
    input_tokens: int
    cache_read: int
    cache_write: int
    outcome: str | None  # completed, abandoned or error
    cache_outcome: str | None
    miss_reason: str | None
    changed_block: int | None
    changed_offset: int | None
    fingerprint: str | None

    @property
    def name(self) -> str:
        return f"call {self.number} ({self.provider} {self.model})"

    def part(self, name: str) -> tuple[PrefixBlock, ...]:
        return getattr(self, name)


class LLMCache:
    """What the `llm_cache` fixture gives a test: the calls it made so far (`calls`), and assertions on them.

    ```python
    def test_support_prompt_is_cacheable(llm_cache):
        support.answer("How do I rotate an API key?")
        support.answer("Can I export my audit log?")
        llm_cache.assert_cacheable()
    ```

    Each assertion takes the calls to check (default: all of them) and raises AssertionError with what is wrong,
    where, and the calls recorded.
    """

    def __init__(self, emulator: str | None = None) -> None:
        self._emulator = emulator  # host:port of the plugin's emulator, when it runs
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget the calls recorded so far (e.g. after a warm-up the test does not want checked)."""
        with self._lock:
            self._calls.clear()

    # --- assertions ---
    def assert_cacheable(self, calls: Sequence[RecordedCall] | None = None, *, read: bool | None = None) -> None:
        """All of the checks below: each call asked for caching, its prefix is above the model's minimum, the
        prefix is the same from call to call, and (with `read`, by default when every call went to the plugin's
        emulator) every call after the first read the cache."""
        __tracebackhide__ = True
        calls = self._chosen(calls)
        self.assert_cache_requested(calls)
        self.assert_above_minimum(calls)
        self.assert_prefix_stable(calls)
        if read or (read is None and self._emulator is not None and all(c.server == self._emulator for c in calls)):
            self.assert_cache_read(calls)

    def assert_cache_requested(self, calls: Sequence[RecordedCall] | None = None) -> None:
        """Each call asked for caching: an Anthropic `cache_control` marker, an OpenAI `prompt_cache_key` or a
        prompt long enough for OpenAI's automatic caching."""
        __tracebackhide__ = True
        calls = self._chosen(calls)
        problems = [f"{c.name} did not ask for caching: {_not_asked(c)}" for c in calls if not c.asked]
        self._fail(problems, calls)

    def assert_above_minimum(self, calls: Sequence[RecordedCall] | None = None) -> None:
        """Each call's cacheable prefix reaches the model's minimum cacheable length (when the table knows it):
        shorter prefixes are processed without caching, and without an error."""
        __tracebackhide__ = True
        calls = self._chosen(calls)
        problems = []
        for c in calls:
            minimum = _pricing.min_cacheable_tokens(c.model, c.provider)
            if not c.asked or minimum is None or c.cache_read or c.cache_write:  # the provider cached it: long enough
                continue
            if c.prefix_tokens < minimum:
                problems.append(f"{c.name}: the cacheable prefix is about {c.prefix_tokens:,} tokens, under the "
                                f"model's minimum of {minimum:,} (llmtrace/data/cache_minimums.json), so nothing is "
                                f"cached")
        self._fail(problems, calls)

    def assert_prefix_stable(self, calls: Sequence[RecordedCall] | None = None) -> None:
        """Each call's cacheable prefix is the previous call's (of the same model), or the same conversation grown:
        tools and system identical, messages the same as far as both go."""
        __tracebackhide__ = True
        calls = [c for c in self._chosen(calls) if c.asked]
        pairs = list(_consecutive(calls))
        if not pairs:
            self._fail([f"needs two calls of one model that asked for caching; recorded {len(calls)}"], calls)
        self._fail([d for before, after in pairs if (d := difference(before, after))], calls)

    def assert_cache_read(self, calls: Sequence[RecordedCall] | None = None) -> None:
        """Every call after the first (of each model) read from the cache, according to the response's usage."""
        __tracebackhide__ = True
        calls = self._chosen(calls)
        problems = []
        for before, after in _consecutive(calls):
            if after.cache_read:
                continue
            if not after.usage:
                problems.append(f"{after.name} reported no usage, so whether it read the cache is unknown")
                continue
            problem = (f"{after.name} read nothing from the cache (wrote {after.cache_write:,} tokens, "
                       f"{after.input_tokens - after.cache_write:,} uncached){_diagnosis(after)}")
            changed = difference(before, after)
            problems.append(problem + (f"\n{changed}" if changed else ""))
        if not problems and len(calls) < 2:
            problems.append(f"needs two calls of one model; recorded {len(calls)}")
        self._fail(problems, calls)

    def assert_writes_read(self, calls: Sequence[RecordedCall] | None = None) -> None:
        """Every call that wrote the cache was followed by one that read that prefix: a write costs more than
        plain input (1.25x, 2x for the 1-hour TTL) and pays off only when read."""
        __tracebackhide__ = True
        calls = self._chosen(calls, empty_ok=True)
        problems = []
        for i, c in enumerate(calls):
            if c.cache_write and not any(later.cache_read and _extends(later, c) for later in calls[i + 1:]):
                problems.append(f"{c.name} wrote {c.cache_write:,} tokens to the prompt cache and no later call read "
                                f"them{_diagnosis(c)}")
        self._fail(problems, calls)

    # --- recording ---
    def _observe(self, r: CallRecord, attrs: Any) -> None:
        intent = r.cache
        parts = {name: _blocks(part) for name, part in zip(PARTS, (intent.tools, intent.system, intent.prefix))} \
            if intent is not None else dict.fromkeys(PARTS, ())
        with self._lock:
            number = len(self._calls) + 1
            self._calls.append(RecordedCall(
                number=number, provider=r.provider, model=r.request_model or r.response_model or "unknown",
                server=f"{r.server_address}:{r.server_port}" if r.server_address else None, asked=intent is not None,
                **parts, prefix_tokens=intent.prefix_tokens() if intent is not None else 0,
                prompt_chars=_prompt_chars(r.request), usage=r.usage_seen, input_tokens=r.input_tokens,
                cache_read=r.cache_read, cache_write=r.cache_write, outcome=r.outcome,
                cache_outcome=attrs.get(sc.CACHE_OUTCOME), miss_reason=attrs.get(sc.CACHE_MISS_REASON),
                changed_block=attrs.get(sc.CACHE_CHANGED_BLOCK), changed_offset=attrs.get(sc.CACHE_CHANGED_OFFSET),
                fingerprint=attrs.get(sc.CACHE_PREFIX_FINGERPRINT),
            ))

    def _chosen(self, calls: Sequence[RecordedCall] | None, empty_ok: bool = False) -> list[RecordedCall]:
        __tracebackhide__ = True
        chosen = self.calls if calls is None else list(calls)
        if not chosen and not empty_ok:
            raise AssertionError("llm_cache recorded no Anthropic or OpenAI calls in this test (llmtrace sees the "
                                 "calls made through the anthropic and openai SDKs)")
        return chosen

    def _fail(self, problems: list[str], calls: Sequence[RecordedCall]) -> None:
        __tracebackhide__ = True
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + table(calls))


@contextmanager
def recording(emulator: str | None = None) -> Iterator[LLMCache]:
    """Record every call llmtrace sees while the block runs; instruments first if the app has not."""
    import llmtrace
    from llmtrace import LLMTraceInstrumentor

    instrumentor = LLMTraceInstrumentor()
    providers = None
    if not instrumentor.is_instrumented_by_opentelemetry:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        # Private providers: the calls are recorded here, and nothing is exported.
        providers = (TracerProvider(shutdown_on_exit=False), MeterProvider(shutdown_on_exit=False))
        llmtrace.instrument(tracer_provider=providers[0], meter_provider=providers[1])
    telemetry = getattr(instrumentor, "_telemetry", None)
    if telemetry is None:
        raise RuntimeError("llm_cache: llmtrace is switched off (LLMTRACE_DISABLED), so no call can be recorded")
    cache = LLMCache(emulator)
    observer = cache._observe
    telemetry.observers = (*telemetry.observers, observer)
    try:
        yield cache
    finally:
        telemetry.observers = tuple(o for o in telemetry.observers if o is not observer)
        if providers is not None:
            llmtrace.uninstrument()
            for provider in providers:
                provider.shutdown()


# --- what differs, and how to show it ---

def difference(before: RecordedCall, after: RecordedCall) -> str | None:
    """Where `after`'s cacheable prefix stops being `before`'s, with an excerpt of each; None if it does not."""
    for name in PARTS:
        old, new = before.part(name), after.part(name)
        for index in range(max(len(old), len(new))):
            if index >= len(old) or index >= len(new):
                if name == "messages":
                    return None  # one conversation is the other grown (or a shorter one): fine
                what = f"a block call {before.number} did not have" if index >= len(old) else "gone"
                return (f"the cacheable prefix of {after.name} differs from call {before.number}'s in {name} block "
                        f"{index}: {what} ({len(new)} {name} blocks, call {before.number} had {len(old)}); "
                        f"{HINTS[name]}")
            a, b = old[index], new[index]
            if a.digest != b.digest:
                return _changed(before, after, name, index, a.text, b.text)
    return None


def _changed(before: RecordedCall, after: RecordedCall, part: str, block: int, old: str, new: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(old, new)) if x != y), min(len(old), len(new)))
    label_old, label_new = f"  call {before.number}: ", f"  call {after.number}: "
    shown_old, caret = _excerpt(old, at)
    shown_new, _ = _excerpt(new, at)
    detail = "" if old != new else " (the same text: a role or type differs)"
    return (f"the cacheable prefix of {after.name} differs from call {before.number}'s in {part} block {block} at "
            f"character {at}{detail}, so it cannot read what call {before.number} cached:\n"
            f"{label_old}{shown_old}\n{label_new}{shown_new}\n{' ' * (len(label_new) + caret)}^\n{HINTS[part]}")


def _excerpt(text: str, at: int) -> tuple[str, int]:
    """A quoted piece of `text` around `at`, escaped to one line, and the column of `at` in it."""
    start, end = max(0, at - EXCERPT), min(len(text), at + EXCERPT)
    head = ('"…' if start else '"') + _escaped(text[start:at])
    return head + _escaped(text[at:end]) + ('…"' if end < len(text) else '"'), len(head)


def _escaped(text: str) -> str:
    """One line: newlines, tabs and other unprintable characters as escapes, the rest as it is."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def table(calls: Sequence[RecordedCall]) -> str:
    lines = ["calls recorded:"]
    for c in calls:
        cache = f"{c.cache_outcome or 'no usage'}, read {c.cache_read:,}, wrote {c.cache_write:,}" if c.usage \
            else "no usage"
        where = f", prefix {c.fingerprint[:12]}" if c.fingerprint else ", caching not asked for"
        lines.append(f"  {c.number}. {c.provider} {c.model}: {cache}{where}{_diagnosis(c)}")
    return "\n".join(lines)


def _diagnosis(c: RecordedCall) -> str:
    if not c.miss_reason:
        return ""
    where = ""
    if c.changed_block is not None:
        where = f" at {_cache.LOCATED.get(c.miss_reason, 'block')} block {c.changed_block}"
        if c.changed_offset is not None:
            where += f", characters {c.changed_offset}–{c.changed_offset + 63}"
    return f"; llmtrace says: {c.miss_reason}{where}"


def _not_asked(c: RecordedCall) -> str:
    if c.provider == "openai" or c.provider == "azure.ai.openai":
        return (f"no prompt_cache_key, and its prompt (about {c.prompt_chars // 4:,} tokens) is under the 1,024 that "
                f"OpenAI caches on its own")
    return "no cache_control on a tool, system or message block, nor the top-level cache_control parameter"


def _consecutive(calls: Sequence[RecordedCall]) -> Iterator[tuple[RecordedCall, RecordedCall]]:
    last: dict[tuple[str, str], RecordedCall] = {}
    for c in calls:
        key = (c.provider, c.model)
        if key in last:
            yield last[key], c
        last[key] = c


def _extends(later: RecordedCall, earlier: RecordedCall) -> bool:
    """Whether `later`'s prefix starts with all of `earlier`'s (so a read by `later` can be of `earlier`'s write)."""
    return (later.provider, later.model) == (earlier.provider, earlier.model) and all(
        [b.digest for b in later.part(name)[:len(earlier.part(name))]] == [b.digest for b in earlier.part(name)]
        and (name == "messages" or len(later.part(name)) == len(earlier.part(name))) for name in PARTS)


def _blocks(part: Part) -> tuple[PrefixBlock, ...]:
    return tuple(PrefixBlock(block_text(raw), summary.digest) for raw, summary in zip(part.raw, part.summary.blocks))


def _prompt_chars(request: Any) -> int:
    if not isinstance(request, dict):
        return 0
    parts = [request.get(k) for k in ("system", "instructions", "tools", "messages", "input", "prompt")]
    return sum(len(t) for p in parts if p is not None for t in _cache.texts(p))
