"""The Collector the stack runs, built from its Go modules by scripts/build-collector.sh: its manifest follows the
image docker-compose.yml pins, it has exactly the components the three configs use, and it accepts the configs."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.stack.conftest import REPO, load_yaml, require_tool, run

MANIFEST = "collector-config/builder-manifest.yaml"
CONFIGS = ["collector-config/collector.yaml", "collector-config/agent.yaml", "collector-config/gateway.yaml"]
KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
CORE = "go.opentelemetry.io/collector/"
CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib/"


def manifest_modules() -> dict[str, str]:
    """module -> version of every `gomod:` line."""
    manifest = load_yaml(MANIFEST)
    entries = [m["gomod"] for kind in (*KINDS, "providers") for m in manifest.get(kind) or []]
    return dict(entry.split() for entry in entries)


def compose_collector_version() -> str:
    image = load_yaml("docker-compose.yml")["services"]["otel-collector"]["image"]
    name, _, tag = image.rpartition(":")
    assert name == "otel/opentelemetry-collector-contrib", image
    return tag


def test_manifest_follows_the_image_docker_compose_pins():
    """The image of release X.Y.Z holds core X.Y.Z components and contrib components of the same X.Y line (a
    contrib patch release goes into the same image: 0.120.0 carries contrib 0.120.1)."""
    release = compose_collector_version()
    line = release.rsplit(".", 1)[0]
    modules = manifest_modules()
    core = {m: v for m, v in modules.items() if m.startswith(CORE) and v.startswith("v0.")}
    contrib = {m: v for m, v in modules.items() if m.startswith(CONTRIB)}
    stable = {m: v for m, v in modules.items() if m.startswith(CORE) and not v.startswith("v0.")}
    assert core and contrib and stable
    assert set(core.values()) == {f"v{release}"}, core
    assert all(re.fullmatch(rf"v{re.escape(line)}\.\d+", v) for v in contrib.values()), contrib
    assert len(set(contrib.values())) == 1, contrib
    assert load_yaml(MANIFEST)["dist"]["version"] == contrib[next(iter(contrib))].lstrip("v")
    assert set(modules) == set(core) | set(contrib) | set(stable), "only Collector modules"


def test_binary_is_built_from_the_manifest_versions(otelcol):
    """What Go resolved is what the manifest says: no module was raised to another release on the way (the stable
    1.x modules, such as the confmap providers, must be the ones the core release depends on)."""
    built = run([require_tool("go"), "version", "-m", otelcol]).stdout
    deps = dict(re.findall(r"^\s+dep\s+(\S+)\s+(\S+)", built, re.M))
    for module, version in manifest_modules().items():
        assert deps.get(module) == version, (module, version, deps.get(module))
    release = compose_collector_version()
    assert deps["go.opentelemetry.io/collector/otelcol"] == f"v{release}"
    providers = {v for m, v in manifest_modules().items() if "/confmap/provider/" in m}
    assert {deps["go.opentelemetry.io/collector/confmap"]} == providers
    version = run([otelcol, "--version"]).stdout
    assert version.split()[-1] == load_yaml(MANIFEST)["dist"]["version"], version


def used_components() -> dict[str, set[str]]:
    """Component types (`otlp` of `otlp/tempo`) each kind of the three configs defines."""
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for path in CONFIGS:
        config = load_yaml(path)
        for kind in KINDS:
            used[kind] |= {name.split("/")[0] for name in config.get(kind) or {}}
    return used


def test_binary_has_exactly_the_components_the_configs_use(otelcol):
    components = yaml.safe_load(run([otelcol, "components"]).stdout)
    built = {kind: {c["name"] for c in components.get(kind) or []} for kind in KINDS}
    assert built == used_components()
    modules = {c["module"].split()[0]: c["module"].split()[1] for kind in KINDS for c in components.get(kind) or []}
    assert modules == {m: v for m, v in manifest_modules().items() if "/confmap/" not in m}


@pytest.mark.parametrize("path", CONFIGS)
def test_otelcol_validate_accepts_the_config(otelcol, path):
    result = run([otelcol, "validate", f"--config={REPO / path}"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("change", [
    ("    routing_key: traceID", "    routing_key: traceID\n    unknown_setting: 1"),  # a misspelt key
    ('        port: "4317"', "        port: 4317"),  # the resolver's port must be a string
    ("      exporters: [otlp/gateway]", "      exporters: [otlp/missing]"),  # an undefined component
])
def test_otelcol_validate_rejects_a_broken_config(otelcol, tmp_path, change):
    text = (REPO / "collector-config/agent.yaml").read_text(encoding="utf-8")
    assert change[0] in text
    broken = tmp_path / "agent.yaml"
    broken.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    result = run([otelcol, "validate", f"--config={broken}"])
    assert result.returncode != 0, change


def test_build_script_reuses_the_binary_it_built(otelcol):
    """A second run finds the binary for this manifest in the cache and prints its path, the only line on stdout."""
    result = run(["bash", "scripts/build-collector.sh"], timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == otelcol + "\n"
    assert "cached" in result.stderr


def test_build_script_is_valid_bash():
    result = run(["bash", "-n", "scripts/build-collector.sh"])
    assert result.returncode == 0, result.stderr
