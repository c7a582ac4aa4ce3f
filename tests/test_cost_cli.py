"""`llmtrace cost` reproduces the classic caching example, prices from the table, knows the minimum cacheable
length, and refuses what it cannot price (exit code 2 and a one-line message) instead of printing wrong figures."""

from __future__ import annotations

import json
import re
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
    assert figures["cache_write_extra"] == pytest.approx(720 * 5000 * 1.9 / 1e6)
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


def run_cost(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `llmtrace cost ARGS`, argparse's own exits included."""
    try:
        code = main(["cost", *args])
    except SystemExit as stopped:
        code = stopped.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    return code, out, err


WORKLOAD = ["--requests-per-minute", "1000", "--prompt-tokens", "5000"]


def test_a_prefix_under_the_minimum_is_not_cached(capsys):
    """Haiku 4.5 caches prefixes of 4,096 tokens or more: a 3,000-token prompt saves nothing, and the tool says why."""
    code, out, _ = run_cost(capsys, "--model", "claude-haiku-4-5", "--requests-per-minute", "1000",
                            "--prompt-tokens", "3000")
    assert code == 0
    assert re.search(r"without caching\s+\$129,600\.00", out) and re.search(r"with caching\s+\$129,600\.00", out)
    assert re.search(r"savings\s+\$0\.00", out)
    assert "under the 4,096 tokens claude-haiku-4-5 needs to cache a prefix" in out
    code, out, _ = run_cost(capsys, "--model", "claude-haiku-4-5", "--requests-per-minute", "1000",
                            "--prompt-tokens", "3000", "--json")
    figures = json.loads(out)
    assert figures["savings"] == 0 and figures["cacheable"] is False and figures["min_cacheable_tokens"] == 4096
    # a share of a long prompt is what must reach the minimum; --min-cache-tokens gives one for custom prices
    _, out, _ = run_cost(capsys, "--model", "claude-haiku-4-5", *WORKLOAD, "--cached-share", "0.5", "--json")
    assert json.loads(out)["cacheable"] is False
    _, out, _ = run_cost(capsys, *CLASSIC[1:], "--min-cache-tokens", "8000", "--json")
    assert json.loads(out)["savings"] == 0


@pytest.mark.parametrize("flag, value", [("--requests-per-minute", "-1000"), ("--requests-per-minute", "nan"),
                                         ("--requests-per-minute", "inf"), ("--input-price", "-1"),
                                         ("--cache-read-multiplier", "nan"), ("--cached-share", "1.5"),
                                         ("--prompt-tokens", "-5"), ("--output-tokens", "2.5")])
def test_negative_nan_and_infinite_inputs_are_refused(capsys, flag, value):
    args = dict(zip(CLASSIC[1::2], CLASSIC[2::2]))
    args[flag] = value
    code, out, err = run_cost(capsys, *[item for pair in args.items() for item in pair])
    assert code == 2 and not out
    assert f"llmtrace cost: error: argument {flag}: " in err and repr(value) in err


def test_a_price_given_with_a_model_overrides_the_table(capsys):
    _, out, _ = run_cost(capsys, "--model", "claude-haiku-4-5", "--input-price", "5", *WORKLOAD, "--json")
    figures = json.loads(out)
    assert figures["uncached"] == pytest.approx(43_200_000 * 5000 * 5 / 1e6)  # $5/M, not the table's $1/M
    assert figures["cached_reads"] == pytest.approx(figures["uncached"] * 0.1)  # the model's read multiplier
    _, out, _ = run_cost(capsys, "--model", "claude-haiku-4-5", "--input-price", "5", *WORKLOAD)
    assert "given: --input-price" in out and "input $5/M" in out


@pytest.mark.parametrize("content", ["garbage", "[]", '{"models": {"m": {"input": -1, "output": 1}}}'])
def test_an_explicit_pricing_file_that_cannot_be_used_is_an_error(capsys, tmp_path, content):
    prices = tmp_path / "prices.json"
    prices.write_text(content)
    code, out, err = run_cost(capsys, "--model", "claude-haiku-4-5", *WORKLOAD, "--pricing", str(prices))
    assert code == 2 and not out
    [line] = err.splitlines()
    assert line.startswith(f"llmtrace cost: cannot use pricing file '{prices}': ")
    code, _, err = run_cost(capsys, *CLASSIC[1:], "--pricing", str(tmp_path / "missing.json"))
    assert code == 2 and "No such file or directory" in err


def test_an_unknown_flag_is_named(capsys):
    code, _, err = run_cost(capsys, "--bogus")
    assert code == 2
    assert err.splitlines()[-1] == "llmtrace: error: unrecognized arguments: --bogus"
    code, _, err = run_cost(capsys, "--input-price", "1")
    assert code == 2 and err.splitlines()[-1] == \
        "llmtrace cost: error: the following arguments are required: --requests-per-minute, --prompt-tokens"


def test_json_figures_are_rounded(capsys):
    """At Sonnet's $3/M the classic workload is $648,000 / $64,800 (not 64800.00000000001)."""
    code, out, _ = run_cost(capsys, "--model", "claude-sonnet-4-5", *WORKLOAD, "--json")
    assert code == 0
    assert '"uncached": 648000.0,' in out and '"cached_reads": 64800.0,' in out and '"total": 64949.04,' in out


def test_write_extra_is_labelled_as_the_extra_over_a_read(capsys):
    _, out, _ = run_cost(capsys, *CLASSIC[1:])
    assert re.search(r"\+ write extra\s+\$49\.68  one write per 5m TTL window \(8,640 a month\), each at 1\.25x "
                     r"input in place of a 0\.1x read", out), out
