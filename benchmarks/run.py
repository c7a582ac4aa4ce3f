"""Overhead of llmtrace over the bare SDKs, with the official OpenTelemetry GenAI instrumentations as a reference.

    make bench                       # or: python benchmarks/run.py [--quick] [--rounds N] [--exporter batch]
    python benchmarks/run.py --only plain --rounds 4   # just the plain calls with a 5,000-token prompt

Each instrumentation (llmtrace, official) is measured in its own worker process, pinned to one CPU,
against the bare SDK in that same process: every round is a pair of calls, bare then instrumented or
the other way round (alternating). For llmtrace the bare call goes through a client subclass that
calls the SDK's own `request`, under llmtrace's wrapper; the official instrumentations are switched
on and off between the two calls (outside the timed region, each switch followed by an untimed call).
Times are the benchmark thread's CPU time (`time.thread_time`), so that other processes on a shared
machine do not count. Figures are medians of the paired differences, with their quartiles.
The SDKs read SSE bodies from `httpx2.MockTransport` (the emulator's own wire format, no network), so
the figures are the instrumentation's cost alone. Telemetry goes to in-memory exporters (export cost
excluded); `--exporter batch` puts a BatchSpanProcessor in the way instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = (10, 100, 1000, 10_000)
QUICK_SIZES = (10, 100, 1000)
MEMORY_SIZES = (1000, 20_000)
CASES = [(sdk, style, mode) for sdk in ("anthropic", "openai") for style in ("create", "stream")
         for mode in ("sync", "async")]
HERE = Path(__file__).resolve().parent
# CPU time of the benchmark's thread: time the machine gives to other processes (a shared, noisy host)
# is not counted. The instrumentation's own work runs on this thread: in-memory exporters, no I/O.
clock = time.thread_time
TARGETS = {"per_chunk_us": 0.5, "per_call_us": 100.0, "ttfc_us": 40.0, "memory_kib": 32.0}
PER_CALL_FLOOR_RATIO = 2.0  # fixed per-call work at most twice the OpenTelemetry SDK's own for such a call


# -- the worker: one variant, every case --------------------------------------------------------------------

def bodies(sdk: str, n: int) -> list[bytes]:
    """The SSE frames of a reply with `n` text deltas, as the emulator sends them."""
    from llmtrace.emulator._cache import PromptCache
    from llmtrace.emulator._common import Reply
    from llmtrace.emulator.anthropic import Anthropic, Plan as AnthropicPlan
    from llmtrace.emulator.openai import OpenAI, Plan as OpenAIPlan

    reply = Reply(pieces=(" word",) * n, output_tokens=n, hit_limit=False)
    if sdk == "anthropic":
        usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5000,
                 "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}}
        plan = AnthropicPlan("msg_bench", "claude-haiku-4-5", reply, usage, None)
        return [frame for frame, _ in Anthropic(PromptCache(time.monotonic), n).frames(plan, None)]
    plan = OpenAIPlan("chatcmpl-bench", "gpt-5-mini", 1_700_000_000, reply, 5012, 4992, include_usage=True)
    return [frame for frame, _ in OpenAI(PromptCache(time.monotonic), n).chat_frames(plan, None)]


def client(sdk: str, is_async: bool, frames: Callable[[], list[bytes]], bare: bool = False) -> Any:
    import anthropic
    import httpx2
    import openai

    def respond(request: httpx2.Request) -> httpx2.Response:
        parts = frames()
        if is_async:
            async def body() -> Any:
                for part in parts:
                    yield part
            content: Any = body()
        else:
            content = iter(parts)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=content)

    transport = httpx2.MockTransport(respond)
    http = httpx2.AsyncClient(transport=transport) if is_async else httpx2.Client(transport=transport)
    if sdk == "anthropic":
        cls: Any = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
        kwargs = {"base_url": "http://bench.local"}
    else:
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        kwargs = {"base_url": "http://bench.local/v1"}
    if bare:
        # The same client class, but calling the SDK's own `request` under llmtrace's wrapper: the bare SDK,
        # in the same process and with the same warm caches as the instrumented calls it is paired with.
        wrapped = cls.request
        cls = type("Bare" + cls.__name__, (cls,), {"request": getattr(wrapped, "__wrapped__", wrapped)})
    return cls(api_key="bench", http_client=http, max_retries=0, **kwargs)


def opener(sdk: str, style: str, c: Any) -> Callable[[], Any]:
    messages = [{"role": "user", "content": "hi"}]
    if sdk == "anthropic":
        if style == "create":
            return lambda: c.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages, stream=True)
        return lambda: c.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=messages)
    if style == "create":
        return lambda: c.chat.completions.create(model="gpt-5-mini", messages=messages, stream=True,
                                                 stream_options={"include_usage": True})
    return lambda: c.chat.completions.stream(model="gpt-5-mini", messages=messages,
                                             stream_options={"include_usage": True})


def time_sync(open_call: Callable[[], Any], style: str) -> tuple[float, float]:
    """(seconds for the whole call, seconds to the first item)."""
    start = clock()
    first = 0.0
    if style == "stream":
        with open_call() as stream:
            for _ in stream:
                first = first or clock()
    else:
        for _ in open_call():
            first = first or clock()
    end = clock()
    return end - start, first - start


async def time_async(open_call: Callable[[], Any], style: str) -> tuple[float, float]:
    start = clock()
    first = 0.0
    if style == "stream":
        async with open_call() as stream:
            async for _ in stream:
                first = first or clock()
    else:
        async for _ in await open_call():
            first = first or clock()
    end = clock()
    return end - start, first - start


def telemetry(exporter: str) -> tuple[Any, Any, Callable[[], None]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    memory = InMemorySpanExporter()
    tracer_provider.add_span_processor(BatchSpanProcessor(Discard()) if exporter == "batch"
                                       else SimpleSpanProcessor(memory))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), memory.clear


def instrument(variant: str, tracer_provider: Any, meter_provider: Any) -> None:
    # Providers are passed, never set globally: a global SDK provider would switch on the Anthropic SDK's
    # own tracing in the bare runs too.
    if variant == "llmtrace":
        import llmtrace

        llmtrace.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif variant == "official":
        from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        for instrumentor in (OpenAIInstrumentor(), AnthropicInstrumentor()):
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def toggles(variant: str, tracer_provider: Any, meter_provider: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """(switch the instrumentation on, switch it off). Providers are passed, never set globally: a global
    SDK provider would switch on the Anthropic SDK's own tracing in the bare calls too."""
    if variant == "llmtrace":
        import llmtrace

        return (lambda: llmtrace.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider),
                llmtrace.uninstrument)
    from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    instrumentors = (OpenAIInstrumentor(), AnthropicInstrumentor())

    def on() -> None:
        for instrumentor in instrumentors:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def off() -> None:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()

    return on, off


