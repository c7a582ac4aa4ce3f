"""Local token counting, for streams that carry no usage and for the emulator.

Uses a real BPE tokenizer when one is installed (tiktoken, or bpe-openai, which ships its vocabularies
and so works offline), else a documented estimate: one token per four characters, the rule of thumb
OpenAI and Anthropic both publish for English text. Callers label the result `estimated` either way.

Loading a tokenizer takes about 0.6 s of CPU and 150 MB (bpe-openai reads every vocabulary it ships), so
telemetry never waits for it, and an app that never needs an estimate never loads it: the first count that
telemetry asks for, after its call's end time, starts the load on a daemon thread (which then competes for
the GIL with later work, not with that call), and `estimate_tokens` uses four characters per token until
the tokenizer is there. The emulator and the demo, which want exact counts, use `count_tokens`, which waits.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence

_log = logging.getLogger("llmtrace")

CHARS_PER_TOKEN = 4
Encoder = tuple[str, Callable[[str], Sequence[int]]]


def _load_encoder() -> Encoder:
    # A tokenizer's own deprecation warnings (bpe-openai 0.1.4 uses importlib.resources.open_binary) must not
    # reach the app; catch_warnings cannot scope that on a background thread, so the filter names the modules.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(bpe_openai|tiktoken)(\.|$)")
    # encode_ordinary: text that happens to spell a special token ("<|endoftext|>") is counted, not refused
    try:
        import tiktoken

        return "tiktoken", tiktoken.get_encoding("o200k_base").encode_ordinary
    except Exception as exc:  # not installed, or its vocabulary cannot be downloaded (offline)
        _log.debug("tiktoken unavailable: %s", exc)
    try:
        import bpe_openai

        return "bpe-openai", bpe_openai.get_encoding("o200k_base").encode_ordinary
    except Exception as exc:
        _log.debug("bpe-openai unavailable: %s", exc)
    return "chars/4", _quarters


class _Loader:
    """Loads the tokenizer once, on a daemon thread (`start`) or on the caller's (`get`, when nothing started it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self.encoder: Encoder | None = None  # set once loaded: read without a lock, it is set only once

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="llmtrace-tokenizer", daemon=True).start()

    def get(self) -> Encoder:
        with self._lock:
            first, self._started = not self._started, True
        if first:
            self._load()
        else:
            self._done.wait()
        return self.encoder  # type: ignore[return-value]

    def wait(self, timeout: float | None = None) -> bool:
        self.start()
        return self._done.wait(timeout)

    def _load(self) -> None:
        try:
            self.encoder = _load_encoder()
        except BaseException:
            self.encoder = ("chars/4", _quarters)
            raise
        finally:
            self._done.set()


_LOADER = _Loader()


def _quarters(text: str) -> list[int]:
    return [hash(text[i:i + CHARS_PER_TOKEN]) for i in range(0, len(text), CHARS_PER_TOKEN)]


def encode(text: str) -> Sequence[int]:
    """Token ids of `text` by the best tokenizer installed (with `chars/4`, ids of 4-character pieces). Waits
    for the tokenizer to load."""
    return _LOADER.get()[1](text)


def count_tokens(text: str) -> int:
    """Tokens in `text` by the best tokenizer installed (see `tokenizer_name()`). Waits for it to load."""
    return len(_LOADER.get()[1](text))


def tokenizer_name() -> str:
    """Which counter `count_tokens` uses: `tiktoken`, `bpe-openai` or `chars/4`."""
    return _LOADER.get()[0]


def load_in_background() -> None:
    """Start loading the tokenizer on a daemon thread, if that has not started yet; returns at once."""
    _LOADER.start()


def wait_until_loaded(timeout: float | None = None) -> bool:
    """Start loading the tokenizer if needed and wait for it (benchmarks, tests); True once it is loaded."""
    return _LOADER.wait(timeout)


# Token counts of long texts seen recently (a system prompt, an earlier turn), by (hash, length): a reused
# prompt is counted once, and the key holds no text. A collision would cost one estimate, never an error.
_MEMO_MIN_CHARS = 256
_MEMO_SIZE = 1024
_memo: dict[tuple[int, int], int] = {}
_memo_lock = threading.Lock()


def estimate_tokens(text: str, *, remember: bool = False, load: bool = True) -> int:
    """Tokens in `text` by the tokenizer if it is loaded, else four characters per token (and, with `load`, the
    load starts in the background). Never waits. With `remember`, long texts' counts are kept for the next
    call that sends them again."""
    encoder = _LOADER.encoder
    if encoder is None:
        if load:
            _LOADER.start()
        return -(-len(text) // CHARS_PER_TOKEN)
    if not remember or len(text) < _MEMO_MIN_CHARS:
        return len(encoder[1](text))
    key = (hash(text), len(text))  # str caches its hash: free for a prompt the app reuses
    found = _memo.get(key)
    if found is None:
        found = len(encoder[1](text))
        with _memo_lock:
            if len(_memo) >= _MEMO_SIZE:
                del _memo[next(iter(_memo))]  # the oldest
            _memo[key] = found
    return found


class OutputCounter:
    """The output of a stream that will carry no usage, counted with the tokenizer without keeping the text.

    Pieces are kept only until `BATCH` of them have arrived; then all but a tail are counted at once, cut
    before a space, where BPE tokenizers of the o200k kind always start a new token, so the sum of the
    batches is the count of the whole text. A typical answer is under one batch, and so is counted only in
    `total()`, after the call's end time is taken; a long one costs one count per `BATCH` chunks.
    """

    __slots__ = ("_pieces", "_tokens")
    BATCH = 256

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._tokens = 0

    def add(self, text: str) -> None:
        pieces = self._pieces
        pieces.append(text)
        if len(pieces) >= self.BATCH:
            self._count_batch()

    def _count_batch(self) -> None:
        text = "".join(self._pieces)
        cut = text.rfind(" ")
        if cut <= 0:  # no space to cut at (code, CJK): count it all; the error is a token at most
            cut = len(text)
        self._tokens += estimate_tokens(text[:cut], load=False)  # mid-stream: the load waits for the end
        self._pieces = [text[cut:]] if cut < len(text) else []

    def total(self) -> int:
        """Output tokens: the counted batches and the rest, which is counted now and let go."""
        if self._pieces:
            self._tokens += estimate_tokens("".join(self._pieces))
            self._pieces = []
        return self._tokens
