"""`llmtrace demo` end to end, as a user runs it, and the figures it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from llmtrace.demo import stats
from llmtrace.demo.recorder import Call


def test_demo_shows_the_cache_bust_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "llmtrace.cli", "demo", "--no-live", "--duration", "6", "--rate", "4",
         "--report", str(report)],
        capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for model in ("claude-haiku-4-5", "gpt-5-mini"):
        row = re.search(rf"{model}\s+(\d+\.\d)%\s+(\d+\.\d)%\s+would fire", out)
        assert row, out
        before, after = map(float, row.groups())
        assert before > 50 and after == 0.0
    assert re.search(r"after the change: .*lost to cache-write premiums \$\d.*system_changed \d+", out), out
    assert re.search(r"before the change: .*saved \$0\.\d+", out), out
    assert f"report: {report}" in out
    html = report.read_text()
    assert "Prompt-cache hit rate" in html and "Time to first token" in html and "cost without caching" in html
    assert "plotly" in html and html.count('"type":"scatter"') >= 5


def call(phase: str, model: str, input_tokens: int, cache_read: int, **kw: object) -> Call:
    fields = dict(at=0.0, phase=phase, provider="anthropic", model=model, outcome="completed", error_type=None,
                  ttft=0.1, chunks=3, input_tokens=input_tokens, output_tokens=5, cache_read=cache_read,
                  cache_write=0, cache_outcome=None, miss_reason=None, cost=0.0, savings=0.0)
    fields.update(kw)
    return Call(**fields)  # type: ignore[arg-type]


def test_drops_follow_the_alert_condition() -> None:
    calls = [call("before", "a", 100, 90), call("after", "a", 100, 20),  # 90% -> 20%: under 0.33 x 90%
             call("before", "b", 100, 90), call("after", "b", 100, 40),  # 90% -> 40%: not a third
             call("before", "c", 100, 10), call("after", "c", 100, 0)]  # never really cached: quiet
    assert [(d.model, d.fires) for d in stats.drops(calls)] == [("a", True), ("b", False), ("c", False)]
    assert stats.hit_rate([]) is None and stats.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
