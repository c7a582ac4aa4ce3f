"""Prefix summaries: what a block's text is, where two prefixes first differ, and the bounds of the memo."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtrace import _prefix
from llmtrace._prefix import Part, block_text, locate


def where(old: Any, new: Any) -> tuple[int, int | None] | None:
    return locate(Part(old).summary, Part(new).summary)


def test_block_text():
    assert block_text("plain") == "plain"
    assert block_text({"type": "text", "text": "a block", "cache_control": {"type": "ephemeral"}}) == "a block"
    assert block_text({"role": "user", "content": "hello"}) == "hello"
    assert block_text({"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}) \
        == "one\ntwo"
    assert block_text({"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}) \
        == '{"input_schema":{"type":"object"},"name":"f"}'
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    assert block_text({"role": "user", "content": [image, {"type": "text", "text": "what is it?"}]}) == (
        '{"source":{"data":"AAAA","media_type":"image/png","type":"base64"},"type":"image"}\nwhat is it?')
    calls = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}
    assert block_text(calls) == '\n{"tool_calls":[{"function":{"name":"f"},"id":"c1"}]}'


@pytest.mark.parametrize(("k", "expected"), [(0, 0), (1, 0), (63, 0), (64, 64), (65, 64), (127, 64), (128, 128)])
def test_offset_is_rounded_down_to_a_window(k, expected):
    text = "abcdefgh" * 40
    assert where([text], [text[:k] + "!" + text[k + 1:]]) == (0, expected)


def test_appended_and_truncated_text():
    text = "x" * 200
    assert where([text], [text + "more"]) == (0, 192)  # the last window, 8 characters long, is no longer the same
    assert where([text], [text[:150]]) == (0, 128)
    assert where([text[:128]], [text]) == (0, 128)  # exact when the shorter one ends on a window boundary
    assert where([text], [text[:128]]) == (0, 128)
    assert where([""], ["new"]) == (0, 0)


def test_blocks_added_removed_and_unchanged():
    assert where(["a", "b"], ["a", "b", "c"]) == (2, 0)
    assert where(["a", "b", "c"], ["a", "b"]) == (2, 0)
    assert where(["a", "b"], ["a", "b"]) is None
    assert where(None, []) is None
    assert where(None, ["a"]) == (0, 0)


def test_role_change_is_offset_0_and_a_new_content_part_is_exact():
    assert where([{"role": "user", "content": "same"}], [{"role": "assistant", "content": "same"}]) == (0, 0)
    one = {"role": "user", "content": [{"type": "text", "text": "first part"}]}
    two = {"role": "user", "content": [{"type": "text", "text": "first part"}, {"type": "text", "text": "second"}]}
    assert where([one], [two]) == (0, len("first part"))
    changed = {"role": "user", "content": [{"type": "text", "text": "first part"}, {"type": "text", "text": "sec0nd"}]}
    assert where([two], [changed]) == (0, len("first part\n"))


def test_cache_markers_are_not_content():
    marked = {"type": "text", "text": "t", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    assert where([{"type": "text", "text": "t"}], [marked]) is None
    assert where(["t"], [{"type": "text", "text": "t"}]) is None  # a plain string and a text block read alike
    moved = {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]}
    assert where([{"role": "user", "content": "q"}], [moved]) is None  # and so do a string content and one text block


def test_a_change_beyond_the_kept_windows_is_located_to_its_block(monkeypatch):
    monkeypatch.setattr(_prefix, "MAX_WINDOWS", 4)
    text = "y" * 1000
    assert where(["a", text], ["a", text[:500] + "!" + text[501:]]) == (1, None)
    assert where(["a", text], ["a", text[:100] + "!" + text[101:]]) == (1, 64)


def test_objects_that_are_not_json_do_not_raise():
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    part = Part([{"type": "text", "text": "x", "extra": Opaque()}, Opaque(), {1: "mixed", "a": "keys"}])
    assert len(part.summary.blocks) == 3
    assert block_text(Opaque()) == '"Opaque()"'


def test_memo_is_bounded_in_entries_and_bytes():
    memo = _prefix._Memo(entries=3, budget=10_000)
    for n in range(10):
        memo.put(n, _prefix.Text(str(n) * 100))
    assert len(memo) == 3
    big = _prefix._Memo(entries=100, budget=5_000)
    for n in range(10):
        big.put(n, _prefix.Text(str(n) * 64 * 500))  # 2,000 bytes of window digests each
    assert big.held <= 5_000 and len(big) == 2


@settings(max_examples=300, deadline=None)
@given(text=st.text(min_size=1, max_size=3000), data=st.data())
def test_any_change_is_located_at_or_within_63_characters_before_it(text, data):
    k = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != text[k]))
    changed = text[:k] + replacement + text[k + 1:]
    block, offset = where([{"type": "text", "text": text}], [{"type": "text", "text": changed}])
    assert block == 0 and offset is not None and k - 64 < offset <= k


def test_fingerprint_depends_on_every_part_and_the_salt():
    parts = [Part(x).summary.digest for x in (["tools"], ["system"], ["messages"])]
    base = _prefix.fingerprint("m", *parts)
    assert len(base) == 32
    assert _prefix.fingerprint("m", *parts) == base
    assert _prefix.fingerprint("n", *parts) != base
    assert _prefix.fingerprint("m", parts[1], parts[0], parts[2]) != base  # the same text in another part
    assert _prefix.fingerprint("m", *parts, salt=b"s") != base


def test_salt_from_env(monkeypatch):
    monkeypatch.delenv("LLMTRACE_FINGERPRINT_SALT", raising=False)
    assert _prefix.salt_from_env() == b""
    monkeypatch.setenv("LLMTRACE_FINGERPRINT_SALT", "x" * 100)
    assert len(_prefix.salt_from_env()) == 64  # blake2b keys are at most 64 bytes: hashed down
