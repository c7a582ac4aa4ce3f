"""Instructions per plain Anthropic call with a 5,000-token system prompt, counted by callgrind (repeatable on a
noisy machine, unlike times).

    python benchmarks/plain_instructions.py                      # llmtrace and bare, the three prompt kinds
    PYTHONPATH=/path/to/other/checkout python benchmarks/plain_instructions.py   # another llmtrace, same counts

Each figure is the difference between runs of 100 and 400 calls in one process, divided by 300: start-up and
imports cancel out. The collector is off during the counted calls, so that collections do not land at different
calls in different variants; the hash seed is fixed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

KINDS = ("cached", "new_prompt", "uncached")


def calls(variant: str, kind: str, n: int) -> None:
    import gc

    import anthropic
    import httpx2
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import llmtrace

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    if variant == "llmtrace":
        llmtrace.instrument(tracer_provider=tracer_provider,
                            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    system = " ".join(f"Rule {n}: quote the plan's limit from section {n % 17}." for n in range(420))
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5000, "output_tokens": 20}
    body = json.dumps({"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                       "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
                       "usage": usage}).encode()
    http = httpx2.Client(transport=httpx2.MockTransport(
        lambda r: httpx2.Response(200, headers={"content-type": "application/json"}, content=body)))
    client = anthropic.Anthropic(api_key="bench", base_url="http://bench.local", http_client=http, max_retries=0)
    marker = {"type": "ephemeral"}

    def blocks(i: int) -> list[dict[str, object]]:
        if kind == "cached":
            return [{"type": "text", "text": system, "cache_control": marker}]
        if kind == "new_prompt":
            return [{"type": "text", "text": f"Now: call {i}.\n" + system, "cache_control": marker}]
        return [{"type": "text", "text": system}]

    for i in range(60 + n):
        if i == 60:
            gc.collect()
            gc.disable()
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, system=blocks(i),
                               messages=[{"role": "user", "content": "hi"}])
        if i % 50 == 0:
            exporter.clear()


def counted(variant: str, kind: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable,
                               __file__, "--calls", variant, kind, str(n)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    if sys.argv[1:2] == ["--calls"]:
        calls(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    print("| variant | " + " | ".join(KINDS) + " |\n|---|" + "---|" * len(KINDS))
    for variant in ("bare", "llmtrace"):
        per_call = [(counted(variant, kind, 400) - counted(variant, kind, 100)) // 300 for kind in KINDS]
        print(f"| {variant} | " + " | ".join(f"{n:,}" for n in per_call) + " |", flush=True)


if __name__ == "__main__":
    main()
