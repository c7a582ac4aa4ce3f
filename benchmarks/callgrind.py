"""CPU instructions llmtrace adds per call and per chunk, counted by `valgrind --tool=callgrind`.

    python benchmarks/callgrind.py [--calls 10] [--json benchmarks/callgrind.json]

Instruction counts do not depend on what else the machine is doing, so they compare runs made on a
shared, noisy host, and before/after a change. Each variant (bare SDKs, llmtrace) runs in one process
under callgrind; every measured batch of calls runs inside `operator.call`, the only place callgrind
counts (`--toggle-collect`), and callgrind dumps the count when it returns (`--dump-after`), so
interpreter start-up and imports are never counted. A batch is `--calls` streams of one call style after
warm-up calls, with the garbage collector frozen and off. Per call style, a batch at 10 and one at 110
chunks give instructions per chunk (the slope) and per call (the intercept); llmtrace minus bare is its
overhead. Against the SDK's 0.16-1.6 million instructions per chunk, a few thousand of llmtrace's are
within the run-to-run wobble of the SDK's own (its dictionaries and free lists), so the per-chunk figure
that counts is the engine's alone (run.py's `engine_batches`): the same events, parsed once by the SDK, read
through the SDK's own stream object, bare and under llmtrace's proxy, engine and reader. The same process also counts the OpenTelemetry SDK's own floor for one call (one span with a
streamed call's attributes and five histogram records) and a plain Anthropic call with a 5,000-token
cached system prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (the timing benchmark's SSE bodies, clients and call styles)

SIZES = (10, 110)
WARMUP = 1
VARIANTS = ("bare", "llmtrace")


def batches(variant: str, calls: int) -> list[str]:
    """Run every measured batch, each inside `operator.call`; returns their labels in order."""
    tracer_provider, meter_provider, clear = bench.telemetry("memory")
    if variant == "llmtrace":
        bench.instrument(variant, tracer_provider, meter_provider)
    labels: list[str] = []

    def measured(label: str, batch: Callable[[], None]) -> None:
        for _ in range(WARMUP):
            batch()
        clear()
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            operator.call(batch)  # counted: see the module docstring
        finally:
            gc.enable()
            gc.unfreeze()
        clear()
        labels.append(label)

    frames: list[list[bytes]] = [[]]
    for sdk, style, mode in bench.CASES:
        is_async = mode == "async"
        open_call = bench.opener(sdk, style, bench.client(sdk, is_async, lambda: frames[0]))
        loop = asyncio.new_event_loop()
        for n in SIZES:
            frames[0] = bench.bodies(sdk, n)
            if is_async:
                async def many(o: Callable[[], Any] = open_call) -> None:
                    for _ in range(calls):
                        await bench.time_async(o, style)

                measured(f"{sdk} {style} {mode}|{n}", lambda: loop.run_until_complete(many()))
            else:
                def many_sync(o: Callable[[], Any] = open_call) -> None:
                    for _ in range(calls):
                        bench.time_sync(o, style)

                measured(f"{sdk} {style} {mode}|{n}", many_sync)
        loop.close()
    if variant == "bare":
        one_call = bench.floor_call(tracer_provider, meter_provider)

        def floor() -> None:
            for _ in range(calls):
                one_call()

        measured("floor", floor)
    for cached in (True, False):
        measured(f"plain {'cached' if cached else 'uncached'}", _plain_batch(calls, cached))
    if variant == "llmtrace":
        for sdk in ("anthropic", "openai"):
            for mode in ("sync", "async"):
                for side, batch in bench.engine_batches(sdk, mode, tracer_provider, meter_provider).items():
                    measured(f"engine {sdk} {mode}|{side}", batch)
    return labels


def _plain_batch(calls: int, cached: bool) -> Callable[[], None]:
    import anthropic
    import httpx2

    system = " ".join(f"Rule {n}: quote the plan's limit from section {n % 17}." for n in range(420))
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5000,
                         "output_tokens": 20}}
    http = httpx2.Client(transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json=message)))
    client = anthropic.Anthropic(api_key="bench", base_url="http://bench.local", http_client=http, max_retries=0)
    block: dict[str, Any] = {"type": "text", "text": system}
    if cached:
        block["cache_control"] = {"type": "ephemeral"}

    def batch() -> None:
        for _ in range(calls):
            client.messages.create(model="claude-haiku-4-5", max_tokens=64, system=[block],
                                   messages=[{"role": "user", "content": "hi"}])
    return batch


def count(variant: str, calls: int) -> dict[str, int]:
    """Instructions of each batch of one variant, run under callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        labels_file = Path(tmp) / "labels.json"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run([valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
                        "--dump-after=_operator_call", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--worker", variant, "--calls", str(calls), "--labels", str(labels_file)],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        labels = json.loads(labels_file.read_text())
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        totals = [_total(p) for p in dumps]
    if len(totals) != len(labels):
        sys.exit(f"{variant}: {len(totals)} callgrind dumps for {len(labels)} batches")
    return dict(zip(labels, totals))


def _measured_commit() -> str | None:
    """The commit of the llmtrace tree measured (PYTHONPATH may point at another checkout, for a before count)."""
    import llmtrace

    done = subprocess.run(["git", "-C", str(Path(llmtrace.__file__).parent), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def _total(dump: Path) -> int:
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
    return int(match.group(1)) if match else 0


def report(counts: dict[str, dict[str, int]], calls: int) -> dict[str, Any]:
    """Per call style: instructions per call and per chunk, bare and llmtrace's extra."""
    small, large = SIZES
    rows: dict[str, Any] = {}
    for sdk, style, mode in bench.CASES:
        case = f"{sdk} {style} {mode}"
        fit = {}
        for variant in VARIANTS:
            a, b = counts[variant][f"{case}|{small}"] / calls, counts[variant][f"{case}|{large}"] / calls
            per_chunk = (b - a) / (large - small)
            fit[variant] = (a - small * per_chunk, per_chunk)
        rows[case] = {"bare_per_call": fit["bare"][0], "bare_per_chunk": fit["bare"][1],
                      "extra_per_call": fit["llmtrace"][0] - fit["bare"][0],
                      "extra_per_chunk": fit["llmtrace"][1] - fit["bare"][1]}
    plain = {label: (counts["llmtrace"][f"plain {label}"] - counts["bare"][f"plain {label}"]) / calls
             for label in ("cached", "uncached")}
    engine = {f"{sdk} {mode}": (counts["llmtrace"][f"engine {sdk} {mode}|traced"]
                                - counts["llmtrace"][f"engine {sdk} {mode}|bare"]) / bench.ENGINE_ITEMS
              for sdk in ("anthropic", "openai") for mode in ("sync", "async")
              if f"engine {sdk} {mode}|traced" in counts["llmtrace"]}
    return {"calls": calls, "styles": rows, "floor_per_call": counts["bare"]["floor"] / calls, "plain_extra": plain,
            "engine_per_chunk": engine}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| SDK, call, mode | extra instructions per call | extra per chunk | bare per call | bare per chunk |",
             "|---|---|---|---|---|"]
    for case, row in result["styles"].items():
        lines.append(f"| {case} | {row['extra_per_call']:,.0f} | {row['extra_per_chunk']:,.0f} | "
                     f"{row['bare_per_call']:,.0f} | {row['bare_per_chunk']:,.0f} |")
    floor = result["floor_per_call"]
    lines.append("")
    lines.append(f"OpenTelemetry SDK floor (one span with a streamed call's attributes, five histogram records): "
                 f"{floor:,.0f} instructions per call. Plain Anthropic call with a 5,000-token system prompt, "
                 f"extra: {result['plain_extra']['cached']:,.0f} with `cache_control`, "
                 f"{result['plain_extra']['uncached']:,.0f} without.")
    if result.get("engine_per_chunk"):
        lines.append("")
        lines.append("Per chunk, the engine and reader alone over events the SDK parsed (all llmtrace adds per chunk): "
                     + ", ".join(f"{case} {value:,.0f}" for case, value in result["engine_per_chunk"].items())
                     + " instructions.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="streams per measured batch")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.labels.write_text(json.dumps(batches(args.worker, args.calls)))
        return
    counts = {variant: count(variant, args.calls) for variant in VARIANTS}
    result = {"commit": _measured_commit(), **report(counts, args.calls)}
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, **result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
