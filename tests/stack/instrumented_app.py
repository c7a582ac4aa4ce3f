"""An instrumented app for the collector tests, run as its own process: `llmtrace.instrument()` with no providers,
so llmtrace sets up its default OTLP exporters from the OTEL_* variables the test gives it, then streamed Anthropic
and OpenAI calls to the emulator at LLMTRACE_TEST_EMULATOR, on command.

Commands on stdin, one a line; each is answered with one JSON line on stdout:

    calls MODE N    N rounds, then {"totals": ...}: the tokens the SDKs reported, per model and token type
    loop MODE       rounds (one every PACE seconds) until the next command, every fifth with a stream the provider
                    breaks off and one the app abandons; answered {"looping": MODE} at once
    (end of input)  stops, then exits 0 once the exporters have sent what is left

MODE `cached`: the same long system prompt on every call, so the providers read it from their caches.
MODE `busted`: the Anthropic system prompt changes on every call (a timestamp in it), so every Anthropic call
writes the cache and none reads it; OpenAI calls stay cached.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import defaultdict
from typing import Any

import llmtrace

ANTHROPIC_MODEL, OPENAI_MODEL = "claude-haiku-4-5", "gpt-4o-mini"
# Over the 4,096-token minimum the emulator (like the API) caches for claude-haiku-4-5, and over OpenAI's 1,024.
SYSTEM = "You answer questions about the billing API of Example Corp, briefly and precisely. " * 400
QUESTION = "Is invoice 42 paid?"
PACE = 0.2  # seconds between looped rounds: steady traffic without taking a core of a 2-core machine


class App:
    def __init__(self, base_url: str) -> None:
        import anthropic
        import openai

        self.anthropic = anthropic.Anthropic(base_url=base_url, api_key="unused", max_retries=0)
        self.openai = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)
        self.totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.calls = 0

    def _add(self, model: str, **tokens: int) -> None:
        for kind, count in tokens.items():
            self.totals[model][kind] += count

    def anthropic_call(self, system: str) -> None:
        with self.anthropic.messages.stream(
                model=ANTHROPIC_MODEL, max_tokens=64,
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": QUESTION}]) as stream:
            for _ in stream.text_stream:
                pass
            usage = stream.get_final_message().usage
        read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
        self._add(ANTHROPIC_MODEL, input=usage.input_tokens + read + write, cache_read=read, cache_write=write,
                  output=usage.output_tokens)

    def openai_call(self) -> None:
        stream = self.openai.chat.completions.create(
            model=OPENAI_MODEL, stream=True, stream_options={"include_usage": True}, max_tokens=64,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}])
        usage = None
        for chunk in stream:
            usage = chunk.usage or usage
        assert usage is not None, "the stream carried no usage"
        details = usage.prompt_tokens_details
        self._add(OPENAI_MODEL, input=usage.prompt_tokens, cache_read=(details.cached_tokens or 0) if details else 0,
                  cache_write=0, output=usage.completion_tokens)  # OpenAI bills no cache writes

    def failing_calls(self) -> None:
        """An Anthropic stream the provider breaks off with its `overloaded_error` event, and an OpenAI stream
        the app stops reading after the first chunk (their tokens are not in the totals)."""
        import anthropic

        try:
            with self.anthropic.messages.stream(
                    model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": QUESTION}],
                    extra_headers={"x-llmtrace-fault": "error-event"}) as stream:
                for _ in stream:
                    pass
        except anthropic.APIStatusError:
            pass
        stream = self.openai.chat.completions.create(
            model=OPENAI_MODEL, stream=True, messages=[{"role": "user", "content": QUESTION}])
        next(iter(stream))
        stream.close()

    def round(self, mode: str, faults: bool = False) -> None:
        self.calls += 1
        system = SYSTEM if mode == "cached" else f"Request {os.getpid()}-{self.calls}. {SYSTEM}"
        self.anthropic_call(system)
        self.openai_call()
        if faults and self.calls % 5 == 1:
            self.failing_calls()


def answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    llmtrace.instrument()  # no providers: the default OTLP exporters
    app = App(os.environ["LLMTRACE_TEST_EMULATOR"])
    stop_loop = threading.Event()
    loop: threading.Thread | None = None
    failure: list[BaseException] = []

    def run_loop(mode: str) -> None:
        try:
            while not stop_loop.is_set():
                app.round(mode, faults=True)
                stop_loop.wait(PACE)
        except BaseException as exc:  # reported on the next command, and by the exit status
            failure.append(exc)

    def end_loop() -> None:
        nonlocal loop
        if loop is not None:
            stop_loop.set()
            loop.join()
            loop = None
        if failure:
            raise failure[0]

    for line in sys.stdin:
        command, *args = line.split()
        end_loop()
        if command == "calls":
            mode, count = args[0], int(args[1])
            for _ in range(count):
                app.round(mode)
            answer({"totals": app.totals})
        elif command == "loop":
            stop_loop.clear()
            loop = threading.Thread(target=run_loop, args=(args[0],), daemon=True)
            loop.start()
            answer({"looping": args[0]})
        else:
            raise SystemExit(f"unknown command {command!r}")
    end_loop()


if __name__ == "__main__":
    main()
