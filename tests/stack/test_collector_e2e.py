"""The bundled stack's path, with real parts on loopback: an app process calling the emulator through
`llmtrace.instrument()` with its default OTLP exporters -> the Collector built from its Go modules, running
collector-config/collector.yaml as shipped (an overlay moves its addresses to free ports) -> a real Prometheus
scraping it with the shipped `otel-collector` scrape job and the rule files (windows shortened) -> a cache-busting
deploy raises LLMCacheHitRateDrop -> a real Alertmanager with the shipped routes -> a webhook in the test.
The Collector's trace pipeline delivers to an OTLP/gRPC endpoint in the test, at the trace store's address.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from tests.stack.conftest import (
    DASHBOARDS, REPO, Prometheus, contract_series, empty_dashboard_queries, empty_recording_rules,
    load, load_yaml, missing_alert_selectors, prometheus_targets, rules, series_names, short_rule_copies,
    wait_for, wait_until_none,
)
from tests.stack.services import (
    Alertmanager, BundledCollector, InstrumentedApp, TraceSink, Webhook, fast_emulator, prometheus_config,
    scrape,
)

ANTHROPIC_MODEL, OPENAI_MODEL = "claude-haiku-4-5", "gpt-4o-mini"
SERVICE, INSTANCE = "support-bot", "support-bot-1"
# The Collector's batch processor sends every 5 s (collector.yaml), so a rate needs a window of a few batches.
WINDOWS = {"5m": "15s", "15m": "25s", "30m": "30s", "1h": "120s", "6h": "300s"}
OFFSETS = {"30m": "10s"}
# The contract's labels of every point, and the extra ones of each instrument (docs/metrics.md).
COMMON_LABELS = {"gen_ai_provider_name", "gen_ai_request_model", "gen_ai_operation_name", "server_address"}
EXTRA_LABELS = {
    "gen_ai_client_operation_duration_seconds": ({"error_type"}, set()),
    "gen_ai_client_operation_time_to_first_chunk_seconds": (set(), set()),
    "gen_ai_client_token_usage": (set(), {"gen_ai_token_type"}),
    "llmtrace_usage_tokens": (set(), {"llmtrace_token_type"}),
    "llmtrace_requests": ({"llmtrace_cache_outcome", "llmtrace_cache_miss_reason"}, {"llmtrace_stream_outcome"}),
    "llmtrace_cost_usd": (set(), set()),
    "llmtrace_cache_savings_usd": (set(), set()),
    "llmtrace_cache_write_premium_usd": (set(), set()),
    "llmtrace_stream_chunks": (set(), set()),
}  # base name -> (optional, required)


@dataclass
class Stack:
    collector: BundledCollector
    metrics_url: str
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: Webhook
    traces: TraceSink
    app: InstrumentedApp


@pytest.fixture(scope="module")
def stack(otelcol, prometheus_factory, tmp_path_factory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("collector-e2e")
    with ExitStack() as cleanup:
        traces = TraceSink()
        cleanup.callback(traces.stop)
        webhook = Webhook()
        cleanup.callback(webhook.stop)
        alertmanager = Alertmanager(workdir, webhook.url)
        cleanup.callback(alertmanager.stop)
        collector = BundledCollector(otelcol, workdir, traces.endpoint)
        cleanup.callback(collector.stop)
        alertmanager.wait_ready()
        collector.wait_ready()
        short = short_rule_copies(workdir, WINDOWS, OFFSETS)
        prometheus = prometheus_factory(None, [], config=prometheus_config(
            collector.scrape_target, short, f"127.0.0.1:{alertmanager.port}"))
        emulator = cleanup.enter_context(fast_emulator())
        app = InstrumentedApp(workdir, emulator.url, collector.otlp_http, SERVICE, INSTANCE)
        cleanup.callback(app.finish)
        app.command("loop cached")
        stack = Stack(collector, f"http://{collector.scrape_target}/metrics", prometheus, alertmanager, webhook,
                      traces, app)
        # The cached baseline is in: a recorded hit rate over 0.9 (the first call's write has left the short
        # window), and the model was already seen `offset` ago, as the alert's guard asks.
        wait_for(lambda: live(stack) and hit_rate(prometheus, "rate5m", ANTHROPIC_MODEL) > 0.9, 120,
                 "a recorded hit rate > 0.9 through the collector")
        wait_for(lambda: prometheus.query(f'llmtrace_usage_tokens_total{{llmtrace_token_type="input"}} '
                                          f'offset {OFFSETS["30m"]}'), 60, "history for the alert's offset guard")
        yield stack


def live(stack: Stack) -> bool:
    stack.collector.check_alive("the collector")
    stack.alertmanager.check_alive("alertmanager")
    stack.app.check_alive()
    return True


def hit_rate(prometheus: Prometheus, window: str, model: str) -> float:
    result = prometheus.query(f'provider_model:llmtrace_cache_hit_ratio:{window}{{gen_ai_request_model="{model}"}}')
    return float(result[0]["value"][1]) if result else -1.0


def series_labels(url: str) -> dict[str, list[dict[str, str]]]:
    """Series name -> label sets, from the Collector's Prometheus endpoint."""
    series: dict[str, list[dict[str, str]]] = defaultdict(list)
    for name, labels, _ in scrape(url):
        series[name].append(labels)
    return series


