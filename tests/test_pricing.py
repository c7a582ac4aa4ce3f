"""Cost and savings against hand-computed values from the price table; matching; overrides; broken files."""

from __future__ import annotations

import json
import logging

import pytest

from llmtrace._pricing import PriceTable, min_cacheable_tokens, normalize
from tests import sse
from tests.conftest import make_anthropic

M = 1_000_000
HAIKU = "claude-haiku-4-5"  # $1 input, $5 output per million; reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x


@pytest.fixture
def table() -> PriceTable:
    return PriceTable.load()


def test_cache_hit(table):
    cost = table.cost(HAIKU, input_tokens=5012, output_tokens=100, cache_read=5000, cache_write=0)
    assert cost.total == pytest.approx((12 * 1 + 5000 * 0.1 + 100 * 5) / M)
    assert cost.uncached == pytest.approx((5012 * 1 + 100 * 5) / M)
    assert cost.read_discount == pytest.approx(5000 * 0.9 / M)
    assert cost.write_premium == 0
    assert cost.savings == pytest.approx(cost.read_discount)


def test_write_only_costs_more_than_uncached(table):
    cost = table.cost(HAIKU, input_tokens=5012, output_tokens=100, cache_read=0, cache_write=5000)
    assert cost.total == pytest.approx((12 + 5000 * 1.25 + 500) / M)
    assert cost.write_premium == pytest.approx(5000 * 0.25 / M)
    assert cost.savings == pytest.approx(-5000 * 0.25 / M)  # negative: the premium is not repaid yet


def test_mixed_read_and_write(table):
    cost = table.cost(HAIKU, input_tokens=8012, output_tokens=0, cache_read=5000, cache_write=3000)
    assert cost.total == pytest.approx((12 + 5000 * 0.1 + 3000 * 1.25) / M)
    assert cost.savings == pytest.approx((5000 * 0.9 - 3000 * 0.25) / M)
    assert cost.savings == pytest.approx(cost.read_discount - cost.write_premium)


def test_one_hour_write(table):
    cost = table.cost(HAIKU, input_tokens=5012, output_tokens=0, cache_read=0, cache_write=5000, cache_write_1h=5000)
    assert cost.total == pytest.approx((12 + 5000 * 2.0) / M)
    assert cost.write_premium == pytest.approx(5000 * 1.0 / M)


def test_openai_cached_input(table):
    cost = table.cost("gpt-4o-mini", input_tokens=2006, output_tokens=300, cache_read=1920, cache_write=0)
    assert cost.total == pytest.approx((86 * 0.15 + 1920 * 0.075 + 300 * 0.6) / M)


@pytest.mark.parametrize(("model", "base"), [
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    ("claude-haiku-4-5@20251001", "claude-haiku-4-5"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("openai/gpt-4o-mini", "gpt-4o-mini"),
    ("GPT-4o", "gpt-4o"),
])
def test_snapshots_and_platform_ids_match_their_base_name(table, model, base):
    assert normalize(model) == base
    assert table.lookup(model) == table.lookup(base) is not None


@pytest.mark.parametrize("model", ["gpt-4o-audio-preview", "claude-haiku-5-5", "llama3.2", "gpt-4o-mini-tts"])
def test_unknown_models_are_never_guessed(table, model, caplog):
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        assert table.cost(model, input_tokens=10, output_tokens=1, cache_read=0, cache_write=0) is None
        assert table.cost(model, input_tokens=10, output_tokens=1, cache_read=0, cache_write=0) is None
    assert [r.getMessage() for r in caplog.records if model in r.getMessage()] != []
    assert len([r for r in caplog.records if model in r.getMessage()]) == 1  # once per model


def test_override_by_mapping_path_and_env(tmp_path, monkeypatch):
    override = {"models": {"llama3.2": {"input": 0.0, "output": 0.0}, HAIKU: {"provider": "anthropic", "input": 2.0,
                                                                            "output": 10.0}}}
    by_mapping = PriceTable.load(override)
    assert by_mapping.lookup("llama3.2").input == 0.0
    assert by_mapping.lookup(HAIKU).cache_write_5m == pytest.approx(2.5 / M)  # multipliers still apply
    assert by_mapping.lookup("gpt-4o") is not None  # the rest of the bundled table stays
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(override))
    assert PriceTable.load(path).lookup(HAIKU).input == pytest.approx(2.0 / M)
    monkeypatch.setenv("LLMTRACE_PRICING_FILE", str(path))
    assert PriceTable.load().lookup("llama3.2") is not None


@pytest.mark.parametrize("content", ["{not json", json.dumps({"models": {"m": {"input": -1, "output": 1}}}),
                                     json.dumps({"models": []}), json.dumps({"models": {"m": {"output": 1}}})])
def test_broken_override_warns_once_and_keeps_the_bundled_table(tmp_path, caplog, content):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        table = PriceTable.load(path)
    assert table.lookup(HAIKU) is not None and table.lookup("m") is None
    [record] = [r for r in caplog.records if r.name == "llmtrace"]
    assert str(path) in record.getMessage()


def test_missing_override_file_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="llmtrace"):
        PriceTable.load(tmp_path / "nope.json")
    assert "nope.json" in caplog.text


def test_minimum_cacheable_lengths():
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1024
    assert min_cacheable_tokens("claude-3-5-haiku-20241022") == 2048
    assert min_cacheable_tokens("gpt-4o-mini", "openai") == 1024
    assert min_cacheable_tokens("some-unknown-model", "anthropic") is None


def test_span_and_metric_cost(api, telemetry):
    api.sse(sse.anthropic(input_tokens=12, cache_read=5000, cache_write=0, output_tokens=100))
    list(make_anthropic(api).messages.create(model=HAIKU, max_tokens=64, stream=True,
                                             messages=[{"role": "user", "content": "Hi"}]))
    attrs = telemetry.span().attributes
    assert attrs["llmtrace.cost.usd"] == pytest.approx((12 + 500 + 500) / M)
    assert attrs["llmtrace.cache.savings.usd"] == pytest.approx(4500 / M)
    [(_, cost)] = telemetry.points("llmtrace.cost.usd")
    [(_, savings)] = telemetry.points("llmtrace.cache.savings.usd")
    [(_, premium)] = telemetry.points("llmtrace.cache.write_premium.usd")
    assert (cost.value, savings.value, premium.value) == pytest.approx(((12 + 500 + 500) / M, 4500 / M, 0))


def test_unknown_model_gets_no_cost(api, telemetry):
    api.sse(sse.anthropic(model="claude-haiku-5-5"))
    list(make_anthropic(api).messages.create(model="claude-haiku-5-5", max_tokens=64, stream=True,
                                             messages=[{"role": "user", "content": "Hi"}]))
    attrs = telemetry.span().attributes
    assert "llmtrace.cost.usd" not in attrs and "llmtrace.cache.savings.usd" not in attrs
    assert not telemetry.points("llmtrace.cost.usd")
    assert telemetry.points("llmtrace.usage.tokens")  # tokens are still counted
