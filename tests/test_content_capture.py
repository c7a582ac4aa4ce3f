"""Content capture: on, prompts and output text go on the span up to a cap; off, llmtrace keeps no message
text anywhere once the call has ended — not on the span, not on the stream proxy or its call record. (While
an OpenAI stream that asked for no usage is read, the last few hundred pieces of its output wait in memory to
be counted by the tokenizer: tests/test_tokens.py bounds that.)"""

from __future__ import annotations

from typing import Any

import pytest

from llmtrace._record import CallRecord
from tests import sse
from tests.conftest import FakeAPI, make_anthropic, make_openai

PROMPT_MARK = "zebra-prompt-7731"
OUTPUT_MARK = "quokka-output-4410"
SYSTEM_MARK = "narwhal-system-0952"


def stream_anthropic(output: list[str]) -> Any:
    api = FakeAPI().sse(sse.anthropic(output))
    client = make_anthropic(api)
    return client.messages.create(model="claude-haiku-4-5", max_tokens=50, stream=True, system=SYSTEM_MARK,
                                  messages=[{"role": "user", "content": f"Tell me about {PROMPT_MARK}"}])


def stream_openai(output: list[str]) -> Any:
    api = FakeAPI().sse(sse.openai_chat(output))
    client = make_openai(api)
    return client.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[
        {"role": "system", "content": SYSTEM_MARK}, {"role": "user", "content": f"Tell me about {PROMPT_MARK}"}])


OPENERS = {"anthropic": stream_anthropic, "openai": stream_openai}


def strings_on(span: Any) -> list[str]:
    values = [str(v) for v in span.attributes.values()]
    values += [str(v) for event in span.events for v in (event.attributes or {}).values()]
    return values


def llmtrace_owned_strings(proxy: Any) -> list[str]:
    """Every string the stream proxy and its call record hold, other than references to the app's own request."""
    record: CallRecord = proxy._self_record
    found: list[str] = []
    stack: list[Any] = [getattr(record, slot, None) for slot in CallRecord.__slots__ if slot != "request"]
    stack += [v for k, v in vars(proxy).items() if k not in ("_self_record", "_self_events")]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
        elif type(item).__module__.startswith("llmtrace") and hasattr(item, "__slots__"):
            stack.extend(getattr(item, s, None) for s in item.__slots__)
    return found


@pytest.mark.parametrize("provider", list(OPENERS))
def test_off_keeps_no_text(telemetry: Any, provider: str) -> None:
    stream = OPENERS[provider]([f"{OUTPUT_MARK} part {i} " for i in range(50)])
    record = stream._self_record
    assert record.request is not None and record.capture is None
    received = [item for item in stream]
    assert received
    for text in llmtrace_owned_strings(stream):  # mid-life, then after the end
        assert PROMPT_MARK not in text and OUTPUT_MARK not in text and SYSTEM_MARK not in text
    span = telemetry.span()
    assert not [v for v in strings_on(span) if PROMPT_MARK in v or OUTPUT_MARK in v or SYSTEM_MARK in v]
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(span.attributes)


@pytest.mark.parametrize("provider", list(OPENERS))
def test_on_records_prompts_and_output(telemetry: Any, provider: str) -> None:
    llmtrace_reinstrument(telemetry, capture_content=True)
    for _ in OPENERS[provider]([OUTPUT_MARK, " and more"]):
        pass
    attrs = telemetry.span().attributes
    assert PROMPT_MARK in attrs["gen_ai.input.messages"]
    # Anthropic's `system` parameter; OpenAI chat's system prompt is one of the messages
    assert SYSTEM_MARK in attrs["gen_ai.system_instructions" if provider == "anthropic" else "gen_ai.input.messages"]
    assert attrs["gen_ai.output.messages"] == f"{OUTPUT_MARK} and more"


@pytest.mark.parametrize("provider", list(OPENERS))
def test_on_is_capped(telemetry: Any, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTRACE_CAPTURE_MAX_CHARS", "100")
    llmtrace_reinstrument(telemetry, capture_content=True)
    stream = OPENERS[provider]([f"{OUTPUT_MARK} {i:04d} " for i in range(2000)])  # ~48,000 characters
    for _ in stream:
        pass
    captured = stream._self_record.capture
    assert sum(len(piece) for piece in captured) == 100  # what the record kept while streaming: the cap
    attrs = telemetry.span().attributes
    assert attrs["gen_ai.output.messages"].endswith("…[truncated]")
    assert len(attrs["gen_ai.output.messages"]) == 100 + len("…[truncated]")
    assert len(attrs["gen_ai.input.messages"]) <= 100 + len("…[truncated]")


def test_env_switches_capture_on(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTRACE_CAPTURE_CONTENT", "true")
    llmtrace_reinstrument(telemetry)
    for _ in stream_openai([OUTPUT_MARK]):
        pass
    assert telemetry.span().attributes["gen_ai.output.messages"] == OUTPUT_MARK


def llmtrace_reinstrument(telemetry: Any, **kwargs: Any) -> None:
    import llmtrace

    llmtrace.uninstrument()
    telemetry.instrument(**kwargs)
