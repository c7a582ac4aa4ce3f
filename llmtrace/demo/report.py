"""The HTML report: hit rate over time, time to first token, cost vs uncached cost (plotly, self-contained)."""

from __future__ import annotations

import html
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import stats
from .recorder import Call

BUCKET_SECONDS = 2.0
# One look per model, so that two models with the same hit rate stay visible on top of each other.
STYLES = ({"line": {"dash": "solid", "width": 3}, "marker": {"symbol": "circle", "size": 7}},
          {"line": {"dash": "dash", "width": 2}, "marker": {"symbol": "diamond-open", "size": 11}},
          {"line": {"dash": "dot", "width": 2}, "marker": {"symbol": "square-open", "size": 9}})


def unwritable(path: Path) -> str | None:
    """Why the report cannot be written to `path` (checked before the demo runs), or None."""
    parent = path.parent
    if not parent.is_dir():
        return f"no such directory {parent}"
    if path.is_dir():
        return "it is a directory"
    if not os.access(path if path.exists() else parent, os.W_OK):
        return "permission denied"
    return None


def figure(calls: Sequence[Call], scenario: str, changed_at: float | None) -> go.Figure:
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=(
        "Prompt-cache hit rate (cache read / input tokens)", "Time to first token",
        "Cost vs the same calls without caching (cumulative, USD)"))
    windows = stats.buckets(calls, BUCKET_SECONDS)
    for n, (model, group) in enumerate(sorted(stats.by_model(calls).items())):
        style = STYLES[n % len(STYLES)]
        rates = [(start, stats.hit_rate(c for c in window if c.model == model)) for start, window in windows]
        fig.add_trace(go.Scatter(x=[s for s, r in rates if r is not None], y=[r for _, r in rates if r is not None],
                                 mode="lines+markers", name=f"hit rate {model}", line_shape="hv", **style),
                      row=1, col=1)
        timed = [c for c in group if c.ttft is not None]
        fig.add_trace(go.Scatter(x=[c.at for c in timed], y=[c.ttft for c in timed], mode="markers",
                                 name=f"TTFT {model}", marker={**style["marker"], "size": 6}), row=2, col=1)
    ordered = sorted(calls, key=lambda c: c.at)
    at = [c.at for c in ordered]
    fig.add_trace(go.Scatter(x=at, y=list(itertools.accumulate(c.cost or 0.0 for c in ordered)),
                             name="actual cost", line_shape="hv"), row=3, col=1)
    fig.add_trace(go.Scatter(x=at, y=list(itertools.accumulate((c.cost or 0.0) + (c.savings or 0.0) for c in ordered)),
                             name="cost without caching", line_shape="hv", line={"dash": "dash"}), row=3, col=1)
    if changed_at is not None:
        fig.add_vline(x=changed_at, line={"color": "red", "dash": "dot"}, row="all", col=1)
        # inside the hit-rate panel, half-way up beside the line: above the panel it would sit on its title
        fig.add_annotation(x=changed_at, y=0.5, xref="x", yref="y domain", xanchor="left", showarrow=False,
                           text=f" {scenario} starts at {changed_at:.1f} s", font={"color": "red"},
                           bgcolor="rgba(255,255,255,0.8)")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(ticksuffix=" s", row=2, col=1)
    fig.update_yaxes(tickprefix="$", row=3, col=1)
    fig.update_xaxes(title_text="seconds since the first request", row=3, col=1)
    fig.update_layout(height=1000, title=title(calls, scenario), margin={"t": 110})
    return fig


def title(calls: Sequence[Call], scenario: str) -> str:
    totals = stats.totals(calls)
    return (f"llmtrace demo: {scenario} — {totals.requests} calls, hit rate {totals.hit_rate or 0:.1%}, "
            f"saved ${totals.savings:,.4f}")


def write(calls: Sequence[Call], path: Path, scenario: str, changed_at: float | None) -> Path:
    page = figure(calls, scenario, changed_at).to_html(include_plotlyjs=True, full_html=True)  # opens offline
    page = page.replace("</head>", f"<title>{html.escape(title(calls, scenario))}</title>\n</head>", 1)
    path.write_text(page, encoding="utf-8")
    return path
