"""The real parts of the collector tests, each on free loopback ports: the Collector built from
collector-config/builder-manifest.yaml, Alertmanager, an instrumented app process, and two receivers the test reads
(a webhook for Alertmanager's notifications, an OTLP/gRPC trace endpoint standing in for the trace store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack.conftest import REPO, free_port, require_tool, run, wait_for

BUILD_SCRIPT = REPO / "scripts/build-collector.sh"
APP = Path(__file__).with_name("instrumented_app.py")


def build_collector() -> str:
    """The Collector binary: $LLMTRACE_OTELCOL (`make test` builds it first), else what the build script prints
    (instant once built). Skipped without Go on a developer machine; a failure in CI."""
    binary = os.environ.get("LLMTRACE_OTELCOL")
    if binary:
        assert os.access(binary, os.X_OK), f"LLMTRACE_OTELCOL={binary} is not an executable"
        return binary
    require_tool("go")
    done = run(["bash", str(BUILD_SCRIPT)], timeout=3600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """(series name, labels, value) of every sample a Prometheus endpoint serves."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(url)
    assert status == 200, (url, status)
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(body) for s in family.samples]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class Process:
    """A child process with its output in a log file, stopped (terminate, then kill) by `stop()`."""

    def __init__(self, args: list[str], log: Path, **kwargs: Any) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, **kwargs)

    def logs(self, tail: int = 4000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"{what} exited with {self.proc.returncode}:\n{self.logs()}")

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """What the Collector does with two --config files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = deep_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return merged


def leaves(doc: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(doc, dict):
        return {k: v for key, value in doc.items() for k, v in leaves(value, (*prefix, str(key))).items()}
    return {prefix: doc}


class Collector(Process):
    """The built Collector running a shipped config as it is, plus a generated overlay (a second --config) that
    changes addresses only: `overrides` for the config's own components, and the health check and the
    Collector's own metrics on free ports."""

    def __init__(self, binary: str, config: Path, overrides: dict[str, Any], workdir: Path) -> None:
        self.health_port = free_port()
        self.overlay = deep_merge(overrides, {
            "extensions": {"health_check": {"endpoint": f"127.0.0.1:{self.health_port}"}},
            "service": {"telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                "host": "127.0.0.1", "port": free_port()}}}}]}}},
        })
        shipped = yaml.safe_load(config.read_text(encoding="utf-8"))
        for path in leaves(self.overlay):  # an overlay only moves what the shipped file already has somewhere
            assert path[-1] in ("endpoint", "hostname", "port", "host") or path[:3] == ("service", "telemetry",
                                                                                        "metrics"), path
            if path[0] != "service":
                assert path in leaves(shipped), f"{config.name} has no {'.'.join(path)}"
        overlay_file = workdir / f"{config.stem}-addresses.yaml"
        overlay_file.write_text(yaml.safe_dump(self.overlay), encoding="utf-8")
        super().__init__([binary, f"--config={config}", f"--config={overlay_file}"], workdir / f"{config.stem}.log")

    def wait_ready(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            self.check_alive("the collector")
            return http_get(f"http://127.0.0.1:{self.health_port}/", timeout=1)[0] == 200

        wait_for(healthy, timeout, "the collector's health check")


class BundledCollector(Collector):
    """collector-config/collector.yaml, receiving OTLP and serving the Prometheus endpoint on free ports, sending
    traces to `traces_endpoint` (in the place of Tempo)."""

    def __init__(self, binary: str, workdir: Path, traces_endpoint: str) -> None:
        grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
        self.otlp_http = f"http://127.0.0.1:{http_port}"
        self.scrape_target = f"127.0.0.1:{metrics_port}"
        super().__init__(binary, REPO / "collector-config/collector.yaml", {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
                                                 "http": {"endpoint": f"127.0.0.1:{http_port}"}}}},
            "exporters": {"prometheus": {"endpoint": self.scrape_target}, "otlp/tempo": {"endpoint": traces_endpoint}},
        }, workdir)


