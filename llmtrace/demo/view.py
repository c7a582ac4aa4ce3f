"""The terminal view: a live panel while the workload runs, and the summary at the end (rich)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import stats
from .recorder import Call

SPARK = "▁▂▃▄▅▆▇█"
BUCKET_SECONDS = 2.0
MAX_MARKS = 40  # a long run gets wider marks rather than a line that runs off the screen


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def usd(value: float) -> str:
    return f"-${-value:,.4f}" if value < 0 else f"${value:,.4f}"


def mark_seconds(elapsed: float, max_marks: int = MAX_MARKS) -> float:
    """Seconds per sparkline mark: BUCKET_SECONDS, or a multiple of it so that the whole run fits `max_marks`."""
    marks = int(elapsed // BUCKET_SECONDS) + 1
    return BUCKET_SECONDS * max(1, -(-marks // max(max_marks, 1)))


def sparkline(calls: Sequence[Call], model: str, width: float = BUCKET_SECONDS) -> Text:
    """Hit rate per time bucket: one character per `width` seconds, red once the scenario has changed things."""
    line = Text(no_wrap=True, overflow="crop")
    for _, group in stats.buckets(calls, width):
        mine = [c for c in group if c.model == model]
        rate = stats.hit_rate(mine)
        char = " " if rate is None else SPARK[min(int(rate * len(SPARK)), len(SPARK) - 1)]
        line.append(char, style="red" if any(c.phase == "after" for c in mine) else "green")
    return line


def clock(elapsed: float, duration: float, in_flight: int) -> str:
    if elapsed < duration:
        return f"{elapsed:4.0f}/{duration:.0f} s"
    return f"{duration:.0f} s sent, {in_flight} call{'s' if in_flight != 1 else ''} finishing"


def live(calls: Sequence[Call], scenario: str, changed: bool, elapsed: float, duration: float,
         in_flight: int = 0, max_marks: int = MAX_MARKS) -> Group:
    """One frame of the live view; `elapsed` counts from the first request; the sparklines fit `max_marks`."""
    t = stats.totals(calls)
    head = Text.assemble(
        ("llmtrace demo", "bold"), f"  scenario {scenario}  ", (clock(elapsed, duration, in_flight), "cyan"),
        ("  (changed)" if changed else "", "bold red"))
    figures = Table.grid(padding=(0, 2))
    figures.add_row("requests", f"{t.requests}", "errors", f"{t.errors}", "abandoned", f"{t.abandoned}")
    figures.add_row("first token p50", seconds(t.ttft_p50), "p95", seconds(t.ttft_p95),
                    "chunks/stream", f"{t.chunks_mean:.0f}")
    figures.add_row("input tokens", f"{t.input_tokens:,}", "cache read", f"{t.cache_read:,}",
                    "cache write", f"{t.cache_write:,}")
    figures.add_row("output tokens", f"{t.output_tokens:,}", "cost", usd(t.cost), "savings", usd(t.savings))
    width = mark_seconds(max([elapsed, *(c.at for c in calls)]), max_marks)
    rates = Table("model", "hit rate", f"hit rate over time (one mark per {width:g} s)", box=None)
    for model, group in sorted(stats.by_model(calls).items()):
        rates.add_row(model, percent(stats.hit_rate(group)), sparkline(calls, model, width))
    reasons = ", ".join(f"{reason} {n}" for reason, n in t.miss_reasons.most_common()) or "–"
    return Group(head, figures, rates, Text(f"why the cache missed: {reasons}"))


def summary(calls: Sequence[Call], scenario: str) -> Group:
    t = stats.totals(calls)
    before = [c for c in calls if c.phase == "before"]
    after = [c for c in calls if c.phase == "after"]
    providers = stats.by_provider(calls)
    lines: list[object] = [
        Text(f"llmtrace demo: scenario {scenario}, {t.requests} calls "
             f"({', '.join(f'{n} {p}' for p, n in sorted(providers.items()))}), "
             f"{t.errors} errors, {t.abandoned} abandoned", style="bold"),
        Text(f"time to first token p50 {seconds(t.ttft_p50)}, p95 {seconds(t.ttft_p95)}; "
             f"{t.chunks_mean:.0f} chunks per stream"),
        Text(f"tokens: input {t.input_tokens:,} (cache read {t.cache_read:,}, cache write {t.cache_write:,}), "
             f"output {t.output_tokens:,}"),
    ]
    table = Table("model", "hit rate before", "after", "LLMCacheHitRateDrop", box=None)
    for drop in stats.drops(calls):
        table.add_row(drop.model, percent(drop.before), percent(drop.after),
                      Text("would fire", style="bold red") if drop.fires else Text("quiet", style="green"))
    lines.append(table)
    for label, group in (("before", before), ("after", after)):
        if not group:
            continue
        g = stats.totals(group)
        reasons = ", ".join(f"{reason} {n}" for reason, n in g.miss_reasons.most_common()) or "none"
        verdict = "saved" if g.savings >= 0 else "lost to cache-write premiums"
        lines.append(Text(f"{label} the change: hit rate {percent(g.hit_rate)}, cost {usd(g.cost)} vs "
                          f"{usd(g.uncached_cost)} uncached: {verdict} {usd(abs(g.savings))}; "
                          f"why the cache missed: {reasons}"))
    errors = Counter(c.error_type or "error" for c in calls if c.outcome == "error")
    if errors:
        lines.append(Text("errors by type: " + ", ".join(f"{kind} {n}" for kind, n in errors.most_common())))
    lines.append(Text(f"total: cost {usd(t.cost)} vs {usd(t.uncached_cost)} uncached, savings {usd(t.savings)}"))
    return Group(*lines)
