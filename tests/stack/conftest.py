"""Shared pieces of the stack tests: repository paths, the stack tools, a real Prometheus process."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = [REPO / "prometheus/rules/llmtrace-recording.yml", REPO / "prometheus/rules/llmtrace-alerts.yml"]
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
ALERTS = ["LLMCacheHitRateDrop", "LLMCacheWritesWithoutReads", "LLMCacheSavingsNegative", "LLMTimeToFirstTokenHigh",
          "LLMStreamErrorsHigh", "LLMTelemetryAbsent"]  # the contract's alert list


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text(encoding="utf-8"))


def load(path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def prometheus_targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every Prometheus query in a dashboard."""
    return [(panel["title"], t) for panel in dashboard["panels"] for t in panel["targets"]
            if t.get("datasource", panel["datasource"])["type"] == "prometheus"]


def contract_series() -> set[str]:
    """The Prometheus series names of the contract's instruments, from llmtrace/_semconv.py and the exporters'
    translation (counters get `_total`, unit `s` gets `_seconds`, histograms `_bucket/_sum/_count`)."""
    spec = importlib.util.spec_from_file_location("semconv", REPO / "llmtrace/_semconv.py")
    assert spec and spec.loader
    sc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sc)
    counters = [sc.METRIC_USAGE_TOKENS, sc.METRIC_REQUESTS, sc.METRIC_COST, sc.METRIC_CACHE_SAVINGS,
                sc.METRIC_CACHE_WRITE_PREMIUM]
    histograms = {sc.METRIC_OPERATION_DURATION: "_seconds", sc.METRIC_TIME_TO_FIRST_CHUNK: "_seconds",
                  sc.METRIC_TOKEN_USAGE: "", sc.METRIC_STREAM_CHUNKS: ""}
    names = {c.replace(".", "_") + "_total" for c in counters}
    for name, unit in histograms.items():
        names |= {name.replace(".", "_") + unit + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def recorded_series() -> set[str]:
    return {rule["record"] for path in RULE_FILES for group in load_yaml(str(path.relative_to(REPO)))["groups"]
            for rule in group["rules"] if "record" in rule}


def series_names(expr: str) -> set[str]:
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    return {n for n in re.findall(r"[A-Za-z_:][\w:]*", expr) if n.startswith(("llmtrace_", "gen_ai_")) or ":" in n}


def require_tool(name: str) -> str:
    """Path of a stack tool. Skipped when missing on a developer machine; a failure in CI (`CI` set)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (bash scripts/install-stack-tools.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def run(args: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2,
             describe: Callable[[], str] | None = None) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` (and the last value, and what `describe`
    says) at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){detail}")
        time.sleep(interval)


def wait_until_none(problems: Callable[[], list[str]], timeout: float, what: str) -> None:
    """Poll `problems` until it finds none; fail with the last ones it found at the deadline."""
    deadline = time.monotonic() + timeout
    while found := problems():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f}s still {what}:\n" + "\n".join(found))
        time.sleep(1)


# Production windows -> live-test windows (scrape and evaluation every second).
SHORT_WINDOWS = {"5m": "3s", "15m": "6s", "30m": "10s", "1h": "20s", "6h": "60s"}
SHORT_OFFSETS = {"30m": "2s"}


def shorten(expr: str, windows: dict[str, str] | None = None, offsets: dict[str, str] | None = None) -> str:
    windows, offsets = windows or SHORT_WINDOWS, offsets or SHORT_OFFSETS
    expr = re.sub(r"\[(\w+)\]", lambda m: f"[{windows[m.group(1)]}]", expr)
    return re.sub(r"offset (\w+)", lambda m: f"offset {offsets[m.group(1)]}", expr)


def short_rules(source: Path, target: Path, windows: dict[str, str] | None = None,
                offsets: dict[str, str] | None = None) -> Path:
    """A copy of a rule file with second-scale windows (in expressions and in the queries annotations run) and
    `for:`, for a Prometheus evaluating every second."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = shorten(rule["expr"], windows, offsets)
            if "for" in rule:
                rule["for"] = "1s"
            for name, text in rule.get("annotations", {}).items():
                if "query" in text:
                    rule["annotations"][name] = shorten(text, windows, offsets)
    target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


def short_rule_copies(workdir: Path, windows: dict[str, str], offsets: dict[str, str]) -> list[str]:
    """Paths of short-window copies of the rule files, in `workdir`/rules."""
    rules_dir = workdir / "rules"
    rules_dir.mkdir()
    return [str(short_rules(p, rules_dir / p.name, windows, offsets)) for p in RULE_FILES]


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this test run started: SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def build_module() -> Any:
    """dashboards/build.py, imported."""
    spec = importlib.util.spec_from_file_location("dashboards_build", REPO / "dashboards/build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Prometheus:
    """A real `prometheus` process on a free loopback port, with a small client for its HTTP API."""

    def __init__(self, workdir: Path, config: dict[str, Any], args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [require_tool("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             "--rules.alert.resend-delay=1s", *args],  # alerts reach a just-started Alertmanager within seconds
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 15) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited with {self.proc.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_for(ready, timeout, "prometheus /-/ready")

    def logs(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8")[-2000:]

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a query Prometheus rejects
            body = json.load(e)
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, **({} if at is None else {"time": repr(at)}))
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return data["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()


# Dashboard variables, as Grafana would fill them in with "All" selected.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$provider": ".*", "$model": ".*"}


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def selectors(expr: str) -> list[str]:
    """The series selectors of a PromQL expression (metric name and label matchers, without offsets)."""
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    found = re.findall(r"(?<![\w:])((?:llmtrace_|gen_ai_)\w+|\w+:[\w:]+)(\{[^}]*\})?", expr)
    return sorted({name + (matchers or "") for name, matchers in found})


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load_yaml(str(path.relative_to(REPO)))["groups"]:
            yield from group["rules"]


def empty_dashboard_queries(prometheus: Prometheus) -> list[str]:
    """Every dashboard query, alert annotation and variable run against `prometheus`: those that found nothing."""
    empty = []
    for path in DASHBOARDS:
        dashboard = load(path)
        for title, target in prometheus_targets(dashboard):
            if not prometheus.query(substitute(target["expr"])):
                empty.append(f"{path.name}: {title}: {target['expr']}")
        for annotation in dashboard["annotations"]["list"]:
            if "expr" in annotation:  # alert annotations: valid PromQL (no alert need be firing)
                prometheus.query(substitute(annotation["expr"]))
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            values = prometheus.api(f"label/{match.group(2)}/values", **{"match[]": substitute(match.group(1))})
            if not values:
                empty.append(f"{path.name}: variable {variable['name']}")
    return empty


def empty_recording_rules(prometheus: Prometheus) -> list[str]:
    """Recording rules whose production expression, or recorded series, finds nothing on `prometheus`."""
    return [rule["record"] for rule in rules()
            if "record" in rule and not (prometheus.query(rule["expr"]) and prometheus.query(rule["record"]))]


def missing_alert_selectors(prometheus: Prometheus) -> list[str]:
    """Every alert expression evaluates; the selectors it reads that find no series."""
    missing = []
    for rule in rules():
        if "alert" in rule:
            prometheus.query(rule["expr"])
            missing += [f"{rule['alert']}: {s}" for s in selectors(rule["expr"]) if not prometheus.query(s)]
    return missing


@pytest.fixture(scope="module")
def prometheus_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus processes; every one is terminated at the end of the module, whatever happened."""
    started: list[Prometheus] = []

    def start(scrape_target: str | None, rule_files: list[Path], *, config: dict[str, Any] | None = None,
              args: tuple[str, ...] = (), external_labels: dict[str, str] | None = None,
              alerting: dict[str, Any] | None = None) -> Prometheus:
        """A Prometheus scraping `scrape_target` every second with `rule_files` (and `external_labels`, sending
        alerts as `alerting` says), or running `config`."""
        if config is None:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s",
                           "external_labels": external_labels or {}},
                "rule_files": [str(p) for p in rule_files],
                "scrape_configs": [{"job_name": "llmtrace-live-test",
                                    "static_configs": [{"targets": [scrape_target]}]}] if scrape_target else [],
            }
            if alerting:
                config["alerting"] = alerting
        prom = Prometheus(tmp_path_factory.mktemp("prometheus"), config, args)
        started.append(prom)
        prom.wait_ready()
        return prom

    try:
        yield start
    finally:
        for prom in started:
            prom.stop()


@pytest.fixture(scope="session")
def otelcol() -> str:
    """The Collector binary built from collector-config/builder-manifest.yaml (scripts/build-collector.sh)."""
    from tests.stack.services import build_collector

    return build_collector()
