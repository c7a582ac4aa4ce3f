"""Local token counting, for streams that carry no usage and for the emulator.

Uses a real BPE tokenizer when one is installed (tiktoken, or bpe-openai, which ships its vocabularies
and so works offline), else a documented estimate: one token per four characters, the rule of thumb
OpenAI and Anthropic both publish for English text. Callers label the result `estimated` either way.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

_log = logging.getLogger("llmtrace")

CHARS_PER_TOKEN = 4


@lru_cache(maxsize=1)
def _encoder() -> tuple[str, Callable[[str], Sequence[int]]]:
    with warnings.catch_warnings():  # a tokenizer's own deprecation warnings must not reach the app
        warnings.simplefilter("ignore")
        return _load_encoder()


def _load_encoder() -> tuple[str, Callable[[str], Sequence[int]]]:
    try:
        import tiktoken

        enc = tiktoken.get_encoding("o200k_base")
        return "tiktoken", lambda text: enc.encode(text, disallowed_special=())
    except Exception as exc:  # not installed, or its vocabulary cannot be downloaded (offline)
        _log.debug("tiktoken unavailable: %s", exc)
    try:
        import bpe_openai

        return "bpe-openai", bpe_openai.get_encoding("o200k_base").encode
    except Exception as exc:
        _log.debug("bpe-openai unavailable: %s", exc)
    return "chars/4", _quarters


def _quarters(text: str) -> list[int]:
    return [hash(text[i:i + CHARS_PER_TOKEN]) for i in range(0, len(text), CHARS_PER_TOKEN)]


def encode(text: str) -> Sequence[int]:
    """Token ids of `text` by the best tokenizer installed (with `chars/4`, ids of 4-character pieces)."""
    return _encoder()[1](text)


def count_tokens(text: str) -> int:
    """Tokens in `text` by the best tokenizer installed (see `tokenizer_name()`)."""
    return len(_encoder()[1](text))


def tokenizer_name() -> str:
    """Which counter `count_tokens` uses: `tiktoken`, `bpe-openai` or `chars/4`."""
    return _encoder()[0]
