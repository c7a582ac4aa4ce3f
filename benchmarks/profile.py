"""Where an instrumented call's time goes, per call style, sampled by pyinstrument.

    python benchmarks/profile.py [--calls 2000] [--chunks 10] [--only anthropic] [--top 8]

Each call style runs `--calls` instrumented streams of `--chunks` chunks over the benchmark's in-process
transport (benchmarks/run.py), under pyinstrument (1 ms sampling interval). The samples' own time (the
frame on top of the stack) is summed per part of the stack and shown as a share of all samples:
llmtrace, the OpenTelemetry SDK and API (what llmtrace calls into), the LLM SDK with its HTTP client, and
the rest (interpreter, asyncio, the standard library). Then the top functions of llmtrace and
OpenTelemetry, as shares of the instrumentation's samples (those two parts together).
A sampling profiler slows what it watches several times over, so its figures are shares, never µs; for
exact, repeatable counts use benchmarks/callgrind.py. This is the map; callgrind is the ruler.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (SSE bodies, clients and call styles of the timing benchmark)

PARTS = (("llmtrace", "/llmtrace/"), ("OpenTelemetry", "/opentelemetry/"),
         ("LLM SDK + HTTP", ("/anthropic/", "/openai/", "/httpx2/", "/httpcore2/", "/pydantic", "/anyio/")))


def part_of(path: str) -> str:
    for name, marker in PARTS:
        if any(m in path for m in ((marker,) if isinstance(marker, str) else marker)):
            return name
    return "other"


def walk(frame: Any, parts: Counter[str], functions: Counter[tuple[str, str]]) -> None:
    path = frame.file_path or ""
    part = part_of(path)
    parts[part] += frame.total_self_time
    if part in ("llmtrace", "OpenTelemetry"):
        short = path.split("/site-packages/")[-1].split("/work/main/")[-1]
        functions[(f"{frame.function} ({short}:{frame.line_no})", part)] += frame.total_self_time
    for child in frame.children:
        walk(child, parts, functions)


def profile(sdk: str, style: str, mode: str, calls: int, chunks: int) -> tuple[Counter, Counter]:
    from pyinstrument import Profiler

    frames = bench.bodies(sdk, chunks)
    is_async = mode == "async"
    open_call = bench.opener(sdk, style, bench.client(sdk, is_async, lambda: frames))
    loop = asyncio.new_event_loop()

    def run_calls(n: int) -> None:
        if is_async:
            async def many() -> None:
                for _ in range(n):
                    await bench.time_async(open_call, style)
            loop.run_until_complete(many())
        else:
            for _ in range(n):
                bench.time_sync(open_call, style)

    run_calls(50)  # warm-up
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    run_calls(calls)
    profiler.stop()
    loop.close()
    parts: Counter[str] = Counter()
    functions: Counter[tuple[str, str]] = Counter()
    root = profiler.last_session.root_frame(trim_stem=False)
    if root is not None:
        walk(root, parts, functions)
    return parts, functions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--only", choices=("anthropic", "openai"))
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    tracer_provider, meter_provider, clear = bench.telemetry("memory")
    bench.instrument("llmtrace", tracer_provider, meter_provider)
    print(f"Share of samples, by the part of the stack on top ({args.calls} calls of {args.chunks} chunks each)\n")
    print("| SDK, call, mode | " + " | ".join(name for name, _ in PARTS) + " | other |")
    print("|---" * (len(PARTS) + 2) + "|")
    tops = {}
    for sdk, style, mode in bench.CASES:
        if args.only and sdk != args.only:
            continue
        parts, functions = profile(sdk, style, mode, args.calls, args.chunks)
        clear()
        total = sum(parts.values()) or 1.0
        shares = [parts[name] / total * 100 for name in [n for n, _ in PARTS] + ["other"]]
        print(f"| {sdk} {style} {mode} | " + " | ".join(f"{v:.1f}%" for v in shares) + " |")
        tops[f"{sdk} {style} {mode}"] = functions
    for label, functions in tops.items():
        print(f"\n{label}: top functions, share of the instrumentation's samples (llmtrace and OpenTelemetry)")
        instrumentation = sum(functions.values()) or 1.0
        for (function, part), seconds in functions.most_common(args.top):
            print(f"  {seconds / instrumentation * 100:5.1f}%  {part:13}  {function}")


if __name__ == "__main__":
    main()
