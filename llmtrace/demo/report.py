"""The HTML report: hit rate over time, time to first token, cost vs uncached cost (plotly, self-contained)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import stats
from .recorder import Call

BUCKET_SECONDS = 2.0


def write(calls: Sequence[Call], path: Path, scenario: str, changed_at: float | None) -> Path:
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=(
        "Prompt-cache hit rate (cache read / input tokens)", "Time to first token",
        "Cost vs the same calls without caching (cumulative, USD)"))
    windows = stats.buckets(calls, BUCKET_SECONDS)
    for model, group in sorted(stats.by_model(calls).items()):
        rates = [(start, stats.hit_rate(c for c in window if c.model == model)) for start, window in windows]
        fig.add_trace(go.Scatter(x=[s for s, r in rates if r is not None], y=[r for _, r in rates if r is not None],
                                 mode="lines+markers", name=f"hit rate {model}", line_shape="hv"), row=1, col=1)
        timed = [c for c in group if c.ttft is not None]
        fig.add_trace(go.Scatter(x=[c.at for c in timed], y=[c.ttft for c in timed], mode="markers",
                                 name=f"TTFT {model}", marker={"size": 5}), row=2, col=1)
    ordered = sorted(calls, key=lambda c: c.at)
    at = [c.at for c in ordered]
    fig.add_trace(go.Scatter(x=at, y=list(itertools.accumulate(c.cost or 0.0 for c in ordered)),
                             name="actual cost", line_shape="hv"), row=3, col=1)
    fig.add_trace(go.Scatter(x=at, y=list(itertools.accumulate((c.cost or 0.0) + (c.savings or 0.0) for c in ordered)),
                             name="cost without caching", line_shape="hv", line={"dash": "dash"}), row=3, col=1)
    if changed_at is not None:
        fig.add_vline(x=changed_at, line={"color": "red", "dash": "dot"})
        fig.add_annotation(x=changed_at, y=1.05, yref="y domain", text=f"{scenario} starts", showarrow=False,
                           font={"color": "red"})
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(ticksuffix=" s", row=2, col=1)
    fig.update_yaxes(tickprefix="$", row=3, col=1)
    fig.update_xaxes(title_text="seconds since the start", row=3, col=1)
    totals = stats.totals(calls)
    fig.update_layout(height=1000, title=f"llmtrace demo: {scenario} — {totals.requests} calls, hit rate "
                                         f"{totals.hit_rate or 0:.1%}, saved ${totals.savings:,.4f}")
    fig.write_html(path, include_plotlyjs=True, full_html=True)  # self-contained: opens offline
    return path
