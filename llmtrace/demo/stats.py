"""Figures over the demo's calls, computed the way the bundled dashboards and alerts compute them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .recorder import Call


def hit_rate(calls: Iterable[Call]) -> float | None:
    """cache_read / input tokens, as `llmtrace_usage_tokens_total` gives it; None without input."""
    calls = list(calls)
    total = sum(c.input_tokens for c in calls)
    return sum(c.cache_read for c in calls) / total if total else None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Totals:
    requests: int
    errors: int
    abandoned: int
    ttft_p50: float | None
    ttft_p95: float | None
    chunks_mean: float
    input_tokens: int
    cache_read: int
    cache_write: int
    output_tokens: int
    hit_rate: float | None
    cost: float
    uncached_cost: float
    savings: float
    miss_reasons: Counter[str]


def totals(calls: Sequence[Call]) -> Totals:
    ttfts = [c.ttft for c in calls if c.ttft is not None]
    cost = sum(c.cost or 0.0 for c in calls)
    savings = sum(c.savings or 0.0 for c in calls)
    return Totals(
        requests=len(calls), errors=sum(c.outcome == "error" for c in calls),
        abandoned=sum(c.outcome == "abandoned" for c in calls),
        ttft_p50=percentile(ttfts, 0.5), ttft_p95=percentile(ttfts, 0.95),
        chunks_mean=sum(c.chunks for c in calls) / len(calls) if calls else 0.0,
        input_tokens=sum(c.input_tokens for c in calls), cache_read=sum(c.cache_read for c in calls),
        cache_write=sum(c.cache_write for c in calls), output_tokens=sum(c.output_tokens for c in calls),
        hit_rate=hit_rate(calls), cost=cost, uncached_cost=cost + savings, savings=savings,
        miss_reasons=Counter(c.miss_reason for c in calls if c.miss_reason),
    )


def by_model(calls: Iterable[Call]) -> dict[str, list[Call]]:
    groups: dict[str, list[Call]] = {}
    for call in calls:
        groups.setdefault(call.model, []).append(call)
    return groups


def by_provider(calls: Iterable[Call]) -> Counter[str]:
    return Counter(call.provider for call in calls)


def buckets(calls: Sequence[Call], width: float) -> list[tuple[float, list[Call]]]:
    """Calls grouped by end time into windows of `width` seconds: (window start, calls)."""
    if not calls:
        return []
    count = int(max(c.at for c in calls) // width) + 1
    grouped: list[list[Call]] = [[] for _ in range(count)]
    for call in calls:
        grouped[int(call.at // width)].append(call)
    return [(i * width, group) for i, group in enumerate(grouped)]


@dataclass(frozen=True)
class Drop:
    """A model's hit rate before and after the change, and whether LLMCacheHitRateDrop's test would hold."""

    model: str
    before: float | None
    after: float | None
    fires: bool


def drops(calls: Sequence[Call]) -> list[Drop]:
    """LLMCacheHitRateDrop's condition: the recent hit rate under 0.33 x the model's own baseline, on a baseline
    that really cached (over 20%)."""
    found = []
    for model, group in sorted(by_model(calls).items()):
        before = hit_rate(c for c in group if c.phase == "before")
        after = hit_rate(c for c in group if c.phase == "after")
        fires = before is not None and after is not None and before > 0.2 and after < 0.33 * before
        found.append(Drop(model, before, after, fires))
    return found
