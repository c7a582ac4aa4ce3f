"""Every script in examples/ runs against the emulator, unmodified, and its telemetry reaches an OTLP
endpoint (a loopback OTLP/HTTP receiver standing in for the collector)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.otlp import Receiver, receiver  # noqa: F401  (a fixture)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, receiver: Receiver) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "ANTHROPIC", "OPENAI"))}
    env.update(LLMTRACE_EMULATOR="1", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
                          timeout=120, cwd=EXAMPLES)
    assert done.returncode == 0, done.stderr
    assert "could not export" not in done.stderr, done.stderr  # the endpoint took everything
    assert {"gen_ai.client.operation.duration", "llmtrace.usage.tokens"} <= receiver.metric_names
    return done.stdout


def outcomes(receiver: Receiver) -> list[tuple[str, str | None, str | None]]:
    return [(name, a.get("llmtrace.stream.outcome"), a.get("llmtrace.cache.outcome")) for name, a in receiver.spans]


def test_every_example_is_tested() -> None:
    tested = {"quickstart.py", "openai_streaming.py", "ollama_streaming.py", "anthropic_prompt_caching.py",
              "restart_on_disconnect.py"}
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == tested


def test_quickstart(receiver: Receiver) -> None:
    out = run_example("quickstart.py", receiver)
    assert out.startswith("claude: ") and "\ngpt: " in out
    assert sorted(n for n, *_ in outcomes(receiver)) == ["chat claude-haiku-4-5", "chat gpt-5-mini"]
    assert all(outcome == "completed" for _, outcome, _ in outcomes(receiver))


def test_openai_streaming(receiver: Receiver) -> None:
    out = run_example("openai_streaming.py", receiver)
    assert "prompt tokens" in out
    spans = [a for _, a in receiver.spans]
    assert len(spans) == 2 and all(a["llmtrace.usage.source"] == "provider" for a in spans[:1])
    assert all(a["gen_ai.response.time_to_first_chunk"] > 0 for a in spans)


def test_ollama_streaming(receiver: Receiver) -> None:
    run_example("ollama_streaming.py", receiver)
    [(name, attributes)] = receiver.spans
    assert name == "chat llama3.2" and attributes["gen_ai.provider.name"] == "openai"
    assert "llmtrace.cost.usd" not in attributes  # an unpriced local model: no guessed cost


def test_anthropic_prompt_caching(receiver: Receiver) -> None:
    out = run_example("anthropic_prompt_caching.py", receiver)
    assert len(out.splitlines()) == 3
    assert [cache for *_, cache in outcomes(receiver)] == ["write", "hit", "hit"]
    savings = [a["llmtrace.cache.savings.usd"] for _, a in receiver.spans]
    assert savings[0] < 0 < savings[1]  # the write premium, then the read discount


def test_restart_on_disconnect(receiver: Receiver) -> None:
    out = run_example("restart_on_disconnect.py", receiver)
    assert "attempt 1 broke" in out
    [broken, retried] = receiver.spans
    assert broken[1]["llmtrace.stream.outcome"] == "error" and broken[1]["error.type"] == "RemoteProtocolError"
    assert retried[1]["llmtrace.stream.outcome"] == "completed"


CACHE_REGRESSION = EXAMPLES / "cache_regression"


def run_cache_test(name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMTRACE_", "ANTHROPIC", "OPENAI"))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q", name],
                          capture_output=True, text=True, env=env, timeout=300, cwd=CACHE_REGRESSION)


def test_cache_regression_example_passes() -> None:
    done = run_cache_test("test_support.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_cache_regression_example_catches_the_timestamp() -> None:
    done = run_cache_test("test_support_with_timestamp.py")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    match = re.search(r"differs from call 1's in system block 0 at character (\d+), so it cannot read", out)
    assert match, out
    assert len("Current time: 2026-") <= int(match.group(1)) < len("Current time: 2026-12-02T18:59:14.606774"), out
    assert re.search(r'call 1: "Current time: [0-9T:.+-]+\\nYou are Acme', out), out  # an excerpt from each side
    assert re.search(r'call 2: "Current time: [0-9T:.+-]+\\nYou are Acme', out), out
    assert "llmtrace says: system_changed at system block 0, characters 0–63" in out
    assert "1 failed" in out
