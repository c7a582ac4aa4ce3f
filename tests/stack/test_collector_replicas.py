"""Two replicas of one app (same service.name, different service.instance.id) through one Collector
(collector.yaml as shipped): their counters stay apart, keyed by instance, none flips between them, and the
hit-rate recording rule aggregates both, weighted by tokens.

Replica A keeps its prompt cached, replica B busts it on every call, and each reports the tokens its SDKs saw, so
every number the Collector serves and every number Prometheus computes is checked against an exact expectation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.stack.conftest import Prometheus, short_rule_copies, wait_for
from tests.stack.services import BundledCollector, InstrumentedApp, TraceSink, fast_emulator, prometheus_config, scrape

MODEL, SERVICE = "claude-haiku-4-5", "support-bot"
A, B = "support-bot-a", "support-bot-b"
# The recording rules' 5m, shortened: long enough that one window holds the totals from before a step and after
# it, though the Collector sends every 5 s and the two replicas' calls take seconds each on a loaded machine.
WINDOW = "30s"


@dataclass
class Replicas:
    collector: BundledCollector
    prometheus: Prometheus
    apps: dict[str, InstrumentedApp]


@pytest.fixture(scope="module")
def replicas(otelcol, prometheus_factory, tmp_path_factory) -> Iterator[Replicas]:
    workdir = tmp_path_factory.mktemp("collector-replicas")
    with ExitStack() as cleanup:
        traces = TraceSink()
        cleanup.callback(traces.stop)
        collector = BundledCollector(otelcol, workdir, traces.endpoint)
        cleanup.callback(collector.stop)
        collector.wait_ready()
        short = short_rule_copies(workdir, {"5m": WINDOW, "15m": "45s", "30m": "60s", "1h": "90s", "6h": "180s"},
                                 {"30m": "5s"})
        prometheus = prometheus_factory(None, [], config=prometheus_config(collector.scrape_target, short))
        emulator = cleanup.enter_context(fast_emulator())
        apps = {}
        for instance in (A, B):
            apps[instance] = InstrumentedApp(workdir, emulator.url, collector.otlp_http, SERVICE, instance)
            cleanup.callback(apps[instance].finish)
        yield Replicas(collector, prometheus, apps)


def served(replicas: Replicas) -> dict[tuple[str, str, str], float]:
    """(instance, model, token type) -> llmtrace_usage_tokens_total at the Collector's endpoint."""
    for app in replicas.apps.values():
        app.check_alive()
    replicas.collector.check_alive("the collector")
    return {(labels["instance"], labels["gen_ai_request_model"], labels["llmtrace_token_type"]): value
            for name, labels, value in scrape(f"http://{replicas.collector.scrape_target}/metrics")
            if name == "llmtrace_usage_tokens_total" and labels["job"] == SERVICE}


def expected(replicas: Replicas) -> dict[tuple[str, str, str], float]:
    """What each replica's SDKs reported, as the Collector should serve it."""
    return {(instance, model, kind): float(count) for instance, app in replicas.apps.items()
            for model, kinds in app.totals.items() for kind, count in kinds.items()}


def stored(prometheus: Prometheus, expr: str, at: float | None = None) -> dict[tuple[str, str], float]:
    """(instance, token type) -> value of an expression over llmtrace_usage_tokens_total."""
    return {(r["metric"]["instance"], r["metric"]["llmtrace_token_type"]): float(r["value"][1])
            for r in prometheus.query(expr, at)}


def anthropic_state(replicas: Replicas) -> dict[tuple[str, str], float]:
    """(instance, token type) -> the replicas' own input and cache_read totals for the Anthropic model."""
    return {(instance, kind): float(app.totals[MODEL][kind]) for instance, app in replicas.apps.items()
            for kind in ("input", "cache_read")}


SELECTOR = f'llmtrace_usage_tokens_total{{gen_ai_request_model="{MODEL}", llmtrace_token_type=~"input|cache_read"}}'


def one_sample_per_scrape(prometheus: Prometheus, at: float | None = None) -> bool:
    """Every series of SELECTOR has a sample from each scrape of the last WINDOW (they came in together), so
    rate() extrapolates all of them alike."""
    counts = stored(prometheus, f"count_over_time({SELECTOR}[{WINDOW}])", at)
    return len(counts) == 4 and len(set(counts.values())) == 1


def in_prometheus(replicas: Replicas, state: dict[tuple[str, str], float], steady: bool = False) -> bool:
    """Prometheus holds `state` now (and, `steady`, has held nothing else for WINDOW, in every series)."""
    if stored(replicas.prometheus, SELECTOR) != state:
        return False
    return not steady or (stored(replicas.prometheus, f"min_over_time({SELECTOR}[{WINDOW}])") == state
                          and one_sample_per_scrape(replicas.prometheus))


