"""A local provider emulator: the Anthropic Messages API and the OpenAI Chat Completions and Responses APIs,
streamed and not, with their prompt-cache semantics, realistic pacing and faults on demand.

    with run_emulator() as emulator:
        client = anthropic.Anthropic(base_url=emulator.anthropic_base_url, api_key="unused")

Needs the `emulator` extra (Starlette, uvicorn), imported on first use of these names, so that
`llmtrace emulator --help` works without it. See docs/emulator.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._common import FAULT_HEADER, FAULTS

__all__ = ["FAULTS", "FAULT_HEADER", "Emulator", "EmulatorConfig", "RunningEmulator", "run_emulator"]
_LAZY = {"Emulator": ".app", "EmulatorConfig": ".app", "RunningEmulator": ".server", "run_emulator": ".server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
