from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmtrace.emulator import EmulatorConfig, RunningEmulator, run_emulator


class FakeClock:
    """The emulator cache's time, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


CLOCK = FakeClock()


@pytest.fixture(scope="session")
def _served() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(time_to_first_token=0.0, seconds_per_chunk=0.0, retry_after=0.001, clock=CLOCK)
    with run_emulator(config) as running:
        yield running


@pytest.fixture
def emulator(_served: RunningEmulator) -> RunningEmulator:
    _served.emulator.clear_caches()
    return _served


@pytest.fixture
def clock() -> FakeClock:
    return CLOCK


def clients(emulator: RunningEmulator, is_async: bool = False, **kwargs: Any) -> tuple[Any, Any]:
    """Unmodified SDK clients pointed at the emulator: (anthropic, openai)."""
    import anthropic
    import openai

    kwargs.setdefault("max_retries", 0)
    a = (anthropic.AsyncAnthropic if is_async else anthropic.Anthropic)(
        base_url=emulator.anthropic_base_url, api_key="unused", **kwargs)
    o = (openai.AsyncOpenAI if is_async else openai.OpenAI)(base_url=emulator.openai_base_url, api_key="unused",
                                                            **kwargs)
    return a, o