def used_series() -> set[str]:
    """Series names the rules and dashboards read (not the recorded ones, which Prometheus makes)."""
    exprs = [rule["expr"] for rule in rules()]
    for path in DASHBOARDS:
        dashboard = load(path)
        exprs += [t["expr"] for _, t in prometheus_targets(dashboard)]
        exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
        exprs += [re.sub(r"^label_values\((.+), \w+\)$", r"\1", v["query"]["query"])
                  for v in dashboard["templating"]["list"]]
    return {name for expr in exprs for name in series_names(expr) if ":" not in name}


def base_name(series: str) -> str:
    return re.sub(r"(_total|_bucket|_sum|_count)$", "", series)


def test_collector_serves_every_series_the_rules_and_dashboards_use_with_the_contract_labels(stack):
    def complete() -> dict[str, list[dict[str, str]]] | None:
        series = series_labels(stack.metrics_url)
        return series if contract_series() <= set(series) else None

    series = wait_for(complete, 60, "every contract series at the collector's endpoint")
    names = {n for n in series if n.startswith(("llmtrace_", "gen_ai_"))}
    assert names == contract_series(), "the collector names series as the contract does"
    assert used_series() <= names, f"used by rules or dashboards, not served: {used_series() - names}"
    for name in sorted(names):
        optional, required = EXTRA_LABELS[base_name(name)]
        bucket = {"le"} if name.endswith("_bucket") else set()
        for labels in series[name]:
            assert COMMON_LABELS | required | bucket <= set(labels), (name, labels)
            # job / instance come from service.name / service.instance.id; nothing else is added
            assert set(labels) <= COMMON_LABELS | required | optional | bucket | {"job", "instance"}, (name, labels)
            assert (labels["job"], labels["instance"]) == (SERVICE, INSTANCE), (name, labels)
    [target_info] = series["target_info"]  # the other resource attributes, once per app
    assert (target_info["job"], target_info["instance"]) == (SERVICE, INSTANCE)
    assert target_info["telemetry_sdk_language"] == "python"


def test_prometheus_keeps_the_apps_job_and_instance(stack):
    """honor_labels in the shipped scrape job: series carry the app's job/instance, not the collector's."""
    def jobs() -> set[tuple[str, str]]:
        result = stack.prometheus.query("count by (job, instance) (llmtrace_requests_total)")
        return {(r["metric"]["job"], r["metric"]["instance"]) for r in result}

    # Polled: right after a scrape that timed out on a loaded machine, Prometheus marks every series stale.
    wait_for(lambda: live(stack) and jobs() == {(SERVICE, INSTANCE)}, 60, "the app's job and instance",
             describe=lambda: str(jobs()))


