"""Every fault the emulator injects, through the instrumented SDKs: the app sees the provider's behaviour,
and the span carries the contract's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from llmtrace.emulator import FAULT_HEADER, FAULTS, EmulatorConfig, run_emulator
from tests.emulator.conftest import clients

MESSAGES = [{"role": "user", "content": "hi"}]
STYLES: dict[str, Callable[[Any, Any, dict[str, str]], Any]] = {
    "anthropic-create": lambda a, o, h: a.messages.create(model="claude-haiku-4-5", max_tokens=30, stream=True,
                                                          messages=MESSAGES, extra_headers=h),
    "anthropic-stream": lambda a, o, h: a.messages.stream(model="claude-haiku-4-5", max_tokens=30,
                                                          messages=MESSAGES, extra_headers=h),
    "chat": lambda a, o, h: o.chat.completions.create(model="gpt-4o-mini", stream=True, messages=MESSAGES,
                                                      stream_options={"include_usage": True}, extra_headers=h),
    "responses": lambda a, o, h: o.responses.create(model="gpt-4o-mini", stream=True, input="hi", extra_headers=h),
}
OPENAI_TYPES = {"rate-limit": "RateLimitError", "server-error": "InternalServerError", "error-event": "server_error",
                "disconnect": "APIConnectionError", "malformed": "JSONDecodeError"}
ANTHROPIC_TYPES = {"rate-limit": "RateLimitError", "server-error": "InternalServerError", "error-event": "overloaded_error",
                   "disconnect": "RemoteProtocolError", "malformed": "JSONDecodeError"}


def expected(style: str, fault: str) -> tuple[str, str | None]:
    if fault in ("unknown-event", "slow-first-token") or (fault == "no-usage" and style == "chat"):
        return "completed", None
    if fault == "no-usage":  # Messages and Responses end before their terminal event
        return "error", "stream_truncated"
    return "error", (OPENAI_TYPES if style in ("chat", "responses") else ANTHROPIC_TYPES)[fault]


def consume(style: str, a: Any, o: Any, headers: dict[str, str], is_async: bool) -> tuple[list[str], str | None]:
    """What the app sees: the event types it iterated, and the exception that ended the call."""
    seen: list[str] = []

    def kind(item: Any) -> str:
        return getattr(item, "type", None) or getattr(item, "object", "")

    async def run_async() -> None:
        opened = STYLES[style](a, o, headers)
        if style == "anthropic-stream":
            async with opened as stream:
                seen.extend([kind(e) async for e in stream])
        else:
            seen.extend([kind(e) async for e in await opened])

    def run_sync() -> None:
        opened = STYLES[style](a, o, headers)
        if style == "anthropic-stream":
            with opened as stream:
                seen.extend(kind(e) for e in stream)
        else:
            seen.extend(kind(e) for e in opened)

    try:
        asyncio.run(run_async()) if is_async else run_sync()
    except Exception as exc:  # noqa: BLE001 - the app's view includes the exception
        return seen, type(exc).__name__
    return seen, None


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "slow-first-token"])
@pytest.mark.parametrize("style", list(STYLES))
def test_fault_through_instrumented_sdks(emulator: Any, telemetry: Any, mode: str, style: str, fault: str) -> None:
    import llmtrace

    is_async = mode == "async"
    headers = {FAULT_HEADER: fault}
    llmtrace.uninstrument()
    bare = consume(style, *clients(emulator, is_async), headers, is_async)
    telemetry.instrument()
    traced = consume(style, *clients(emulator, is_async), headers, is_async)
    assert traced == bare

    [span] = telemetry.spans()
    outcome, error_type = expected(style, fault)
    assert span.attributes["llmtrace.stream.outcome"] == outcome
    assert span.attributes.get("error.type") == error_type
    assert (span.status.status_code.name == "ERROR") == (outcome == "error")
    if fault == "no-usage":
        assert span.attributes["llmtrace.usage.source"] == "estimated"


def test_rate_limits_are_retried_by_the_sdk_after_retry_after(emulator: Any, telemetry: Any) -> None:
    a, _ = clients(emulator, max_retries=2)
    with pytest.raises(Exception, match="429"):
        a.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES,
                          extra_headers={FAULT_HEADER: "rate-limit"})
    [span] = telemetry.spans()  # one call, three attempts: one span
    assert span.attributes["error.type"] == "RateLimitError"


def test_slow_first_token(telemetry: Any) -> None:
    config = EmulatorConfig(time_to_first_token=0.02, seconds_per_chunk=0.0, slow_first_token_factor=10)
    with run_emulator(config) as emulator:
        a, o = clients(emulator)
        consume("anthropic-create", a, o, {}, False)
        consume("chat", a, o, {FAULT_HEADER: "slow-first-token"}, False)
    normal, slow = telemetry.spans()
    # asyncio.sleep never wakes early: these lower bounds hold on any machine
    assert normal.attributes["gen_ai.response.time_to_first_chunk"] >= 0.02
    assert slow.attributes["gen_ai.response.time_to_first_chunk"] >= 0.2
    assert slow.attributes["llmtrace.stream.outcome"] == "completed"


def test_fault_rates_inject_faults_into_a_share_of_requests(telemetry: Any) -> None:
    config = EmulatorConfig(time_to_first_token=0.0, seconds_per_chunk=0.0, fault_rates={"error-event": 0.5}, seed=3)
    with run_emulator(config) as emulator:
        a, o = clients(emulator)
        ends = [consume("chat", a, o, {}, False)[1] for _ in range(40)]
    assert 5 < ends.count("APIError") < 35 and ends.count(None) == 40 - ends.count("APIError")
    with pytest.raises(ValueError, match="unknown faults"):
        EmulatorConfig(fault_rates={"meteor": 1.0})
