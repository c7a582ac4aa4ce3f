"""Estimated usage: an OpenAI stream that asked for no usage has its output counted by the installed tokenizer,
which loads off the app's thread and never counts towards a call's recorded duration."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmtrace import _tokens
from tests import sse
from tests.conftest import make_openai, run
from tests.test_calls import O, consume

WORDS = ("Rotate", " the", " key", " under", " Settings", " →", " API", " keys;", " it", " takes", " effect",
         " within", " 5", " minutes.", " Naïve", " clients", " retry", " 429s", " (see", " §12).", "\n")


def answer(pieces: int) -> list[str]:
    return [WORDS[i % len(WORDS)] for i in range(pieces)]


def chat_without_usage(text: list[str]) -> list[sse.Event]:
    return sse.openai_chat(text, usage=False)


def completions_without_usage(text: list[str]) -> list[sse.Event]:
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1700000000, "model": "gpt-3.5-turbo-instruct"}
    chunks = [dict(base, choices=[{"index": 0, "text": t, "logprobs": None, "finish_reason": None}]) for t in text]
    chunks.append(dict(base, choices=[{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]))
    return [(None, c) for c in chunks] + [(None, "[DONE]")]


@pytest.mark.parametrize("pieces", [12, 40, 1500])  # one chunk's worth of batches, and several
def test_output_of_a_chat_stream_without_usage_is_counted_by_the_tokenizer(api, telemetry, mode, pieces):
    text = answer(pieces)
    consume(mode, run(make_openai(api.sse(chat_without_usage(text)), mode == "async").chat.completions.create(
        **O, stream=True)))
    attrs = telemetry.span().attributes
    true_count = len(_tokens.encode("".join(text)))  # the tokenizer's own count of the whole answer
    assert _tokens.tokenizer_name() != "chars/4"
    assert attrs["llmtrace.usage.source"] == "estimated"
    assert attrs["gen_ai.usage.output_tokens"] == true_count
    assert true_count != -(-len("".join(text)) // 4)  # what four characters a token would have said


def test_legacy_completions_stream_without_usage(api, telemetry, mode):
    text = answer(300)
    client = make_openai(api.sse(completions_without_usage(text)), mode == "async")
    consume(mode, run(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True)))
    assert telemetry.span().attributes["gen_ai.usage.output_tokens"] == len(_tokens.encode("".join(text)))


def test_a_stream_that_asked_for_usage_and_lost_it_keeps_the_character_estimate(api, telemetry):
    """Only streams known from their start to carry no usage keep text to count; a cut one is estimated."""
    events = sse.openai_chat(answer(40), usage=True)[:-2]  # the usage chunk and [DONE] never come
    stream = make_openai(api.sse(events)).chat.completions.create(**O, stream=True,
                                                                   stream_options={"include_usage": True})
    assert stream._self_record.out_text is None
    list(stream)
    assert telemetry.span().attributes["gen_ai.usage.output_tokens"] == -(-len("".join(answer(40))) // 4)


def test_the_text_kept_to_count_is_bounded(api, telemetry):
    stream = make_openai(api.sse(chat_without_usage(answer(5000)))).chat.completions.create(**O, stream=True)
    record = stream._self_record
    for _ in range(4000):
        next(stream)
        assert len(record.out_text._pieces) <= _tokens.OutputCounter.BATCH  # never the whole answer
    list(stream)
    assert record.out_text is None  # and nothing once the call has ended


def test_batches_cut_before_a_space_sum_to_the_whole_count() -> None:
    counter = _tokens.OutputCounter()
    text = answer(10_000)
    for piece in text:
        counter.add(piece)
    assert counter.total() == len(_tokens.encode("".join(text)))


def test_prompt_counts_are_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    name, encoder = _tokens._LOADER.encoder  # type: ignore[misc]

    def counting(text: str) -> Any:
        calls.append(len(text))
        return encoder(text)

    monkeypatch.setattr(_tokens._LOADER, "encoder", (name, counting))
    prompt = "You are the support agent of Acme Cloud. " * 200
    first = _tokens.estimate_tokens(prompt, remember=True)
    assert _tokens.estimate_tokens(prompt, remember=True) == first and len(calls) == 1  # counted once
    assert _tokens.estimate_tokens("short question", remember=True) and len(calls) == 2  # short: not kept


# --- the first call: the tokenizer loads on a thread of its own, after the call, which never waits for it ---
class GatedLoad:
    """A tokenizer load that takes as long as the test says, and records the thread it ran on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[int] = []
        self.began_ns: list[int] = []
        self.finished = threading.Event()
        self._real = _tokens._load_encoder

    def __call__(self) -> _tokens.Encoder:
        self.threads.append(threading.get_ident())
        self.began_ns.append(time.time_ns())
        if threading.current_thread() is not threading.main_thread():  # on the app's thread: do not hang the test
            self.release.wait(60)
        try:
            return self._real()
        finally:
            self.finished.set()


@pytest.fixture
def gated_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedLoad]:
    gate = GatedLoad()
    monkeypatch.setattr(_tokens, "_LOADER", _tokens._Loader())  # as in a fresh process: nothing loaded yet
    monkeypatch.setattr(_tokens, "_load_encoder", gate)
    yield gate
    gate.release.set()
    _tokens._LOADER.wait(60)


def test_first_call_does_not_wait_for_the_tokenizer(api, telemetry, mode, gated_load):
    text = answer(40)
    client = make_openai(api.sse(chat_without_usage(text), repeat=2), mode == "async")
    consume(mode, run(client.chat.completions.create(**O, stream=True)))  # returns with the load still held
    assert gated_load.threads and threading.main_thread().ident not in gated_load.threads
    assert not gated_load.finished.is_set()
    span = telemetry.span()
    assert gated_load.began_ns[0] >= span.end_time - 1_000_000  # started once the call was over, not during it
    first = span.attributes
    assert first["llmtrace.usage.source"] == "estimated"
    assert first["gen_ai.usage.output_tokens"] == -(-len("".join(text)) // 4)  # the fallback, for this call
    gated_load.release.set()
    assert _tokens.wait_until_loaded(60)
    consume(mode, run(client.chat.completions.create(**O, stream=True)))
    second = telemetry.spans()[-1].attributes
    assert second["gen_ai.usage.output_tokens"] == len(_tokens.encode("".join(text)))  # the tokenizer, from now on


def test_counting_after_the_call_is_not_the_calls_duration(api, telemetry, monkeypatch):
    """The span ends at the call's end time, taken before the tokens are counted: here counting takes 0.5 s."""
    real_total = _tokens.OutputCounter.total

    def slow_total(self: _tokens.OutputCounter) -> int:
        time.sleep(0.5)
        return real_total(self)

    monkeypatch.setattr(_tokens.OutputCounter, "total", slow_total)
    client = make_openai(api.sse(chat_without_usage(answer(40))))
    began = time.perf_counter()
    list(client.chat.completions.create(**O, stream=True))
    wall = time.perf_counter() - began  # what the app waited, the counting included
    span = telemetry.span()
    recorded = (span.end_time - span.start_time) / 1e9
    assert wall - recorded >= 0.5  # the 0.5 s of counting is outside the span...
    [(_, point)] = telemetry.points("gen_ai.client.operation.duration")
    assert point.sum == pytest.approx(recorded, abs=1e-5)  # ...and outside the duration metric, which agrees
