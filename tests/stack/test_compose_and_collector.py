"""docker-compose.yml, the collector configs and the wiring between the stack's parts, checked statically
(no Docker engine here): the compose schema through docker-compose itself, and every pipeline, port and address
cross-checked between the files and docs/stack.md. The collector itself runs in test_collector_*.py."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.stack.conftest import REPO, load_yaml, require_tool, run

COLLECTOR_CONFIGS = ["collector-config/collector.yaml", "collector-config/agent.yaml",
                     "collector-config/gateway.yaml"]
# Standard components of the collector-contrib distribution that these configs may use.
CONTRIB = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "resourcedetection"},
    "exporters": {"otlp", "otlphttp", "prometheus", "prometheusremotewrite", "loadbalancing", "debug"},
    "extensions": {"health_check"},
}
PORTS = {"otel-collector": [4317, 4318, 8889, 13133], "tempo": [3200], "prometheus": [9090],
         "alertmanager": [9093], "grafana": [3000]}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml("docker-compose.yml")


def published(service: dict) -> dict[int, str]:
    """container port -> 'host_ip:host_port' of a service's `ports` entries ('127.0.0.1:4317:4317')."""
    out = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container = str(entry).split(":")
        out[int(container)] = f"{host_ip}:{host_port}"
    return out


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def compose_env(**extra: str) -> dict[str, str]:
    """The test's environment without any GRAFANA_* variable a developer may have set, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GRAFANA_")}, **extra}


def test_docker_compose_config_is_valid(tmp_path):
    empty_env = tmp_path / "empty.env"  # not the developer's .env
    empty_env.write_text("")
    result = run([require_tool("docker-compose"), "--env-file", str(empty_env), "-f", "docker-compose.yml",
                  "config", "-q"], env=compose_env(GRAFANA_ADMIN_PASSWORD="test-only"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_refuses_to_start_without_a_grafana_password(tmp_path):
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = run([require_tool("docker-compose"), "--env-file", str(empty_env), "-f", "docker-compose.yml",
                  "config", "-q"], env=compose_env())
    assert result.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_grafana_admin_password_comes_from_the_environment_only(compose):
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD}"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=$", example, re.M), "the example carries no password"


def test_every_port_is_published_on_loopback_only(compose):
    for name, expected in PORTS.items():
        ports = published(compose["services"][name])
        assert sorted(ports) == expected, name
        for container, host in ports.items():
            assert host == f"127.0.0.1:{container}", (name, host)


def test_images_are_pinned_with_health_checks_and_named_volumes(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), (name, service["image"])
        if name != "otel-collector":  # distroless image: probed on 127.0.0.1:13133 from the host instead
            assert "healthcheck" in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)


def test_mounted_files_match_what_the_services_read(compose):
    services = compose["services"]
    collector_args = " ".join(services["otel-collector"]["command"])
    assert "--config=/etc/otelcol-contrib/collector.yaml" in collector_args
    assert "./collector-config/collector.yaml:/etc/otelcol-contrib/collector.yaml:ro" in services["otel-collector"]["volumes"]
    assert "./collector-config/tempo.yaml:/etc/tempo/tempo.yaml:ro" in services["tempo"]["volumes"]
    assert "-config.file=/etc/tempo/tempo.yaml" in services["tempo"]["command"]
    prom = services["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prom["volumes"]
    assert "--enable-feature=exemplar-storage" in prom["command"]
    assert "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in services["alertmanager"]["volumes"]
    # Grafana: provisioning, and the dashboards where the file provider looks for them.
    grafana = services["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    [provider] = load_yaml("grafana/provisioning/dashboards/llmtrace.yml")["providers"]
    assert f"./dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (REPO / "dashboards" / home.rsplit("/", 1)[1]).exists()


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS)
def test_collector_pipelines_are_wired_with_standard_components(path):
    config = load_yaml(path)
    service = config["service"]
    used: dict[str, set[str]] = {kind: set() for kind in CONTRIB}
    for name, pipeline in service["pipelines"].items():
        assert name.split("/")[0] in {"metrics", "traces", "logs"}, name
        assert pipeline["receivers"] and pipeline["exporters"], name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in (config.get(kind) or {}), f"{path}: {name} uses undefined {kind[:-1]} {component}"
                used[kind].add(component)
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter" and processors[-1] == "batch", (path, name, processors)
    for extension in service.get("extensions", []):
        assert extension in config["extensions"], extension
        used["extensions"].add(extension)
    for kind, allowed in CONTRIB.items():
        defined = set(config.get(kind) or {})
        assert defined == used[kind], f"{path}: {kind} defined but unused: {defined - used[kind]}"
        for component in defined:
            assert component.split("/")[0] in allowed, f"{path}: {component} is not a standard contrib component"


def test_collector_exports_the_contract_series_names():
    """Unit suffixes and `_total` on (add_metric_suffixes, default on), resource attributes off the series
    (they go to target_info; job/instance come from service.name/service.instance.id)."""
    exporters = {"collector": load_yaml("collector-config/collector.yaml")["exporters"]["prometheus"],
                 "gateway": load_yaml("collector-config/gateway.yaml")["exporters"]["prometheusremotewrite"]}
    for name, exporter in exporters.items():
        assert exporter.get("add_metric_suffixes", True) is True, name
        assert not exporter.get("resource_to_telemetry_conversion", {}).get("enabled", False), name
        assert "namespace" not in exporter, name  # a namespace would prefix every series name
        assert "translation_strategy" not in exporter, name
    assert exporters["collector"]["enable_open_metrics"] is True  # exemplars need OpenMetrics


def test_ports_agree_between_collector_prometheus_tempo_grafana_and_compose(compose):
    collector = load_yaml("collector-config/collector.yaml")
    otlp = collector["receivers"]["otlp"]["protocols"]
    assert port_of(otlp["grpc"]["endpoint"]) == 4317 and port_of(otlp["http"]["endpoint"]) == 4318
    assert otlp["grpc"]["endpoint"].startswith("0.0.0.0:"), "reachable from the host through the published port"
    scrape_port = port_of(collector["exporters"]["prometheus"]["endpoint"])
    health_port = port_of(collector["extensions"]["health_check"]["endpoint"])
    assert {4317, 4318, scrape_port, health_port} == set(published(compose["services"]["otel-collector"]))

    prometheus = load_yaml("prometheus/prometheus.yml")
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets["otel-collector"] == [f"otel-collector:{scrape_port}"]
    llmtrace_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "otel-collector")
    assert llmtrace_job["honor_labels"] is True, "keeps the job/instance labels of each app"
    [alertmanagers] = prometheus["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]

    tempo = load_yaml("collector-config/tempo.yaml")
    tempo_grpc = port_of(tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    assert collector["exporters"]["otlp/tempo"]["endpoint"] == f"tempo:{tempo_grpc}"
    assert tempo["server"]["http_listen_port"] == 3200

    datasources = {d["uid"]: d for d in load_yaml("grafana/provisioning/datasources/llmtrace.yml")["datasources"]}
    assert datasources["prometheus"]["url"] == "http://prometheus:9090"
    assert datasources["tempo"]["url"] == "http://tempo:3200"
    assert datasources["alertmanager"]["url"] == "http://alertmanager:9093"
    for host in ("otel-collector", "tempo", "prometheus", "alertmanager", "grafana"):
        assert host in compose["services"]


def test_exemplars_link_metrics_to_traces():
    datasources = {d["uid"]: d for d in load_yaml("grafana/provisioning/datasources/llmtrace.yml")["datasources"]}
    [destination] = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert destination == {"name": "trace_id", "datasourceUid": "tempo", "urlDisplayLabel": "Open trace in Tempo"}
    assert datasources["tempo"]["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"


def test_docs_name_the_ports_and_the_endpoint():
    docs = (REPO / "docs/stack.md").read_text(encoding="utf-8")
    for ports in PORTS.values():
        for port in ports:
            assert f"127.0.0.1:{port}" in docs or f"localhost:{port}" in docs, port
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318" in docs
    assert "llmtrace demo --otlp-endpoint http://localhost:4318" in docs
    for name in ("gateway.yaml", "agent.yaml", "prometheusremotewrite", "loadbalancing"):
        assert name in docs, name


def test_install_script_is_valid_bash():
    result = run(["bash", "-n", "scripts/install-stack-tools.sh"])
    assert result.returncode == 0, result.stderr


def test_install_script_does_nothing_when_the_tools_are_there():
    for name in ("prometheus", "promtool", "amtool", "docker-compose"):
        require_tool(name)
    result = run(["bash", "scripts/install-stack-tools.sh"], stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "stack tools present" in result.stdout
