"""`llmtrace demo`: run the support-agent workload instrumented, show it live, summarise, write the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import llmtrace

from .. import _telemetry
from .recorder import Recorder
from .workload import SCENARIOS, Agent, Settings

if TYPE_CHECKING:
    from rich.console import Console

TTL_SPEEDUP = 200  # ttl-expiry: the caches' clocks run this much faster, so a 5-minute TTL lapses in 1.5 s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of traffic; the scenario's change comes half-way (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second (default: %(default)s)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="cache-bust",
                        help="what goes wrong half-way (default: %(default)s)")
    parser.add_argument("--otlp-endpoint", metavar="URL",
                        help="also send spans and metrics over OTLP/HTTP, e.g. http://localhost:4318 (the stack)")
    parser.add_argument("--report", default="llmtrace-report.html", metavar="PATH",
                        help="where to write the HTML report (default: %(default)s)")
    parser.add_argument("--no-live", action="store_true", help="no live view (for CI and logs): the summary only")
    parser.add_argument("--real", action="store_true",
                        help="call the real APIs (ANTHROPIC_API_KEY and OPENAI_API_KEY) instead of the emulator")
    parser.add_argument("--anthropic-model", default="claude-haiku-4-5")
    parser.add_argument("--openai-model", default="gpt-5-mini")


def run(args: argparse.Namespace) -> int:
    # the demo extra's modules (rich, plotly), imported here so that `llmtrace demo --help` needs none of them
    from rich.console import Console

    from . import report, view

    if args.real and args.scenario in ("ttl-expiry", "faults"):
        return _error(f"--scenario {args.scenario} needs the emulator (it bends time or injects faults); use "
                      "steady or cache-bust with --real")
    missing_keys = [k for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY") if args.real and not os.environ.get(k)]
    if missing_keys:
        return _error(f"--real calls the real APIs: set {' and '.join(missing_keys)}")
    if not (0 < args.duration < float("inf") and 0 < args.rate < float("inf")):
        return _error("--duration and --rate must be positive numbers")
    report_path = Path(args.report).expanduser().resolve()
    problem = report.unwritable(report_path)
    if problem:  # said now, not after the whole run
        return _error(f"cannot write the report to {report_path}: {problem}")
    console = Console()
    recorder = Recorder()
    settings = Settings(args.duration, args.rate, args.scenario, args.anthropic_model, args.openai_model)
    speedup = TTL_SPEEDUP if args.scenario == "ttl-expiry" else 1
    with _telemetry_to(recorder, args.otlp_endpoint), _cache_clock(speedup) as clock:
        with _providers(args.real, clock) as (anthropic_client, openai_client, where):
            console.print(f"[bold]llmtrace demo[/]: {where}; scenario [bold]{args.scenario}[/] after "
                          f"{args.duration / 2:.0f} s of {args.duration:.0f} s")
            agent = Agent(anthropic_client, openai_client, settings, recorder)
            asyncio.run(_run(agent, recorder, console, args))
    calls = recorder.snapshot()
    if not calls:
        console.print("llmtrace demo: no call finished; nothing to report")
        return 1
    console.print(view.summary(calls, args.scenario))  # first: a report that cannot be written loses nothing
    try:
        report.write(calls, report_path, args.scenario, recorder.changed_at)
    except OSError as exc:
        return _error(f"could not write the report to {report_path}: {exc.strerror or exc}", status=1)
    console.print(f"[bold]report: {report_path}[/]")
    return 0


def _error(message: str, status: int = 2) -> int:
    print(f"llmtrace demo: {message}", file=sys.stderr)
    return status


async def _run(agent: Agent, recorder: Recorder, console: Console, args: argparse.Namespace) -> None:
    try:
        await _show(agent, recorder, console, args)
    finally:  # their connections belong to this event loop: closed in it, not left to the garbage collector
        await agent.anthropic.close()
        await agent.openai.close()


async def _show(agent: Agent, recorder: Recorder, console: Console, args: argparse.Namespace) -> None:
    from rich.live import Live

    from . import view

    if args.no_live:
        await agent.run()
        return

    def frame() -> Any:
        # room for the sparklines: the terminal's width less the model and hit-rate columns
        return view.live(recorder.snapshot(), args.scenario, recorder.changed, recorder.elapsed(), args.duration,
                         len(agent.in_flight), max_marks=min(view.MAX_MARKS, console.width - 36))

    with Live(frame(), console=console, refresh_per_second=4, transient=True) as screen:
        work = asyncio.ensure_future(agent.run())
        while not work.done():
            screen.update(frame())
            await asyncio.sleep(0.25)
        await work


@contextlib.contextmanager
def _telemetry_to(recorder: Recorder, otlp_endpoint: str | None) -> Iterator[None]:
    """llmtrace's spans to the recorder (and the stack); its metrics to the stack, when there is one."""
    resource = Resource.create({"service.name": "llmtrace-demo"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(recorder))
    readers = []
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        base = otlp_endpoint.rstrip("/")
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
                                                     export_interval_millis=5000))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    llmtrace.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield
    finally:
        llmtrace.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()


@contextlib.contextmanager
def _cache_clock(speedup: float) -> Iterator[Callable[[], float]]:
    """One clock for the emulator's cache and llmtrace's prefix memory; faster than real time for ttl-expiry."""
    if speedup == 1:
        yield time.monotonic
        return
    origin = time.monotonic()

    def clock() -> float:
        return origin + (time.monotonic() - origin) * speedup

    real, _telemetry.monotonic = _telemetry.monotonic, clock  # the demo's own process: safe to bend
    try:
        yield clock
    finally:
        _telemetry.monotonic = real


@contextlib.contextmanager
def _providers(real: bool, clock: Callable[[], float]) -> Iterator[tuple[Any, Any, str]]:
    import anthropic
    import openai

    if real:
        yield anthropic.AsyncAnthropic(), openai.AsyncOpenAI(), "real Anthropic and OpenAI APIs"
        return
    from ..emulator import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(time_to_first_token=0.25, seconds_per_chunk=0.012, clock=clock)) as emulator:
        yield (anthropic.AsyncAnthropic(base_url=emulator.anthropic_base_url, api_key="emulator"),
               openai.AsyncOpenAI(base_url=emulator.openai_base_url, api_key="emulator"),
               f"local emulator at {emulator.url}")
