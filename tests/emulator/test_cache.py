"""The emulator's prompt cache behaves as the providers document it."""

from __future__ import annotations

from typing import Any

import pytest

from llmtrace._tokens import count_tokens
from tests.emulator.conftest import FakeClock, clients

HANDBOOK = " ".join(f"Rule {n}: quote the plan's limit from section {n % 17}." for n in range(600))  # ~7k tokens
SHORT = "Answer briefly."


def ask(a: Any, system: Any, model: str = "claude-haiku-4-5", question: str = "hi", **kwargs: Any) -> Any:
    return a.messages.create(model=model, max_tokens=10, system=system,
                             messages=[{"role": "user", "content": question}], **kwargs).usage


def cached(text: str, ttl: str | None = None) -> list[dict[str, Any]]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": control}]


def test_below_minimum_never_caches(emulator: Any) -> None:
    a, _ = clients(emulator)
    # claude-haiku-4-5 caches from 4,096 tokens; claude-sonnet-4-6 from 1,024 (llmtrace/data/cache_minimums.json)
    text = HANDBOOK[: len(HANDBOOK) * 3000 // count_tokens(HANDBOOK)]
    assert 1024 < count_tokens(text) < 4096
    for _ in range(2):
        usage = ask(a, cached(text))
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
        assert usage.input_tokens >= count_tokens(text)
    assert ask(a, cached(text), model="claude-sonnet-4-6").cache_creation_input_tokens == count_tokens(text)


def test_second_call_within_ttl_reads_and_after_ttl_writes_again(emulator: Any, clock: FakeClock) -> None:
    a, _ = clients(emulator)
    first = ask(a, cached(HANDBOOK))
    assert first.cache_creation_input_tokens == count_tokens(HANDBOOK) and first.cache_read_input_tokens == 0
    clock.advance(299)
    second = ask(a, cached(HANDBOOK), question="another question")  # the breakpoint is on the system prompt
    assert (second.cache_read_input_tokens, second.cache_creation_input_tokens) == (first.cache_creation_input_tokens, 0)
    clock.advance(299)  # the read refreshed the TTL: 598 s after the write, still cached
    assert ask(a, cached(HANDBOOK)).cache_read_input_tokens == first.cache_creation_input_tokens
    clock.advance(301)
    lapsed = ask(a, cached(HANDBOOK))
    assert (lapsed.cache_read_input_tokens, lapsed.cache_creation_input_tokens) == (0, first.cache_creation_input_tokens)


def test_one_hour_ttl_in_the_breakdown_and_kept_past_five_minutes(emulator: Any, clock: FakeClock) -> None:
    a, _ = clients(emulator)
    usage = ask(a, cached(HANDBOOK, "1h"))
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens > 4096
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    clock.advance(1800)
    assert ask(a, cached(HANDBOOK, "1h")).cache_read_input_tokens == usage.cache_creation_input_tokens
    clock.advance(3601)
    assert ask(a, cached(HANDBOOK, "1h")).cache_read_input_tokens == 0


def test_a_model_change_misses(emulator: Any) -> None:
    a, _ = clients(emulator)
    ask(a, cached(HANDBOOK), model="claude-sonnet-4-6")
    other = ask(a, cached(HANDBOOK), model="claude-opus-4-6")
    assert other.cache_read_input_tokens == 0 and other.cache_creation_input_tokens > 0


def test_an_edited_system_prompt_misses_and_tools_are_part_of_the_prefix(emulator: Any) -> None:
    a, _ = clients(emulator)
    tool = {"name": "lookup", "description": "Look up a customer.", "input_schema": {"type": "object"}}
    ask(a, cached(HANDBOOK), tools=[tool])
    assert ask(a, cached("Current time: 12:00\n" + HANDBOOK), tools=[tool]).cache_read_input_tokens == 0
    assert ask(a, cached(HANDBOOK), tools=[{**tool, "description": "Find a customer."}]).cache_read_input_tokens == 0
    assert ask(a, cached(HANDBOOK), tools=[tool]).cache_read_input_tokens > 0


def test_breakpoints_read_the_longest_cached_prefix_and_write_the_rest(emulator: Any) -> None:
    a, _ = clients(emulator)
    system = cached(HANDBOOK)
    turn = [{"role": "user", "content": [{"type": "text", "text": HANDBOOK[:4000],
                                          "cache_control": {"type": "ephemeral"}}]}]
    ask(a, system)
    usage = a.messages.create(model="claude-haiku-4-5", max_tokens=10, system=system, messages=turn).usage
    assert usage.cache_read_input_tokens == count_tokens(HANDBOOK)
    assert usage.cache_creation_input_tokens == count_tokens(HANDBOOK[:4000])


def test_top_level_cache_control_marks_the_last_block(emulator: Any) -> None:
    a, _ = clients(emulator)
    question = "Summarise section 3."
    first = ask(a, HANDBOOK, question=question, cache_control={"type": "ephemeral"})
    assert first.cache_creation_input_tokens == count_tokens(HANDBOOK) + count_tokens(question)
    assert ask(a, HANDBOOK, question=question, cache_control={"type": "ephemeral"}).cache_read_input_tokens > 0
    assert ask(a, HANDBOOK, question=question).cache_read_input_tokens == 0  # nothing asked, nothing cached


def test_diagnostics_name_what_changed(emulator: Any) -> None:
    a, _ = clients(emulator)

    def create(system: str, previous: str | None, model: str = "claude-sonnet-4-6") -> Any:
        return a.messages.create(model=model, max_tokens=5, system=cached(system),
                                 messages=[{"role": "user", "content": "hi"}],
                                 diagnostics={"previous_message_id": previous})

    first = create(HANDBOOK, None)
    assert first.diagnostics.cache_miss_reason is None
    assert create(HANDBOOK, first.id).diagnostics.cache_miss_reason is None  # fully read: nothing to explain
    edited = create("v2 " + HANDBOOK, first.id).diagnostics.cache_miss_reason
    assert edited.type == "system_changed" and edited.cache_missed_input_tokens > 1000
    assert create(HANDBOOK, first.id, model="claude-opus-4-6").diagnostics.cache_miss_reason.type == "model_changed"
    assert create("v3 " + HANDBOOK, "msg_unknown").diagnostics.cache_miss_reason.type == "previous_message_not_found"


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_openai_caches_prompts_from_1024_tokens_in_128_token_steps(emulator: Any, clock: FakeClock, api: str) -> None:
    _, o = clients(emulator)

    def prompt_usage(system: str, question: str = "hi") -> tuple[int, int]:
        if api == "chat":
            usage = o.chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "system", "content": system}, {"role": "user", "content": question}]).usage
            return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens
        usage = o.responses.create(model="gpt-4o-mini", instructions=system, input=question).usage
        return usage.input_tokens, usage.input_tokens_details.cached_tokens

    total, cached_tokens = prompt_usage(HANDBOOK)
    assert cached_tokens == 0
    total, cached_tokens = prompt_usage(HANDBOOK, "a different question")
    assert cached_tokens >= 1024 and (cached_tokens - 1024) % 128 == 0 and total - cached_tokens < 128 + 20
    short = HANDBOOK[:2000]
    assert count_tokens(short) < 1024
    prompt_usage(short)
    assert prompt_usage(short)[1] == 0
    clock.advance(301)
    assert prompt_usage(HANDBOOK)[1] == 0