def paired(measure_bare: Callable[[], tuple[float, float]], measure_traced: Callable[[], tuple[float, float]],
           rounds: int, clear: Callable[[], None], on: Callable[[], None] | None = None,
           off: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Differences traced - bare of (total seconds, seconds to first item) over `rounds` pairs. With `on`/`off`
    (instrumentations that cannot be bypassed per call) the instrumentation is switched between the two
    calls of a pair, followed by an untimed warm-up call."""
    def run(traced: bool) -> tuple[float, float]:
        if on is not None and off is not None:
            (on if traced else off)()
            (measure_traced if traced else measure_bare)()
        return (measure_traced if traced else measure_bare)()

    totals, firsts, bare = [], [], []
    run(False), run(True)
    gc.collect()
    for i in range(rounds):
        gc.disable()  # a collection inside one call of a pair would land on one side only
        try:
            results = {traced: run(traced) for traced in ((False, True) if i % 2 else (True, False))}
        finally:
            gc.enable()
        if i % 16 == 15:
            clear()
            gc.collect()
        totals.append(results[True][0] - results[False][0])
        firsts.append(results[True][1] - results[False][1])
        bare.append(results[False][0])
    clear()
    if off is not None:
        off()
    return {"total": totals, "first": firsts, "bare": bare}


def worker(variant: str, sizes: list[int], exporter: str) -> dict[str, Any]:
    tracer_provider, meter_provider, clear = telemetry(exporter)
    on, off = toggles(variant, tracer_provider, meter_provider)
    bypass = variant == "llmtrace"  # llmtrace wraps one method per client class: bypassed by a subclass
    switches = {} if bypass else {"on": on, "off": off}
    on()
    frames: dict[tuple[str, int], list[bytes]] = {}
    current: list[list[bytes]] = [[]]
    out: dict[str, Any] = {"calls": {}, "memory": {}, "plain": {}, "floor_in_situ": {}}
    one_floor_call = floor_call(tracer_provider, meter_provider) if bypass else None
    for sdk, style, mode in CASES:
        is_async = mode == "async"
        measures = []
        loop = asyncio.new_event_loop()
        for bare in (True, False):
            open_call = opener(sdk, style, client(sdk, is_async, lambda: current[0], bare=bare and bypass))
            if is_async:
                measures.append(lambda o=open_call: loop.run_until_complete(time_async(o, style)))
            else:
                measures.append(lambda o=open_call: time_sync(o, style))
        rows = {}
        for n in sizes:
            current[0] = frames.setdefault((sdk, n), bodies(sdk, n))
            rows[n] = paired(*measures, max(6, min(200, 20_000 // n)), clear, **switches)
            on()
        if one_floor_call is not None:
            # The floor where the instrumentation's own per-call work runs: right after a bare call of this
            # style, with the caches as the SDK leaves them (the loop-only floor below runs with hot caches).
            current[0] = frames[(sdk, sizes[0])]
            bare_call = measures[0]

            def bare_then_floor(bare_call: Callable[[], tuple[float, float]] = bare_call) -> tuple[float, float]:
                total, first = bare_call()
                start = clock()
                one_floor_call()
                return total + clock() - start, first

            out["floor_in_situ"][f"{sdk} {style} {mode}"] = paired(bare_call, bare_then_floor, 200, clear)["total"]
        loop.close()
        out["calls"][f"{sdk} {style} {mode}"] = rows
    for sdk in ("anthropic", "openai"):  # memory held at the peak of one raw stream, sync
        peaks: dict[str, dict[int, int]] = {}
        for label, switch in (("bare", off), ("instrumented", on)):
            switch()
            open_call = opener(sdk, "create", client(sdk, False, lambda: current[0]))
            peaks[label] = {}
            for n in MEMORY_SIZES:
                current[0] = frames.setdefault((sdk, n), bodies(sdk, n))
                for _ in open_call():  # warm
                    pass
                gc.collect()
                tracemalloc.start()
                for _ in open_call():
                    pass
                peaks[label][n] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                clear()
        off()
        out["memory"][sdk] = peaks
    on()
    out["plain"] = plain_calls(bypass, clear, switches)
    clear()
    out["floor"] = otel_floor(tracer_provider, meter_provider)
    clear()
    if bypass:
        out["engine"] = engine_per_chunk(tracer_provider, meter_provider, clear)
        clear()
    return out


ENGINE_ITEMS = 20_000
ENGINE_ROUNDS = 30


def engine_batches(sdk: str, mode: str, tracer_provider: Any, meter_provider: Any) -> dict[str, Callable[[], None]]:
    """The per-chunk path alone, which the SDK's own per-chunk work (0.16-1.6 million instructions) drowns in
    the end-to-end figures: ENGINE_ITEMS content events the SDK parsed beforehand, read through one
    of the SDK's own stream objects (its iteration over its item source, the parsing left out), bare and under
    llmtrace's proxy with the adapter's item source, the engine and the provider's reader. That is all llmtrace
    adds per chunk on every call style: the `.stream()` helpers read the same raw stream."""
    import anthropic
    import openai

    from llmtrace import _stream
    from llmtrace._pricing import PriceTable
    from llmtrace._telemetry import Telemetry

    frames = bodies(sdk, 100)
    parsed = list(opener(sdk, "create", client(sdk, False, lambda: frames))())[2:-3]  # the content events
    events = (parsed * (ENGINE_ITEMS // len(parsed) + 1))[:ENGINE_ITEMS]
    is_async = mode == "async"
    if sdk == "anthropic":
        from llmtrace.providers import anthropic as provider
        adapter: Any = provider.AnthropicAdapter()
        read = getattr(adapter, "read_event", None) or provider.read_event  # (an older tree: a plain function)
        module: Any = anthropic
    else:
        from llmtrace.providers import openai as provider
        adapter, read, module = provider.OpenAIAdapter(), provider.read_chat_chunk, openai
    stream_class = module.AsyncStream if is_async else module.Stream
    telemetry = Telemetry(tracer_provider, meter_provider, capture_content=False, prices=PriceTable.load())

    async def async_source() -> Any:  # as the SDK's `__stream__` yields them
        for event in events:
            yield event

    def sdk_stream() -> Any:
        stream = stream_class.__new__(stream_class)
        stream.response = None  # anthropic's per-item look for its own tracing's observer finds none (tracing off)
        stream._iterator = async_source() if is_async else iter(events)
        return stream

    def traced_stream() -> Any:
        stream = sdk_stream()
        record = telemetry.start(read, read, provider=sdk, operation="chat", model="m", stream=True,
                                 server_address=None, server_port=None, request={}, cache=None, attributes={})
        proxy = _stream.AsyncTracedStream if is_async else _stream.TracedStream
        if hasattr(adapter, "items"):
            return proxy(stream, record, adapter.items(stream))
        return proxy(stream, record)  # (an older tree: the engine always read through the stream)

    if not is_async:
        def bare() -> None:
            for _ in sdk_stream():
                pass

        def traced() -> None:
            for _ in traced_stream():
                pass

        return {"bare": bare, "traced": traced}
    loop = asyncio.new_event_loop()

    async def abare() -> None:
        async for _ in sdk_stream():
            pass

    async def atraced() -> None:
        async for _ in traced_stream():
            pass

    return {"bare": lambda: loop.run_until_complete(abare()), "traced": lambda: loop.run_until_complete(atraced())}


def engine_per_chunk(tracer_provider: Any, meter_provider: Any, clear: Callable[[], None]) -> dict[str, list[float]]:
    """Seconds llmtrace adds per chunk on the per-chunk path alone (engine_batches), per SDK and mode: paired
    batches, alternating which goes first."""
    out = {}
    for sdk in ("anthropic", "openai"):
        for mode in ("sync", "async"):
            batches = engine_batches(sdk, mode, tracer_provider, meter_provider)

            def timed(side: str, batches: dict[str, Callable[[], None]] = batches) -> tuple[float, float]:
                start = clock()
                batches[side]()
                return (clock() - start) / ENGINE_ITEMS, 0.0
            out[f"{sdk} {mode}"] = paired(lambda: timed("bare"), lambda: timed("traced"), ENGINE_ROUNDS, clear)["total"]
    return out


def otel_floor(tracer_provider: Any, meter_provider: Any, calls: int = 3000) -> list[float]:
    """CPU seconds per call of the OpenTelemetry SDK work a traced call cannot avoid, with no LLM code:
    one span started and ended with a streamed call's attributes, and the five histogram records."""
    one_call = floor_call(tracer_provider, meter_provider)
    times = []
    for _ in range(calls):
        start = clock()
        one_call()
        times.append(clock() - start)
    return times


def floor_call(tracer_provider: Any, meter_provider: Any) -> Callable[[], None]:
    """The OpenTelemetry SDK's part of one traced streamed call, instruments made beforehand."""
    from opentelemetry.trace import SpanKind, set_span_in_context

    from llmtrace import _semconv as sc

    tracer = tracer_provider.get_tracer("floor")
    meter = meter_provider.get_meter("floor")
    duration, ttfc, chunks, tokens = (meter.create_histogram(name) for name in ("duration", "ttfc", "chunks", "tokens"))
    start_attrs = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "anthropic", sc.REQUEST_STREAM: True,
                   sc.REQUEST_MODEL: "claude-haiku-4-5", sc.SERVER_ADDRESS: "api.anthropic.com",
                   sc.SERVER_PORT: 443, sc.REQUEST_MAX_TOKENS: 64}
    end_attrs = {sc.STREAM_OUTCOME: "completed", sc.RESPONSE_ID: "msg_bench", sc.RESPONSE_MODEL: "claude-haiku-4-5",
                 sc.RESPONSE_FINISH_REASONS: ("end_turn",), sc.USAGE_INPUT_TOKENS: 5012, sc.USAGE_OUTPUT_TOKENS: 10,
                 sc.USAGE_SOURCE: "provider", sc.USAGE_CACHE_READ_INPUT_TOKENS: 5000,
                 sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 0, sc.CACHE_HIT_RATIO: 0.99, sc.CACHE_OUTCOME: "hit",
                 sc.CACHE_TTL: 300.0, sc.COST_USD: 0.0006, sc.CACHE_SAVINGS_USD: 0.004, sc.STREAM_CHUNKS: 14,
                 sc.STREAM_TIME_TO_FIRST_EVENT: 0.001, sc.STREAM_MAX_CHUNK_GAP: 0.0001,
                 sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.001}
    base = {sc.PROVIDER_NAME: "anthropic", sc.REQUEST_MODEL: "claude-haiku-4-5", sc.OPERATION_NAME: "chat",
            sc.SERVER_ADDRESS: "api.anthropic.com"}

    def one_call() -> None:
        span = tracer.start_span("chat claude-haiku-4-5", kind=SpanKind.CLIENT, attributes=start_attrs)
        span.set_attributes(end_attrs)
        span.end()
        context = set_span_in_context(span)
        duration.record(0.01, base, context)
        ttfc.record(0.001, base, context)
        chunks.record(14, base, context)
        tokens.record(5012, {**base, sc.TOKEN_TYPE: "input"}, context)
        tokens.record(10, {**base, sc.TOKEN_TYPE: "output"}, context)
    return one_call


