"""Where the examples send requests: the real APIs by default (keys from ANTHROPIC_API_KEY / OPENAI_API_KEY),
the local emulator with `LLMTRACE_EMULATOR=1` (no key needed), or any compatible server with `--base-url`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Endpoints:
    anthropic: str | None  # None: the SDK's default, the real API
    openai: str | None
    emulated: bool


@contextmanager
def endpoints(description: str, default_base_url: str | None = None) -> Iterator[Endpoints]:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", default=default_base_url,
                        help="send the requests to this server instead (e.g. http://localhost:11434/v1)")
    args = parser.parse_args()
    if os.environ.get("LLMTRACE_EMULATOR") == "1":
        try:
            from llmtrace.emulator import EmulatorConfig, run_emulator
        except ImportError as exc:
            raise SystemExit(f"LLMTRACE_EMULATOR=1 needs the emulator extra ({exc.name} is missing): "
                             "pip install 'llmtrace-otel[emulator]'") from None

        os.environ.setdefault("ANTHROPIC_API_KEY", "emulator")
        os.environ.setdefault("OPENAI_API_KEY", "emulator")
        with run_emulator(EmulatorConfig(time_to_first_token=0.05, seconds_per_chunk=0.005)) as emulator:
            yield Endpoints(emulator.anthropic_base_url, emulator.openai_base_url, emulated=True)
    else:
        yield Endpoints(args.base_url, args.base_url, emulated=False)