def both(replicas: Replicas, a: str, b: str) -> None:
    """Replica A runs command `a` while replica B runs `b`, so that their totals change close together."""
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(replicas.apps[A].command, a), pool.submit(replicas.apps[B].command, b)]:
            done.result()


def test_each_replica_keeps_its_own_counters_and_the_hit_rate_rule_weights_them_by_tokens(replicas):
    # Before: a few calls each, delivered, and unchanged for a whole rule window.
    both(replicas, "calls cached 3", "calls busted 3")
    wait_for(lambda: served(replicas) == expected(replicas), 60, "each replica's totals at the collector, apart")
    before = anthropic_state(replicas)
    wait_for(lambda: in_prometheus(replicas, before, steady=True), 120,
             f"Prometheus holding the first totals for {WINDOW}")

    # Then: A reads its cache four more times, B writes twice more.
    both(replicas, "calls cached 4", "calls busted 2")
    wait_for(lambda: served(replicas) == expected(replicas), 60, "the new totals at the collector")
    after = anthropic_state(replicas)
    wait_for(lambda: in_prometheus(replicas, after), 60, "the new totals in Prometheus")

    delta = {key: after[key] - before[key] for key in after}
    assert delta[(A, "cache_read")] > 0 and delta[(B, "cache_read")] == 0
    weighted = (delta[(A, "cache_read")] + delta[(B, "cache_read")]) / (delta[(A, "input")] + delta[(B, "input")])
    per_replica = [delta[(i, "cache_read")] / delta[(i, "input")] for i in (A, B)]
    assert abs(weighted - sum(per_replica) / 2) > 0.05, "the scenario tells a weighted from a plain mean"

    def recorded_over_exactly_this_step() -> tuple[float, list[dict]] | None:
        """The rule's value at an evaluation whose window starts on `before` and ends on `after`."""
        recorded = f'provider_model:llmtrace_cache_hit_ratio:rate5m{{gen_ai_request_model="{MODEL}"}}'
        now = time.time()
        result = replicas.prometheus.query(recorded, now)
        if not result:
            return None
        at = float(replicas.prometheus.query(f"timestamp({recorded})", now)[0]["value"][1])  # its evaluation
        if (stored(replicas.prometheus, f"min_over_time({SELECTOR}[{WINDOW}])", at) == before
                and stored(replicas.prometheus, f"max_over_time({SELECTOR}[{WINDOW}])", at) == after
                and one_sample_per_scrape(replicas.prometheus, at)):
            return float(result[0]["value"][1]), result
        return None

    value, result = wait_for(recorded_over_exactly_this_step, 60, "a rule evaluation over exactly this step")
    # One series for the model across both replicas, neither instance nor job on it, and the token-weighted ratio
    # (rate() extrapolates every series of one scrape alike, so the ratio of rates is the ratio of increases).
    assert [r["metric"] for r in result] == [{"__name__": "provider_model:llmtrace_cache_hit_ratio:rate5m",
                                              "gen_ai_provider_name": "anthropic", "gen_ai_request_model": MODEL}]
    assert value == pytest.approx(weighted, rel=1e-9)


def test_no_series_flips_between_replicas(replicas):
    """Every counter Prometheus stored rose monotonically (a series fed by both replicas in turn would reset),
    and ends on its own replica's total, for every model and token type."""
    resets = replicas.prometheus.query(
        "resets(llmtrace_usage_tokens_total[10m]) > 0 or resets(llmtrace_requests_total[10m]) > 0")
    assert resets == [], resets

    def final() -> dict[tuple[str, str, str], float]:
        result = replicas.prometheus.query(f'llmtrace_usage_tokens_total{{job="{SERVICE}"}}')
        return {(r["metric"]["instance"], r["metric"]["gen_ai_request_model"], r["metric"]["llmtrace_token_type"]):
                float(r["value"][1]) for r in result}

    def instances() -> set[str]:
        result = replicas.prometheus.query(f'count by (instance) (llmtrace_requests_total{{job="{SERVICE}"}})')
        return {r["metric"]["instance"] for r in result}

    # Polled: right after a scrape that timed out on a loaded machine, Prometheus marks every series stale.
    wait_for(lambda: final() == expected(replicas), 60, "each replica's own totals in Prometheus",
             describe=lambda: str(final()))
    wait_for(lambda: instances() == {A, B}, 60, "both instances", describe=lambda: str(instances()))