def plain_calls(bypass: bool, clear: Callable[[], None], switches: dict[str, Any], rounds: int = 300) -> dict[str, Any]:
    """Per-call cost of a plain Anthropic call with a 5,000-token system prompt: reused with cache_control, new on
    every call with cache_control (a timestamp at its top: each call's prefix is hashed and summarised anew), and
    reused without cache_control. Metrics and cost are recorded in all three; the prefix's digests only with
    cache_control."""
    import anthropic
    import httpx2

    system = " ".join(f"Rule {n}: quote the plan's limit from section {n % 17}." for n in range(420))
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5000, "output_tokens": 20}
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": usage}
    body = json.dumps(message).encode()
    def make(bare: bool) -> Any:
        http = httpx2.Client(transport=httpx2.MockTransport(
            lambda r: httpx2.Response(200, headers={"content-type": "application/json"}, content=body)))
        cls: Any = anthropic.Anthropic
        if bare:
            cls = type("BareAnthropic", (cls,), {"request": getattr(cls.request, "__wrapped__", cls.request)})
        return cls(api_key="bench", base_url="http://bench.local", http_client=http, max_retries=0)

    clients = {bare: make(bare and bypass) for bare in (True, False)}
    calls = iter(range(10**9))
    marker = {"type": "ephemeral"}
    variants: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "cached": lambda: [{"type": "text", "text": system, "cache_control": marker}],
        "new_prompt": lambda: [{"type": "text", "text": f"Now: call {next(calls)}.\n" + system, "cache_control": marker}],
        "uncached": lambda: [{"type": "text", "text": system}],
    }
    results = {}
    for label, blocks in variants.items():
        def call(c: Any, blocks: Callable[[], list[dict[str, Any]]] = blocks) -> tuple[float, float]:
            system_blocks = blocks()  # built outside the timed region, the same way for the bare and the traced call
            start = clock()
            c.messages.create(model="claude-haiku-4-5", max_tokens=64, system=system_blocks,
                              messages=[{"role": "user", "content": "hi"}])
            return clock() - start, 0.0
        results[label] = paired(lambda: call(clients[True]), lambda: call(clients[False]), rounds, clear,
                                **switches)["total"]
    return results