def test_every_dashboard_query_returns_series_through_the_collector(stack):
    # Series that only the app's fifth rounds feed (errors, abandoned streams) may still be on their way.
    wait_until_none(lambda: empty_dashboard_queries(stack.prometheus), 60, "dashboard queries without series")


def test_every_recording_rule_and_alert_selector_finds_series_through_the_collector(stack):
    wait_until_none(lambda: empty_recording_rules(stack.prometheus), 60, "recording rules without series")
    assert not missing_alert_selectors(stack.prometheus)


def test_spans_reach_the_trace_store_address_with_llmtrace_attributes(stack):
    def llm_spans() -> list[Any]:
        live(stack)
        return stack.traces.received(lambda resource, name, attrs: name == f"chat {ANTHROPIC_MODEL}"
                                     and attrs.get("llmtrace.cache.outcome") == "hit")

    resource, _, attrs = wait_for(llm_spans, 60, "llmtrace spans at the trace store's address")[0]
    assert resource["service.name"] == SERVICE and resource["service.instance.id"] == INSTANCE
    assert attrs["gen_ai.provider.name"] == "anthropic" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == ANTHROPIC_MODEL and attrs["llmtrace.stream.outcome"] == "completed"
    assert attrs["gen_ai.usage.cache_read.input_tokens"] > 0 and attrs["gen_ai.usage.cache_write.input_tokens"] == 0
    assert attrs["gen_ai.usage.input_tokens"] >= attrs["gen_ai.usage.cache_read.input_tokens"]
    assert 0 < attrs["llmtrace.cache.hit_ratio"] <= 1 and attrs["llmtrace.stream.chunks"] > 0
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    openai = stack.traces.received(lambda r, name, a: name == f"chat {OPENAI_MODEL}")
    assert openai and openai[0][2]["gen_ai.provider.name"] == "openai"


def alert_rule(name: str) -> dict[str, Any]:
    [rule] = [r for r in rules() if r.get("alert") == name]
    return rule


def percentages(text: str) -> list[float]:
    return [float(p) / 100 for p in re.findall(r"(\d+(?:\.\d+)?)%", text)]


