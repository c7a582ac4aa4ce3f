"""The published distribution, as a user gets it: sdist and wheel built with `build`, the wheel installed
(not editable) in a fresh venv, its package data, CLI and OpenTelemetry entry point working from there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "llmtrace")
DATA = ("llmtrace/data/prices.json", "llmtrace/data/cache_minimums.json", "llmtrace/py.typed")
TIMEOUT = 900  # a cold pip cache on a busy machine; these only guard against a hang


def sh(*cmd: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=cwd)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(venv bin dir, wheel, sdist): built from a copy of the sources, so the checkout is left untouched."""
    root = tmp_path_factory.mktemp("dist")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                         if (REPO / name).is_dir() else {}))
    # `build` makes the sdist, then the wheel from the unpacked sdist: a file missing from it fails here.
    sh(sys.executable, "-m", "build", "--outdir", root / "out", src)
    [wheel] = (root / "out").glob("*.whl")
    [sdist] = (root / "out").glob("*.tar.gz")
    sh(sys.executable, "-m", "venv", root / "venv")
    bin_dir = root / "venv" / "bin"
    sh(bin_dir / "python", "-m", "pip", "install", "-q", "-c", REPO / "ci/constraints.txt", wheel)
    return bin_dir, wheel, sdist


def run_installed(bin_dir: Path, *cmd: str | Path) -> str:
    """Run from the venv's folder, so that nothing of this checkout is on `sys.path` (`python -c` adds the cwd)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "PYTHON"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens: exports fail quietly
    return sh(*cmd, env=env, cwd=bin_dir.parent)


def test_distribution_is_llmtrace_otel(installed):
    bin_dir, wheel, sdist = installed
    assert wheel.name.startswith("llmtrace_otel-") and sdist.name.startswith("llmtrace_otel-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert "Name: llmtrace-otel\n" in zf.read(metadata).decode()
    assert set(DATA) <= names
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    assert set(DATA) <= members
    out = sh(bin_dir / "python", "-m", "pip", "show", "llmtrace-otel")
    assert "Location:" in out and "Editable project location" not in out


def test_cli_runs_from_the_wheel(installed):
    bin_dir = installed[0]
    helped = run_installed(bin_dir, bin_dir / "llmtrace", "--help")
    assert "demo" in helped and "emulator" in helped and "cost" in helped
    # Priced from the bundled table (package data): 432,000 requests x 5,000 tokens at Sonnet's $3/M.
    figures = json.loads(run_installed(bin_dir, bin_dir / "llmtrace", "cost", "--model", "claude-sonnet-4-5", "--prompt-tokens", "5000",
                            "--requests-per-minute", "10", "--json"))
    assert figures["uncached"] == pytest.approx(6480.0)


PROBE = """
import importlib.metadata as md, json, sys
import llmtrace
from llmtrace._pricing import PriceTable, min_cacheable_tokens
{setup}
[entry] = [e for e in md.entry_points(group="opentelemetry_instrumentor") if e.name == "llmtrace"]
print(json.dumps({{
    "file": llmtrace.__file__,
    "entry_point": entry.value,
    "loads": entry.load() is llmtrace.LLMTraceInstrumentor,
    "instrumented": llmtrace.LLMTraceInstrumentor().is_instrumented_by_opentelemetry,
    "price": PriceTable.load().lookup("claude-haiku-4-5") is not None,
    "minimum": min_cacheable_tokens("claude-haiku-4-5", "anthropic"),
}}))
"""


@pytest.mark.parametrize("how", ["instrument()", "opentelemetry-instrument"])
def test_instrumentation_from_the_wheel(installed, how):
    bin_dir = installed[0]
    if how == "instrument()":
        cmd = [bin_dir / "python", "-c", PROBE.format(setup="llmtrace.instrument()")]
    else:  # zero code change: the entry point is found and applied by OpenTelemetry's own launcher
        cmd = [bin_dir / "opentelemetry-instrument", bin_dir / "python", "-c", PROBE.format(setup="")]
    found = json.loads(run_installed(bin_dir, *cmd).strip().splitlines()[-1])
    assert found["file"].startswith(str(bin_dir.parent))  # the installed copy, not this checkout
    assert found["entry_point"] == "llmtrace._instrument:LLMTraceInstrumentor" and found["loads"]
    assert found["instrumented"] is True
    assert found["price"] is True
    assert found["minimum"] == 4096