def plain_worker(variant: str, exporter: str) -> dict[str, Any]:
    tracer_provider, meter_provider, clear = telemetry(exporter)
    on, off = toggles(variant, tracer_provider, meter_provider)
    bypass = variant == "llmtrace"
    on()
    return {"plain": plain_calls(bypass, clear, {} if bypass else {"on": on, "off": off})}


def plain_table(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| variant | plain Anthropic call with a 5,000-token system prompt and `cache_control`: µs over bare "
             "| the same, a new prompt every call | the same call without `cache_control` |", "|---|---|---|---|"]
    for variant, runs in results.items():
        cells = [spread(sum((r["plain"].get(label, []) for r in runs), [])) if any(label in r["plain"] for r in runs)
                 else "n/a" for label in ("cached", "new_prompt", "uncached")]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- cold start: a fresh process importing and instrumenting ---------------------------------------------------

COLD_START = """
import json, sys
from time import perf_counter
t0 = perf_counter()
import anthropic, openai
t1 = perf_counter()
import llmtrace
t2 = perf_counter()
if sys.argv[1] == "default":
    llmtrace.instrument()  # no providers of the app's: OTLP exporters from the OTEL_* variables
else:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    tp, mp = TracerProvider(), MeterProvider()
    t2_app = perf_counter()  # the app's own set-up is not llmtrace's
    llmtrace.instrument(tracer_provider=tp, meter_provider=mp)
t3 = perf_counter()
begun = t2 if sys.argv[1] == "default" else t2_app
print(json.dumps({"sdks": t1 - t0, "import": t2 - t1, "instrument": t3 - begun}))
"""


