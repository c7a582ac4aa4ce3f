"""A local provider emulator: the Anthropic Messages API and the OpenAI Chat Completions and Responses APIs,
streamed and not, with their prompt-cache semantics, realistic pacing and faults on demand.

    with run_emulator() as emulator:
        client = anthropic.Anthropic(base_url=emulator.anthropic_base_url, api_key="unused")

See docs/emulator.md.
"""

from ._common import FAULT_HEADER, FAULTS
from .app import Emulator, EmulatorConfig
from .server import RunningEmulator, run_emulator

__all__ = ["FAULTS", "FAULT_HEADER", "Emulator", "EmulatorConfig", "RunningEmulator", "run_emulator"]
