"""What estimating usage costs, for OpenAI chat streams that ask for none (the SDK's default).

    python benchmarks/estimate.py            # about a minute

Measures, with the tokenizer installed (bpe-openai, from the `tokenizer` extra):
- the first instrumented call in a fresh process: its recorded span duration and the app's wall time against a
  bare call of the same kind in that process (the tokenizer is not loaded yet: it loads on its own thread);
- the estimate per call once the tokenizer is loaded: counting a 60-piece answer and the prompt (a reused
  5,000-token system prompt and a new question), as `Telemetry` does after the call's end time;
- the same prompt never seen before (a prompt that changes every call);
- the per-chunk cost of keeping the answer's pieces to count them, amortised over its batches.
Times are medians of many repetitions, in one process; the machine's load moves them, ratios less.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_CALL = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import httpx2, openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests import sse
system = open(sys.argv[2]).read()
words = "check the customer's plan first then quote limit from section and rotate key".split()
body = b"".join(sse.encode(sse.openai_chat([(" " if i else "") + words[i % len(words)] for i in range(60)],
                                           usage=False)))
http = httpx2.Client(transport=httpx2.MockTransport(
    lambda r: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)))
client = openai.OpenAI(api_key="x", base_url="http://mock.local/v1", http_client=http, max_retries=0)
def call():
    began = time.perf_counter()
    for _ in client.chat.completions.create(model="gpt-5-mini", stream=True, messages=[
            {"role": "system", "content": system}, {"role": "user", "content": "How do I rotate a key?"}]):
        pass
    return time.perf_counter() - began
call(); bare = call()  # the SDK's own first-call work, then a bare call
import llmtrace
exporter = InMemorySpanExporter(); provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
llmtrace.instrument(tracer_provider=provider, meter_provider=MeterProvider())
wall = call()
[span] = exporter.get_finished_spans()
print(json.dumps({"bare": bare, "wall": wall, "span": (span.end_time - span.start_time) / 1e9}))
'''


def first_call(system_file: Path, rounds: int = 7) -> dict[str, float]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", FIRST_CALL, str(ROOT), str(system_file)],
                                      capture_output=True, text=True, check=True, timeout=300).stdout)
            for _ in range(rounds)]
    return {key: statistics.median(run[key] for run in runs) for key in ("bare", "wall", "span")}


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def main() -> int:
    from llmtrace import _tokens
    from llmtrace._telemetry import _estimate_prompt_tokens
    from llmtrace.demo.workload import system_prompt

    system = system_prompt()  # about 5,000 tokens
    system_file = ROOT / ".bench-system-prompt.txt"
    system_file.write_text(system)
    try:
        first = first_call(system_file)
    finally:
        system_file.unlink()
    _tokens.wait_until_loaded()
    words = "check the customer's plan first then quote limit from section and rotate key".split()
    answer = [(" " if i else "") + words[i % len(words)] for i in range(60)]

    def estimate(question: str, prompt: str) -> float:
        request = {"messages": [{"role": "system", "content": prompt}, {"role": "user", "content": question}]}
        began = time.perf_counter()
        counter = _tokens.OutputCounter()
        for piece in answer:
            counter.add(piece)
        counter.total()
        _estimate_prompt_tokens(request)
        return time.perf_counter() - began

    for i in range(200):
        estimate(f"warm-up {i}", system)
    reused = [estimate(f"Question {i}: how do I rotate an API key?", system) for i in range(5000)]
    fresh = [estimate("How do I rotate an API key?", f"v{i} {system}") for i in range(500)]
    counter, pieces = _tokens.OutputCounter(), 200_000
    began = time.perf_counter()
    for _ in range(pieces):
        counter.add(" word")
    per_chunk = (time.perf_counter() - began) / pieces
    print(f"tokenizer: {_tokens.tokenizer_name()}")
    print(f"first call, tokenizer not loaded yet: bare {first['bare'] * 1e3:.1f} ms, instrumented span "
          f"{first['span'] * 1e3:.1f} ms (+{(first['span'] - first['bare']) * 1e3:.1f} ms recorded), app wall "
          f"{first['wall'] * 1e3:.1f} ms (+{(first['wall'] - first['bare']) * 1e3:.1f} ms)")
    print(f"estimate per call, reused 5,000-token system prompt: {median_us(reused):.1f} µs")
    print(f"estimate per call, a prompt never seen before: {median_us(fresh):.0f} µs")
    print(f"per chunk, keeping pieces to count (amortised): {per_chunk * 1e6:.3f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