def cold_start(repeats: int = 15) -> dict[str, list[float]]:
    """Wall seconds, each in a fresh process: `import anthropic, openai`; then `import llmtrace`; then
    `instrument()`, with its default OTLP exporters and with providers the app made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens; exports are not timed here
    out: dict[str, list[float]] = {"sdks": [], "import": [], "instrument_default": [], "instrument_app": []}
    for _ in range(repeats):
        for mode in ("default", "app"):
            done = subprocess.run([sys.executable, "-c", COLD_START, mode], capture_output=True, text=True,
                                  env=env, check=True)
            times = json.loads(done.stdout.strip().splitlines()[-1])
            out["sdks"].append(times["sdks"])
            out["import"].append(times["import"])
            out[f"instrument_{mode}"].append(times["instrument"])
    return out


def cold_start_lines(cold: dict[str, list[float]]) -> list[str]:
    ms = {name: spread(values, 1e3) for name, values in cold.items()}
    return ["", "## Cold start (ms, median and quartiles of fresh processes)", "",
            "| `import anthropic, openai` | then `import llmtrace` | then `llmtrace.instrument()` (default OTLP "
            "exporters) | or `instrument()` with the app's providers |", "|---|---|---|---|",
            f"| {ms['sdks']} | {ms['import']} | {ms['instrument_default']} | {ms['instrument_app']} |"]


def callgrind_lines() -> list[str]:
    """benchmarks/callgrind.json (and callgrind-before.json, counted on the code before a change), when there."""
    after_path, before_path = HERE / "callgrind.json", HERE / "callgrind-before.json"
    if not after_path.exists():
        return []
    after = json.loads(after_path.read_text())
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    arrow = (f" (before → after: {before.get('commit') or 'before'} → {after.get('commit') or 'now'}, the code measured)"
             if before else "")
    lines = ["", "## CPU instructions (callgrind: repeatable on a noisy machine; `python benchmarks/callgrind.py`)", "",
             f"Extra instructions of llmtrace over the bare SDK per call{arrow}; the OpenTelemetry SDK's own for one "
             f"call (one span, five histogram records) is {after['floor_per_call']:,.0f}.", "",
             "| SDK, call, mode | per call | per call / floor |", "|---|---|---|"]
    for case, row in after["styles"].items():
        call = f"{row['extra_per_call']:,.0f}"
        if before and case in before["styles"]:
            call = f"{before['styles'][case]['extra_per_call']:,.0f} → {call}"
        lines.append(f"| {case} | {call} | {row['extra_per_call'] / after['floor_per_call']:.2f} |")
    engine = after.get("engine_per_chunk", {})
    if engine:
        lines += ["", f"Per chunk{arrow}, the engine alone (as in the table of µs above): all llmtrace adds per chunk on "
                      "every call style.", "",
                  "| SDK, mode | instructions per chunk |", "|---|---|"]
        for case, value in engine.items():
            old = (before or {}).get("engine_per_chunk", {}).get(case)
            lines.append(f"| {case} | {'' if old is None else f'{old:,.0f} → '}{value:,.0f} |")
    return lines


# -- the driver: rounds of workers, paired differences, the report ------------------------------------------

def fit(xs: list[int], ys: list[float], weights: list[float]) -> tuple[float, float]:
    """Weighted least-squares line through (chunks, seconds): (seconds per chunk, fixed seconds per call).

    Each point is the median of its paired differences, weighted by the inverse square of that median's
    uncertainty: the short streams, measured precisely, fix the intercept; the long ones the slope."""
    total = sum(weights)
    mx = sum(w * x for w, x in zip(weights, xs)) / total
    my = sum(w * y for w, y in zip(weights, ys)) / total
    slope = (sum(w * (x - mx) * (y - my) for w, x, y in zip(weights, xs, ys))
             / sum(w * (x - mx) ** 2 for w, x in zip(weights, xs)))
    return slope, my - slope * mx


def median_error(values: list[float]) -> float:
    """Standard error of a median, from the interquartile range (normal approximation)."""
    low, _, high = quartiles(values)
    return max(1.2533 * (high - low) / 1.349 / len(values) ** 0.5, 1e-9)


def run_worker(variant: str, sizes: list[int], exporter: str, cpu: int | None,
               only: str | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", variant, "--exporter", exporter,
               "--sizes", ",".join(map(str, sizes))] + (["--only", only] if only else [])
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker {variant} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def spread(values: list[float], scale: float = 1e6) -> str:
    low, mid, high = quartiles(values)
    return f"{mid * scale:.2f} ({low * scale:.2f}…{high * scale:.2f})"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's figures: per case the line through the median paired differences, and the spread."""
    table: dict[str, Any] = {}
    for case in runs[0]["calls"]:
        rows = {int(n): {k: sum((r["calls"][case][n][k] for r in runs), []) for k in ("total", "first", "bare")}
                for n in runs[0]["calls"][case]}
        sizes = sorted(rows)
        per_chunk, per_call = fit(sizes, [statistics.median(rows[n]["total"]) for n in sizes],
                                  [median_error(rows[n]["total"]) ** -2 for n in sizes])
        largest = sizes[-1]
        table[case] = {
            "per_chunk_us": per_chunk * 1e6, "per_call_us": per_call * 1e6,
            "ttfc_us": statistics.median(rows[sizes[0]]["first"]) * 1e6,
            "largest": largest, "largest_diff": spread(rows[largest]["total"]),
            "largest_bare_ms": statistics.median(rows[largest]["bare"]) * 1e3,
            "smallest_diff": spread(rows[sizes[0]]["total"]),
        }
    memory = {}
    for sdk in ("anthropic", "openai"):
        growth = []
        for r in runs:
            m = r["memory"][sdk]
            growth.append(((m["instrumented"]["20000"] - m["instrumented"]["1000"])
                           - (m["bare"]["20000"] - m["bare"]["1000"])) / 1024)
        memory[sdk] = statistics.median(growth)
    floor = sum((r.get("floor", []) for r in runs), [])
    in_situ = {case: statistics.median(sum((r["floor_in_situ"][case] for r in runs), [])) * 1e6
               for case in runs[0].get("floor_in_situ", {})}
    for case, floor_us in in_situ.items():
        table[case]["floor_us"] = floor_us
    engine = {case: sum((r["engine"][case] for r in runs), []) for case in runs[0].get("engine", {})}
    return {"cases": table, "memory": memory, "floor": floor, "engine": engine}


