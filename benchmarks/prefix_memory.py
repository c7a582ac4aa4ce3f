"""Memory of the cache diagnosis (the prefix memory and the memo of string digests), measured with tracemalloc.

    python benchmarks/prefix_memory.py

Fills a prefix memory of the default size with twice as many prefixes as it keeps, in three workloads, and
reports what stays allocated: per remembered prefix, and in all.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from llmtrace import _cache, _prefix

SYSTEM = " ".join(f"Rule {n}: quote the plan's limit from section {n % 17}." for n in range(420))  # 5,000 tokens
MARK = {"type": "ephemeral"}


def system(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "cache_control": MARK}]


WORKLOADS: dict[str, Callable[[int], _cache.CacheIntent]] = {
    "a new 5,000-token system prompt on every call": lambda i: _cache.CacheIntent(
        "anthropic", "claude-haiku-4-5", None, system(f"Now: {i}.\n" + SYSTEM), [], 300),
    "one 5,000-token system prompt, a new 600-character conversation on every call": lambda i: _cache.CacheIntent(
        "anthropic", "claude-haiku-4-5", None, system(SYSTEM),
        [{"role": "user", "content": [{"type": "text", "text": f"conversation {i}: " + "hello " * 100,
                                       "cache_control": MARK}]}], 300),
    "short distinct prompts (the indexes alone)": lambda i: _cache.CacheIntent(
        "anthropic", "claude-haiku-4-5", None, f"s{i}", [], 300),
}


def measure(make: Callable[[int], _cache.CacheIntent]) -> tuple[int, int]:
    """(bytes held by the memory and the memo, prefixes remembered)."""
    _prefix._MEMO.clear()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    memory = _cache.PrefixMemory()
    for i in range(2 * _cache.MEMORY_SIZE):
        memory.observe(make(i), "write", float(i))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, len(memory._full)


def main() -> None:
    print(f"prefix memory: {_cache.MEMORY_SIZE} prefixes, summaries capped at {_cache.SUMMARY_BYTES >> 20} MiB, "
          f"memo capped at {_prefix.MEMO_BYTES >> 20} MiB\n")
    print("| workload | held in all | per remembered prefix |\n|---|---|---|")
    for name, make in WORKLOADS.items():
        held, kept = measure(make)
        print(f"| {name} | {held / 2**20:.2f} MiB | {held / kept / 1024:.2f} KiB |")
    summary = _prefix.Part(system(SYSTEM)).summary
    print(f"\nsummary of one 5,000-token ({len(SYSTEM):,}-character) system prompt: {summary.size:,} bytes "
          f"(window digests: {len(summary.blocks[0].texts[0].windows):,})")


if __name__ == "__main__":
    main()
