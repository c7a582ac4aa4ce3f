"""End to end on this machine, with real parts only: Anthropic and OpenAI SDK calls (answered by a mock HTTP
transport) through `llmtrace.instrument()` -> OpenTelemetry `PrometheusMetricReader`, served by prometheus_client
on loopback -> a real Prometheus scraping it every second and evaluating the project's rule files (windows and
`for:` shortened to seconds) -> queries, recording rules and alert states through its HTTP API -> a real
Alertmanager, which receives the alert with its runbook link (Prometheus set up as docs/stack.md says to point
the links at one's own docs host).

The same checks run through the built OpenTelemetry Collector in test_collector_e2e.py; the two paths name every
series alike (docs/stack.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import sse
from tests.stack.conftest import (
    RULE_FILES, SHORT_WINDOWS, Prometheus, contract_series, empty_dashboard_queries, empty_recording_rules, free_port,
    load_yaml, missing_alert_selectors, require_tool, short_rules, terminate, wait_for, wait_until_none,
)

CACHED, BUSTED = "cached", "busted"
ANTHROPIC_MODEL, OPENAI_MODEL = "claude-haiku-4-5", "gpt-4o-mini"
SYSTEM_TEXT = "You answer questions about the billing API, briefly and precisely. " * 120
# The runbook links pointed at one's own docs host (docs/stack.md, "Runbook links").
RUNBOOK_BASE = {"llmtrace_runbook_base_url": "https://docs.example.test/llmtrace/runbooks/"}


class Traffic:
    """An app on a background thread: real SDK calls, streamed and not, through llmtrace's instrumentation.

    `cached`: Anthropic calls read a 4,000-token system prompt from the cache (the first one writes it),
    OpenAI calls read 1,920 cached tokens; every fifth round adds an overloaded error and an abandoned stream.
    `busted`: the Anthropic system prompt changes on every call, so every call writes the cache and reads nothing.
    """

    def __init__(self) -> None:
        import anthropic
        import httpx2
        import openai

        self.mode = CACHED
        self.rounds = 0
        self.failure: BaseException | None = None
        self._reply: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmtrace-live-traffic", daemon=True)
        transport = httpx2.MockTransport(lambda request: self._reply)
        self.anthropic = anthropic.Anthropic(api_key="test", base_url="http://mock.local", max_retries=0,
                                             http_client=httpx2.Client(transport=transport))
        self.openai = openai.OpenAI(api_key="test", base_url="http://mock.local/v1", max_retries=0,
                                    http_client=httpx2.Client(transport=transport))
        self._httpx2, self._api_error = httpx2, anthropic.APIStatusError

    def _sse(self, events: list[sse.Event]) -> Any:
        return self._httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                     content=b"".join(sse.encode(events)))

    def _anthropic_stream(self, system: str, cache_read: int, cache_write: int) -> None:
        self._reply = self._sse(sse.anthropic(["The invoice", " is paid."], model=ANTHROPIC_MODEL, input_tokens=50,
                                              cache_read=cache_read, cache_write=cache_write, output_tokens=20))
        stream = self.anthropic.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=256, stream=True,
            system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "Is invoice 42 paid?"}])
        for _ in stream:
            pass

    def _openai_stream(self, cached: int, abandon: bool = False) -> None:
        self._reply = self._sse(sse.openai_chat(["Yes", ", it is."], model=OPENAI_MODEL, prompt_tokens=2006,
                                                cached=cached, completion_tokens=12))
        stream = self.openai.chat.completions.create(
            model=OPENAI_MODEL, stream=True, stream_options={"include_usage": True}, prompt_cache_key="billing-bot",
            messages=[{"role": "system", "content": SYSTEM_TEXT}, {"role": "user", "content": "Is invoice 42 paid?"}])
        if abandon:  # the app stops reading after the first chunk
            next(iter(stream))
            stream.close()
            return
        for _ in stream:
            pass

    def _overloaded(self) -> None:
        self._reply = self._httpx2.Response(
            529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        try:
            self.anthropic.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, stream=True,
                                           messages=[{"role": "user", "content": "Is invoice 42 paid?"}])
        except self._api_error:
            pass

    def one_round(self) -> None:
        first = self.rounds == 0
        if self.mode == CACHED:
            self._anthropic_stream(SYSTEM_TEXT, cache_read=0 if first else 4000, cache_write=4000 if first else 0)
        else:
            self._anthropic_stream(f"Request {self.rounds}. {SYSTEM_TEXT}", cache_read=0, cache_write=4000)
        self._openai_stream(cached=0 if first else 1920)
        if self.rounds % 5 == 1:
            self._overloaded()
            self._openai_stream(cached=1920, abandon=True)
        self.rounds += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.one_round()
                self._stop.wait(0.05)
        except BaseException as exc:  # reported by the test through check()
            self.failure = exc

    def start(self) -> None:
        self._thread.start()

    def check(self) -> None:
        if self.failure is not None:
            raise AssertionError("the traffic thread failed") from self.failure

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Alertmanager:
    """A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, with one silent receiver."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus-alertmanager") or require_tool("alertmanager")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "alertmanager.yml"
        config.write_text("route: {receiver: nowhere}\nreceivers: [{name: nowhere}]\n", encoding="utf-8")
        self.log = (workdir / "alertmanager.log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def alerts(self) -> list[dict[str, Any]]:
        if self.proc.poll() is not None:
            pytest.fail(f"alertmanager exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as r:
                return json.load(r)
        except (urllib.error.URLError, OSError):
            return []

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()


@dataclass
class Live:
    prometheus: Prometheus
    traffic: Traffic
    alertmanager: Alertmanager


@pytest.fixture(scope="module")
def live(prometheus_factory, tmp_path_factory) -> Iterator[Live]:
    require_tool("prometheus")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry, start_http_server

    import llmtrace

    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    llmtrace.uninstrument()
    llmtrace.instrument(tracer_provider=TracerProvider(), meter_provider=meter_provider)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    rules_dir = tmp_path_factory.mktemp("short-rules")
    traffic = None
    alertmanager = Alertmanager(tmp_path_factory.mktemp("alertmanager"))
    try:
        # Prometheus first: its first scrape comes ~5 s after start (target discovery), time the SDKs take to import.
        # Its alerting section is the shipped one, pointed at the test's Alertmanager.
        alerting = load_yaml("prometheus/prometheus.yml")["alerting"]
        alerting["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]
        prometheus = prometheus_factory(f"127.0.0.1:{port}", [short_rules(p, rules_dir / p.name) for p in RULE_FILES],
                                        external_labels=RUNBOOK_BASE, alerting=alerting)
        traffic = Traffic()
        traffic.start()
        # The cached baseline is in: a high recorded hit rate, and the model was already seen `offset` ago.
        wait_for(lambda: traffic.check() or hit_rate(prometheus, ANTHROPIC_MODEL) > 0.9, 60, "a recorded hit rate > 0.9")
        wait_for(lambda: prometheus.query('llmtrace_usage_tokens_total{llmtrace_token_type="input"} offset 2s'), 60,
                 "2 seconds of history")
        yield Live(prometheus, traffic, alertmanager)
        traffic.check()
    finally:
        if traffic is not None:
            traffic.stop()
        alertmanager.stop()
        llmtrace.uninstrument()
        server.shutdown()
        server.server_close()
        meter_provider.shutdown()


def hit_rate(prometheus: Prometheus, model: str) -> float:
    result = prometheus.query(f'provider_model:llmtrace_cache_hit_ratio:rate5m{{gen_ai_request_model="{model}"}}')
    return float(result[0]["value"][1]) if result else -1.0


def alert_states(prometheus: Prometheus, alertname: str) -> dict[str, str]:
    """model -> pending/firing, for one alert."""
    return {a["labels"].get("gen_ai_request_model", ""): a["state"] for a in prometheus.alerts()
            if a["labels"]["alertname"] == alertname}


def test_exporter_series_names_are_the_contract_names(live):
    """The names the real exporter produces from real calls are exactly the contract's (docs/metrics.md)."""
    def names() -> set[str]:
        live.traffic.check()
        result = live.prometheus.query('group by (__name__) ({__name__=~"llmtrace_.+|gen_ai_.+"})')
        return {r["metric"]["__name__"] for r in result}

    # Polled: right after a scrape that timed out on a loaded machine, Prometheus marks every series stale.
    wait_for(lambda: names() == contract_series(), 60, "the contract's series names", describe=lambda: str(names()))


# On a loaded machine the traffic thread may not yet have made, and Prometheus scraped twice, the rarer series
# (errors, abandoned streams): each check waits for them, 60 s at most.
def test_every_dashboard_query_returns_series(live):
    wait_until_none(lambda: empty_dashboard_queries(live.prometheus), 60, "no series for")


def test_every_recording_rule_returns_series(live):
    """The production expressions (5m / 1h windows) on the live data, and the recorded series themselves."""
    wait_until_none(lambda: empty_recording_rules(live.prometheus), 60, "no series for")


def test_every_alert_expression_runs_and_every_series_it_reads_exists(live):
    """An alert's condition is false on healthy data; what must hold is that it evaluates and that no series
    name, label or label value it reads is misspelt (each selector finds series on real llmtrace data)."""
    wait_until_none(lambda: missing_alert_selectors(live.prometheus), 60, "no series for")


def test_cache_bust_drops_the_hit_rate_and_raises_LLMCacheHitRateDrop(live):
    prometheus, traffic = live.prometheus, live.traffic
    # A cached history as long as the rule's baseline window ("1h", 20 s here): after the bust the alert then stays
    # on until that window falls under the rule's 0.2 guard, about 12 s, whatever a loaded machine delays (the
    # delay moves both ends alike). With a shorter history it could be over before it is seen.
    wait_for(lambda: traffic.check() or prometheus.query(
        f'llmtrace_usage_tokens_total{{llmtrace_token_type="input",gen_ai_request_model="{ANTHROPIC_MODEL}"}} '
        f'offset {SHORT_WINDOWS["1h"]}'), 120, "a cached history as long as the baseline window")
    # Recorded and raw series are read by polling: a scrape that timed out on a loaded machine leaves every series
    # stale until the next one, and a short window without two samples records nothing.
    wait_for(lambda: traffic.check() or hit_rate(prometheus, ANTHROPIC_MODEL) > 0.9, 60, "the cached hit rate")
    assert ANTHROPIC_MODEL not in alert_states(prometheus, "LLMCacheHitRateDrop")

    traffic.mode = BUSTED  # from now on every Anthropic call has a new system prompt: writes, no reads
    state = wait_for(lambda: traffic.check() or alert_states(prometheus, "LLMCacheHitRateDrop").get(ANTHROPIC_MODEL),
                     60, f"LLMCacheHitRateDrop for {ANTHROPIC_MODEL}")
    assert state in ("pending", "firing")
    wait_for(lambda: traffic.check() or 0 <= hit_rate(prometheus, ANTHROPIC_MODEL) < 0.2, 60,
             "the busted hit rate under 0.2")
    # The OpenAI model kept its cache: no alert, hit rate unchanged.
    assert OPENAI_MODEL not in alert_states(prometheus, "LLMCacheHitRateDrop")
    wait_for(lambda: traffic.check() or hit_rate(prometheus, OPENAI_MODEL) > 0.9, 60, "the OpenAI hit rate")

    # The misses carry their reason, for the dashboards and the runbook.
    def miss_reasons() -> set[str | None]:
        reasons = prometheus.query(f'sum by (llmtrace_cache_miss_reason) (llmtrace_requests_total'
                                   f'{{gen_ai_request_model="{ANTHROPIC_MODEL}", llmtrace_cache_outcome="write"}})')
        return {r["metric"].get("llmtrace_cache_miss_reason") for r in reasons} - {None, "first_use"}

    wait_for(miss_reasons, 60, "a miss reason on the busted calls")

    # Alertmanager gets the alert with the runbook link on the configured host, and without the base URL label
    # that Prometheus adds to everything it sends (the shipped alert_relabel_configs drops it).
    def received() -> dict[str, Any] | None:
        live.traffic.check()
        return next((a for a in live.alertmanager.alerts() if a["labels"]["alertname"] == "LLMCacheHitRateDrop"
                     and a["labels"].get("gen_ai_request_model") == ANTHROPIC_MODEL), None)

    alert = wait_for(received, 60, "LLMCacheHitRateDrop in Alertmanager", interval=0.5)
    assert alert["annotations"]["runbook_url"] == RUNBOOK_BASE["llmtrace_runbook_base_url"] + "LLMCacheHitRateDrop"
    assert "llmtrace_runbook_base_url" not in alert["labels"]
    assert ANTHROPIC_MODEL in alert["annotations"]["summary"]