def prometheus_config(collector: str, rule_files: list[str], alertmanager: str | None = None) -> dict[str, Any]:
    """prometheus/prometheus.yml's `otel-collector` job as shipped, aimed at the test's Collector; every second."""
    shipped = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    [job] = [j for j in shipped["scrape_configs"] if j["job_name"] == "otel-collector"]
    [targets] = job["static_configs"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [{**job, "static_configs": [{**targets, "targets": [collector]}]}],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


class Alertmanager(Process):
    """A real Alertmanager with the shipped alertmanager.yml, its one receiver pointed at `webhook_url`."""

    def __init__(self, workdir: Path, webhook_url: str) -> None:
        shipped = yaml.safe_load((REPO / "alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
        config = json.loads(json.dumps(shipped))
        [receiver] = config["receivers"]
        [webhook] = receiver["webhook_configs"]
        webhook["url"] = webhook_url
        assert {k: v for k, v in leaves(config).items() if v != leaves(shipped).get(k)} == {
            ("receivers",): config["receivers"]}, "only the receiver's address differs from the shipped file"
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([require_tool("prometheus-alertmanager"), f"--config.file={path}",
                          f"--storage.path={workdir / 'alertmanager-data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}",
                          "--cluster.listen-address=", "--log.level=warn"], workdir / "alertmanager.log")

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            self.check_alive("alertmanager")
            return http_get(f"{self.url}/-/ready", timeout=1)[0] == 200

        wait_for(ready, timeout, "alertmanager /-/ready")


class Webhook(ThreadingHTTPServer):
    """Collects the JSON bodies Alertmanager posts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.notifications: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, name="alert-webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.notifications.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class TraceSink:
    """An OTLP/gRPC trace endpoint on loopback (the trace store's address in the tests): keeps every span as
    (resource attributes, span name, span attributes)."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        sink = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method's name
                with sink._lock:
                    for rs in request.resource_spans:
                        resource = {a.key: any_value(a.value) for a in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            sink.spans.extend((resource, s.name, {a.key: any_value(a.value) for a in s.attributes})
                                              for s in ss.spans)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.spans: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self, where: Callable[[dict[str, Any], str, dict[str, Any]], bool]) -> list[Any]:
        with self._lock:
            return [s for s in self.spans if where(*s)]

    def stop(self) -> None:
        self.server.stop(grace=None)


def fast_emulator() -> Any:
    """The provider emulator on a free loopback port, answering at once (a context manager)."""
    from llmtrace.emulator import EmulatorConfig, run_emulator

    return run_emulator(EmulatorConfig(time_to_first_token=0.01, seconds_per_chunk=0.001))


class InstrumentedApp:
    """tests/stack/instrumented_app.py in its own Python process, sending OTLP to `otlp_endpoint` (HTTP)."""

    def __init__(self, workdir: Path, emulator_url: str, otlp_endpoint: str, service: str, instance: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_"))}
        env.update(LLMTRACE_TEST_EMULATOR=emulator_url, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
                   OTEL_SERVICE_NAME=service, OTEL_RESOURCE_ATTRIBUTES=f"service.instance.id={instance}",
                   OTEL_METRIC_EXPORT_INTERVAL="500", OTEL_BSP_SCHEDULE_DELAY="500")
        self.instance = instance
        self._stderr = (workdir / f"app-{instance}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, str(APP)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, env=env, cwd=REPO)
        self.totals: dict[str, dict[str, int]] = defaultdict(dict)

    def command(self, line: str, timeout: float = 120) -> dict[str, Any]:
        """Send one command and wait for its answer (a JSON line)."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin and stdout
        stdin.write(line + "\n")
        stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not answer or not answer[0]:
            pytest.fail(f"the app ({self.instance}) did not answer {line!r}:\n{self.logs()}")
        reply = json.loads(answer[0])
        if "totals" in reply:
            self.totals = reply["totals"]
        return reply

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"the app ({self.instance}) exited with {self.proc.returncode}:\n{self.logs()}")

    def logs(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return Path(self._stderr.name).read_text(encoding="utf-8", errors="replace")[-4000:]

    def finish(self, timeout: float = 60) -> None:
        """End of input: the app stops, its exporters send what is left, it exits."""
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        stop(self.proc)
        self._stderr.close()