def notified(stack: Stack, alertname: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(notification, alert) of every firing `alertname` alert the webhook received."""
    live(stack)
    return [(n, a) for n in stack.webhook.notifications for a in n["alerts"]
            if a["labels"]["alertname"] == alertname and a["status"] == "firing"]


class Timeline:
    """What the pipeline showed while a test waited, every few seconds: for a failure's message."""

    def __init__(self, stack: Stack, every: float = 5.0) -> None:
        self.stack, self.every, self.start = stack, every, time.monotonic()
        self.lines: list[str] = []
        self._next = self.start

    def note(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every
        prometheus = self.stack.prometheus
        rates = {w: hit_rate(prometheus, w, ANTHROPIC_MODEL) for w in ("rate5m", "rate1h")}
        calls = prometheus.query(f'provider_model:llmtrace_requests:rate5m{{gen_ai_request_model="{ANTHROPIC_MODEL}"}}')
        states = [a["state"] for a in prometheus.alerts() if a["labels"].get("alertname") == "LLMCacheHitRateDrop"]
        health = [(t["health"], t["lastError"]) for t in prometheus.api("targets")["activeTargets"]]
        self.lines.append(f"{now - self.start:6.1f} s  hit rate 5m {rates['rate5m']:.2f} 1h {rates['rate1h']:.2f}  "
                          f"calls/s {float(calls[0]['value'][1]) if calls else -1:.2f}  alert {states or '-'}  "
                          f"scrapes {health}  notifications {len(self.stack.webhook.notifications)}")
        return None

    def __call__(self) -> str:
        return "\n".join(self.lines)


def test_cache_bust_fires_LLMCacheHitRateDrop_and_alertmanager_notifies_the_webhook(stack):
    prometheus = stack.prometheus
    # A cached history as long as the rule's baseline window ("1h", 120 s here). After the deploy the alert then
    # stays firing until that window's hit rate falls under the rule's 0.2 guard, about 70 s, well past
    # Alertmanager's 30 s group_wait, however late a loaded machine carries the change through: the delay moves
    # both ends of that time alike. With a shorter history the baseline falls with the first busted calls, and
    # the alert could be over before Alertmanager sends it.
    wait_for(lambda: live(stack) and prometheus.query(
        f'llmtrace_usage_tokens_total{{llmtrace_token_type="input",gen_ai_request_model="{ANTHROPIC_MODEL}"}} '
        f'offset {WINDOWS["1h"]}'), 300, "a cached history as long as the baseline window")
    wait_for(lambda: live(stack) and hit_rate(prometheus, "rate5m", ANTHROPIC_MODEL) > 0.9
             and hit_rate(prometheus, "rate1h", ANTHROPIC_MODEL) > 0.9, 60, "the cached hit rates")
    assert not notified(stack, "LLMCacheHitRateDrop")

    stack.app.command("loop busted")  # the deploy: a new Anthropic system prompt on every call
    # Pending after the short window, firing after `for:`, then Alertmanager's group_wait (30 s, as shipped).
    seen = Timeline(stack)
    [(notification, alert), *_] = wait_for(lambda: notified(stack, "LLMCacheHitRateDrop") or seen.note(), 240,
                                           "the LLMCacheHitRateDrop notification at the webhook", describe=seen)

    rule = alert_rule("LLMCacheHitRateDrop")
    labels = alert["labels"]
    assert labels["gen_ai_request_model"] == ANTHROPIC_MODEL and labels["gen_ai_provider_name"] == "anthropic"
    assert labels["severity"] == rule["labels"]["severity"]
    # The shipped route: grouped per alert, provider, model (and job, which this alert does not carry).
    shipped_route = load_yaml("alertmanager/alertmanager.yml")["route"]
    assert notification["receiver"] == shipped_route["receiver"]
    assert notification["groupLabels"] == {k: v for k, v in labels.items() if k in shipped_route["group_by"]}
    # The summary's numbers: the hit rate now and the one it fell from, as Prometheus recorded them meanwhile.
    summary = alert["annotations"]["summary"]
    assert ANTHROPIC_MODEL in summary and "anthropic" in summary
    now, baseline = percentages(summary)[:2]
    assert now < baseline / 3 and baseline > 0.2, summary  # the rule's "under a third" and its baseline guard
    for value, window in ((now, "rate5m"), (baseline, "rate1h")):
        recorded = f'provider_model:llmtrace_cache_hit_ratio:{window}{{gen_ai_request_model="{ANTHROPIC_MODEL}"}}'
        lowest, highest = (float(prometheus.query(f"{f}_over_time({recorded}[5m])")[0]["value"][1])
                           for f in ("min", "max"))
        assert lowest - 0.001 <= value <= highest + 0.001, (summary, window, lowest, highest)
    # The runbook link, as the shipped rule renders it with no base URL set: the bundled Grafana's runbook page.
    assert alert["annotations"]["runbook_url"] == "http://127.0.0.1:3000/d/runbook-LLMCacheHitRateDrop"
    assert "runbook-LLMCacheHitRateDrop" in (REPO / "dashboards/runbooks/LLMCacheHitRateDrop.json").read_text()
    # The OpenAI model kept its cache: no page for it.
    assert all(a["labels"]["gen_ai_request_model"] != OPENAI_MODEL for _, a in notified(stack, "LLMCacheHitRateDrop"))
    wait_for(lambda: live(stack) and hit_rate(prometheus, "rate5m", OPENAI_MODEL) > 0.9, 60, "the OpenAI hit rate")
