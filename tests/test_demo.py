"""`llmtrace demo` end to end, as a user runs it, and the figures it shows."""

from __future__ import annotations

import asyncio
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


# --- the live view, rendered as the terminal shows it ---
def render(renderable: object, width: int = 100) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def bust(seconds: float, change_at: float, models: tuple[str, ...] = ("claude-haiku-4-5", "gpt-5-mini")) -> list[Call]:
    """One call per model per second; the cache hits 90% before `change_at` and never after."""
    return [call("before" if t < change_at else "after", model, 1000, 900 if t < change_at else 0, at=float(t))
            for t in range(int(seconds)) for model in models]


def test_live_view_says_when_the_scenario_changed() -> None:
    from llmtrace.demo import view

    calls = bust(12, 10)
    assert "(changed)" in render(view.live(calls, "cache-bust", True, 12, 20))
    assert "(changed)" not in render(view.live(calls[:16], "cache-bust", False, 8, 20))


def test_live_clock_counts_from_the_first_request() -> None:
    from llmtrace.demo import view
    from llmtrace.demo.recorder import Recorder
    from llmtrace.demo.workload import Agent, Settings

    now = [100.0]
    recorder = Recorder(clock=lambda: now[0])
    now[0] += 3.0  # the emulator and the SDKs coming up: not part of the run
    agent = Agent(None, None, Settings(0.0, 4.0, "cache-bust", "m1", "m2"), recorder)
    asyncio.run(agent.run())  # a zero-second run: starts the clock, sends nothing
    assert recorder.started == 103.0
    now[0] += 2.0
    assert recorder.elapsed() == 2.0
    assert " 2/20 s" in render(view.live([], "cache-bust", False, recorder.elapsed(), 20))
    # traffic over, calls still streaming: say so instead of sitting at 20/20
    frame = render(view.live([], "cache-bust", True, 21.5, 20, in_flight=3))
    assert "20 s sent, 3 calls finishing" in frame and "20/20" not in frame


def test_live_sparkline_keeps_the_newest_marks_on_long_runs() -> None:
    from llmtrace.demo import view

    calls = bust(600, 590)  # ten minutes; the cache broke in the last ten seconds
    frame = render(view.live(calls, "cache-bust", True, 600, 600), width=100)
    assert "one mark per 16 s" in frame  # 300 two-second marks would not fit: 38 marks of 16 s
    for model in ("claude-haiku-4-5", "gpt-5-mini"):
        [row] = [line for line in frame.splitlines() if line.lstrip().startswith(model)]
        marks = row.split("%", 1)[1].strip()
        assert len(marks) == 38 and marks[:36] == "█" * 36 and marks[-1] == "▁"  # the newest mark is shown
    narrow = render(view.live(calls, "cache-bust", True, 600, 600, max_marks=10), width=60)
    [row] = [line for line in narrow.splitlines() if line.lstrip().startswith("gpt-5-mini")]
    assert len(row.split("%", 1)[1].strip()) == 10  # a narrow terminal: fewer, wider marks, the newest kept


# --- the report ---
def test_report_page(tmp_path: Path) -> None:
    from llmtrace.demo import report

    calls = bust(20, 10)
    page = report.write(calls, tmp_path / "r.html", "cache-bust", 10.0).read_text()
    assert re.search(r"<head>.*<title>llmtrace demo: cache-bust — 40 calls.*</title>.*</head>", page, re.S)
    fig = report.figure(calls, "cache-bust", 10.0)
    rates = [t for t in fig.data if t.name.startswith("hit rate ")]
    assert len(rates) == 2 and rates[0].y == rates[1].y  # the same hit rates: one line would hide the other...
    assert rates[0].line.dash != rates[1].line.dash and rates[0].marker.symbol != rates[1].marker.symbol  # ...not so
    assert {shape.x0 for shape in fig.layout.shapes} == {10.0} and len(fig.layout.shapes) == 3  # on all 3 panels
    [label] = [a for a in fig.layout.annotations if "starts" in a.text]
    assert label.text.strip() == "cache-bust starts at 10.0 s"
    assert label.yref == "y domain" and 0 < label.y < 1  # inside the panel, not on its title


