"""The two-tier setup on loopback: an app with llmtrace's default exporters -> an agent (agent.yaml) -> a gateway
(gateway.yaml), both as shipped with their addresses moved to free ports. The gateway writes metrics with remote
write to a real Prometheus (its remote-write receiver standing in for Mimir or Thanos) and sends spans to an
OTLP/gRPC endpoint in the test (in the place of Tempo). The agent's DNS resolver is given 127.0.0.1, which
resolves to itself, so its trace-id routing runs as shipped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.stack.conftest import REPO, Prometheus, contract_series, free_port, short_rule_copies, wait_for
from tests.stack.services import Collector, InstrumentedApp, TraceSink, fast_emulator

SERVICE, INSTANCE = "billing-bot", "billing-bot-7"
MODEL = "claude-haiku-4-5"


@dataclass
class Tiers:
    agent: Collector
    gateway: Collector
    prometheus: Prometheus
    traces: TraceSink
    app: InstrumentedApp


@pytest.fixture(scope="module")
def tiers(otelcol, prometheus_factory, tmp_path_factory) -> Iterator[Tiers]:
    workdir = tmp_path_factory.mktemp("collector-tiers")
    with ExitStack() as cleanup:
        traces = TraceSink()
        cleanup.callback(traces.stop)
        short = short_rule_copies(workdir, {"5m": "30s", "15m": "45s", "30m": "60s", "1h": "60s", "6h": "120s"},
                                 {"30m": "5s"})
        # The store: no scraping, only what remote write brings, and the rules evaluated on it.
        prometheus = prometheus_factory(None, [], config={"global": {"evaluation_interval": "1s"}, "rule_files": short},
                                        args=("--web.enable-remote-write-receiver",))
        gateway_grpc = free_port()
        gateway = Collector(otelcol, REPO / "collector-config/gateway.yaml", {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{gateway_grpc}"},
                                                 "http": {"endpoint": f"127.0.0.1:{free_port()}"}}}},
            "exporters": {"prometheusremotewrite": {"endpoint": f"{prometheus.url}/api/v1/write"},
                          "otlp/tempo": {"endpoint": traces.endpoint}},
        }, workdir)
        cleanup.callback(gateway.stop)
        agent_http = free_port()
        agent = Collector(otelcol, REPO / "collector-config/agent.yaml", {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{free_port()}"},
                                                 "http": {"endpoint": f"127.0.0.1:{agent_http}"}}}},
            "exporters": {"loadbalancing": {"resolver": {"dns": {"hostname": "127.0.0.1", "port": str(gateway_grpc)}}},
                          "otlp/gateway": {"endpoint": f"127.0.0.1:{gateway_grpc}"}},
        }, workdir)
        cleanup.callback(agent.stop)
        gateway.wait_ready()
        agent.wait_ready()
        emulator = cleanup.enter_context(fast_emulator())
        app = InstrumentedApp(workdir, emulator.url, f"http://127.0.0.1:{agent_http}", SERVICE, INSTANCE)
        cleanup.callback(app.finish)
        app.command("loop cached")
        yield Tiers(agent, gateway, prometheus, traces, app)


def alive(tiers: Tiers) -> bool:
    tiers.agent.check_alive("the agent")
    tiers.gateway.check_alive("the gateway")
    tiers.app.check_alive()
    return True


def test_metrics_pass_agent_and_gateway_into_the_store_with_the_contract_names(tiers):
    def names() -> set[str]:
        alive(tiers)
        result = tiers.prometheus.query('group by (__name__) ({__name__=~"llmtrace_.+|gen_ai_.+"})')
        return {r["metric"]["__name__"] for r in result}

    wait_for(lambda: names() == contract_series(), 90, "every contract series written by the gateway")
    series = tiers.prometheus.query(f'llmtrace_usage_tokens_total{{gen_ai_request_model="{MODEL}"}}')
    assert {(s["metric"]["job"], s["metric"]["instance"]) for s in series} == {(SERVICE, INSTANCE)}
    assert {s["metric"]["llmtrace_token_type"] for s in series} == {"input", "output", "cache_read", "cache_write"}
    # The agent's resourcedetection added the host; like every resource attribute it is on target_info only.
    [info] = tiers.prometheus.query(f'target_info{{job="{SERVICE}"}}')
    assert info["metric"]["host_name"] and "host_name" not in series[0]["metric"]


def test_the_rules_work_unchanged_on_the_remote_written_series(tiers):
    def ratio() -> float:
        alive(tiers)
        result = tiers.prometheus.query(
            f'provider_model:llmtrace_cache_hit_ratio:rate5m{{gen_ai_request_model="{MODEL}"}}')
        return float(result[0]["value"][1]) if result else 0.0

    assert wait_for(lambda: ratio() > 0.8, 90, "the recorded hit rate of the remote-written series") <= 1


def test_spans_pass_agent_and_gateway_with_llmtrace_attributes(tiers):
    def spans() -> list:
        alive(tiers)
        return tiers.traces.received(lambda resource, name, attrs: name == f"chat {MODEL}"
                                     and resource.get("service.instance.id") == INSTANCE)

    resource, _, attrs = wait_for(spans, 90, "the app's spans at the trace store's address, through both tiers")[0]
    assert resource["service.name"] == SERVICE and resource["host.name"]  # added by the agent
    assert attrs["gen_ai.provider.name"] == "anthropic" and attrs["gen_ai.request.model"] == MODEL
    assert attrs["llmtrace.cache.outcome"] in ("hit", "write") and attrs["llmtrace.stream.outcome"] == "completed"