def markdown(results: dict[str, dict[str, Any]], raw: dict[str, list[dict[str, Any]]], command: str,
             exporter: str) -> str:
    import anthropic
    import openai
    import opentelemetry.sdk.version as otel

    import llmtrace

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        "# Benchmark results", "",
        f"Command: `{command}` · exporter: {exporter} · {time.strftime('%Y-%m-%d')}  ",
        f"Machine: {cpu}, {os.cpu_count()} CPUs (the worker pinned to one) · Python {platform.python_version()} · "
        f"anthropic {anthropic.__version__} · openai {openai.__version__} · opentelemetry-sdk {otel.__version__} · "
        f"llmtrace {llmtrace.__version__}", "",
        "Every figure is the instrumented call minus the bare call of the same pair, in the same process "
        "(pairs alternate which goes first). µs/chunk and fixed µs/call are the slope and intercept of the "
        "line through the median differences at 10, 100, 1,000 and 10,000 chunks, each weighted by the inverse "
        "square of its median's standard error; extra TTFC is the median "
        "difference in time to the first item at 10 chunks. The last two columns show the spread: median "
        "(quartiles) of the paired differences, in µs, at the smallest and largest stream.", "",
        "| variant | SDK, call, mode | µs/chunk | fixed µs/call | extra TTFC µs | Δ µs at 10 chunks | "
        "Δ µs at the largest (bare ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, summary in results.items():
        for case, row in summary["cases"].items():
            lines.append(f"| {variant} | {case} | {row['per_chunk_us']:.2f} | {row['per_call_us']:.1f} | "
                         f"{row['ttfc_us']:.1f} | {row['smallest_diff']} | {row['largest_diff']} "
                         f"({row['largest_bare_ms']:.1f}) |")
    lines += ["", "| variant | memory growth at the peak of one stream, 1,000 → 20,000 chunks, over the bare SDK |",
              "|---|---|"]
    for variant, summary in results.items():
        lines.append(f"| {variant} | " + ", ".join(f"{sdk} {kib:.1f} KiB" for sdk, kib in summary["memory"].items())
                     + " |")
    lines += ["", plain_table(raw)]
    if "llmtrace" in results:
        cases = list(results["llmtrace"]["cases"].values())
        ranges = {name: [r[name] for r in cases] for name in ("per_chunk_us", "per_call_us", "ttfc_us")}
        ranges["memory_kib"] = list(results["llmtrace"]["memory"].values())
        lines += ["", "## Targets (llmtrace: best … worst over the call styles; the worst decides)", ""]
        for name, limit in TARGETS.items():
            low, value = min(ranges[name]), max(ranges[name])
            verdict = "met" if value <= limit else f"missed by {value - limit:.1f} ({value / limit:.1f}× the target)"
            lines.append(f"- {name.replace('_', ' ').replace(' us', ' µs')}: {low:.2f} … {value:.2f}, "
                         f"target ≤{limit:g}: **{verdict}**")
        engine = results["llmtrace"].get("engine")
        if engine:
            worst = max(statistics.median(values) for values in engine.values()) * 1e6
            best = min(statistics.median(values) for values in engine.values()) * 1e6
            limit = TARGETS["per_chunk_us"]
            verdict = "met" if worst <= limit else f"missed ({worst / limit:.1f}× the target)"
            lines.append(f"- per chunk, the engine alone (below): {best:.2f} … {worst:.2f}, target ≤{limit:g}: **{verdict}**")
        with_floor = [(case, row) for case, row in results["llmtrace"]["cases"].items() if "floor_us" in row]
        if with_floor:
            ratios = [row["per_call_us"] / row["floor_us"] for _, row in with_floor]
            worst = max(ratios)
            verdict = "met" if worst <= PER_CALL_FLOOR_RATIO else f"missed ({worst:.2f}×)"
            lines.append(f"- per call over the OpenTelemetry floor of the same style: {min(ratios):.2f} … "
                         f"{worst:.2f}×, target ≤{PER_CALL_FLOOR_RATIO:g}×: **{verdict}**")
            lines += ["", "| SDK, call, mode | fixed µs/call | OpenTelemetry floor µs, after a bare call of this "
                          "style | ratio |", "|---|---|---|---|"]
            for (case, row), ratio in zip(with_floor, ratios):
                lines.append(f"| {case} | {row['per_call_us']:.1f} | {row['floor_us']:.1f} | {ratio:.2f} |")
        floor = results["llmtrace"].get("floor")
        if floor:
            lines += ["", f"The OpenTelemetry SDK's own work for one call, with no LLM code (one span with a streamed "
                          f"call's attributes, started and ended, and five histogram records, with these providers): "
                          f"{spread(floor)} µs in a loop of its own (hot caches); the table above measures the same "
                          f"work right after a bare SDK call of each style, where an instrumentation's per-call work "
                          f"actually runs."]
        if engine:
            lines += ["", "Per chunk, the engine alone: the SDK's own stream object over events it parsed beforehand, bare and "
                          f"under llmtrace (proxy, engine, the provider's reader), {ENGINE_ITEMS:,} items a batch, paired "
                          "batches; µs per chunk, median (quartiles). The end-to-end slopes above carry the SDK's own "
                          "per-chunk work (the bare ms column over its chunks) and its noise; this is what llmtrace "
                          "adds per chunk on every call style (the `.stream()` helpers read the same raw stream).", "",
                      "| SDK, mode | µs per chunk |", "|---|---|"]
            for case, values in engine.items():
                lines.append(f"| {case} | {spread(values)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="worker processes per variant (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="up to 1,000 chunks")
    parser.add_argument("--exporter", choices=("memory", "batch"), default="memory")
    parser.add_argument("--variants", default="llmtrace,official", help="comma-separated: llmtrace, official")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from benchmarks/results.json")
    parser.add_argument("--only", choices=("plain",), help="run one part: the plain calls with a 5,000-token prompt "
                                                           "(prints its table; RESULTS.md is left as it is)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        if args.only == "plain":
            print(json.dumps(plain_worker(args.worker, args.exporter)))
        else:
            print(json.dumps(worker(args.worker, [int(s) for s in args.sizes.split(",")], args.exporter)))
        return 0
    sizes = list(QUICK_SIZES if args.quick else SIZES)
    variants = args.variants.split(",")
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if args.only == "plain":
        plain: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for variant in variants:
                plain[variant].append(run_worker(variant, [], args.exporter, cpu, only="plain"))
                print(f"{variant}: run {r + 1}/{args.rounds} done", file=sys.stderr)
        print(plain_table(plain))
        return 0
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    if args.report_only:
        saved = json.loads((HERE / "results.json").read_text())
        raw, cold = saved.get("variants", saved), saved.get("cold_start")
    else:
        for r in range(args.rounds):
            for variant in variants:
                raw[variant].append(run_worker(variant, sizes, args.exporter, cpu))
                print(f"{variant}: run {r + 1}/{args.rounds} done", file=sys.stderr)
        cold = cold_start()
        (HERE / "results.json").write_text(json.dumps({"variants": raw, "cold_start": cold}))
    command = ("python benchmarks/run.py " + " ".join(a for a in sys.argv[1:] if a != "--report-only")).strip()
    report = markdown({v: summarise(runs) for v, runs in raw.items()}, raw, command, args.exporter)
    report += "\n".join((cold_start_lines(cold) if cold else []) + callgrind_lines()) + "\n"
    Path(args.output).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