def test_report_path_is_checked_before_the_run(capsys) -> None:
    from llmtrace.cli import main

    assert main(["demo", "--no-live", "--report", "/nonexistent/dir/r.html"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "llmtrace demo: cannot write the report to /nonexistent/dir/r.html: " \
                                   "no such directory /nonexistent/dir"
    assert "emulator" not in captured.out  # refused before anything ran


def test_summary_survives_a_report_that_cannot_be_written(tmp_path: Path, capsys, monkeypatch) -> None:
    from llmtrace.cli import main
    from llmtrace.demo import report

    def full_disk(*args: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write", full_disk)
    assert main(["demo", "--no-live", "--duration", "1", "--rate", "4", "--report", str(tmp_path / "r.html")]) == 1
    captured = capsys.readouterr()
    assert "llmtrace demo: scenario cache-bust" in captured.out and "total: cost" in captured.out
    assert captured.err.strip().endswith(f"could not write the report to {tmp_path / 'r.html'}: No space left on device")


# --- docs/demo.md and docs/stack.md: when the real LLMCacheHitRateDrop alert fires for a demo run ---
def demo_series(minutes: int, bust_at: float, model: str, provider: str) -> list[dict[str, str]]:
    """The counters `llmtrace demo --otlp-endpoint` feeds the stack, one sample a minute: at the default rate
    each model gets 120 calls a minute of ~5,000 input tokens, 94% read from the cache until the bust, none after."""
    labels = (f'job="llmtrace-demo", otel_scope_name="llmtrace", gen_ai_operation_name="chat", '
              f'gen_ai_provider_name="{provider}", gen_ai_request_model="{model}"')
    per_minute, calls = 600_000, 120
    before = int(bust_at)
    read = " ".join(str(564_000 * min(m, before)) for m in range(minutes + 1))
    return [
        {"series": f'llmtrace_usage_tokens_total{{{labels}, llmtrace_token_type="input"}}',
         "values": f"0+{per_minute}x{minutes}"},
        {"series": f'llmtrace_usage_tokens_total{{{labels}, llmtrace_token_type="cache_read"}}', "values": read},
        {"series": f'llmtrace_requests_total{{{labels}, llmtrace_stream_outcome="completed"}}',
         "values": f"0+{calls}x{minutes}"},
    ]


def alert_at(tmp_path: Path, minutes: int, bust_at: float, evals: dict[int, bool]) -> None:
    """Runs promtool on the bundled rules with a demo run of `minutes`: LLMCacheHitRateDrop fires at each
    evaluation minute in `evals` marked True, and not at the others."""
    import yaml

    from tests.stack.conftest import REPO, require_tool, run

    series = demo_series(minutes, bust_at, "claude-haiku-4-5", "anthropic")
    cases = [{"eval_time": f"{at}m", "alertname": "LLMCacheHitRateDrop",
              "exp_alerts": [{"exp_labels": {"severity": "warning", "gen_ai_provider_name": "anthropic",
                                             "gen_ai_request_model": "claude-haiku-4-5"}}] if fires else []}
             for at, fires in evals.items()]
    alerts = yaml.safe_load((REPO / "prometheus/rules/llmtrace-alerts.yml").read_text())
    for group in alerts["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # the rule's condition and timing are under test, not its wording
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(alerts))
    test = {"rule_files": [str(REPO / "prometheus/rules/llmtrace-recording.yml"), str(tmp_path / "alerts.yml")],
            "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": cases}]}
    path = tmp_path / "demo-alert-test.yml"
    path.write_text(yaml.safe_dump(test))
    done = run([require_tool("promtool"), "test", "rules", str(path)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_fires_in_the_documented_long_run(tmp_path: Path) -> None:
    """docs/demo.md: `--duration 3000` busts the cache at minute 25; the alert goes pending at minute 30, when the
    model has 30 minutes of history, and fires at minute 34."""
    alert_at(tmp_path, 50, 25, {29: False, 31: False, 33: False, 34: True, 45: True})


def test_the_default_demo_is_too_short_for_the_alert(tmp_path: Path) -> None:
    """docs/stack.md: the default 20 s demo shows the bust on the hit-rate panel, but the alert cannot fire."""
    alert_at(tmp_path, 1, 0.5, {1: False, 10: False, 31: False, 41: False})
