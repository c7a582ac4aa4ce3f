"""`llmtrace cost` reproduces the classic caching example, and prices from the table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmtrace.cli import main

CLASSIC = ["cost", "--input-price", "1", "--requests-per-minute", "1000", "--prompt-tokens", "5000",
           "--cached-share", "1"]


def test_classic_example(capsys):
    """1000 req/min x 5000 cached tokens at $1/M: $216,000 a month uncached, $21,600 when every request reads."""
    assert main(CLASSIC) == 0
    out = capsys.readouterr().out
    assert "without caching" in out and "$216,000.00" in out
    assert "with caching" in out and "$21,600.00" in out
    # the small extra: one 5-minute write per window, 8,640 a month, at (1.25 - 0.1) x $1/M on 5,000 tokens
    assert "$49.68" in out and "8,640" in out
    assert "after 1 read" in out


def test_json_and_one_hour_ttl(capsys):
    assert main([*CLASSIC, "--ttl", "1h", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["uncached"] == pytest.approx(216_000)
    assert figures["cached_reads"] == pytest.approx(21_600)
    assert figures["writes_per_month"] == 720
    assert figures["cache_writes"] == pytest.approx(720 * 5000 * 1.9 / 1e6)
    assert figures["break_even_reads"] == 2  # a 2x write repaid by reads saving 0.9x each


def test_model_prices_from_the_table(capsys):
    assert main(["cost", "--model", "claude-haiku-4-5-20251001", "--requests-per-minute", "10",
                 "--prompt-tokens", "5000", "--output-tokens", "100", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    per_request = 5000 * 1 / 1e6 + 100 * 5 / 1e6
    assert figures["uncached"] == pytest.approx(10 * 60 * 24 * 30 * per_request)


def test_unknown_model_is_an_error(capsys):
    assert main(["cost", "--model", "no-such-model", "--requests-per-minute", "1", "--prompt-tokens", "1"]) == 2
    assert "no price" in capsys.readouterr().err


def test_as_a_command():
    proc = subprocess.run([sys.executable, "-m", "llmtrace.cli", *CLASSIC], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "$216,000.00" in proc.stdout and "$21,600.00" in proc.stdout
