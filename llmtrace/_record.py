"""CallRecord: everything llmtrace learns about one call, and the single place where the call ends."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ._cache import CacheIntent
    from ._pricing import Cost
    from ._tokens import OutputCounter

End = Literal["drained", "closed", "failed", "collected"]  # how reading stopped
# Reads one stream event (a true result hides the event from the app), or one complete response.
EventReader = Callable[["CallRecord", Any], Any]


class Recorder(Protocol):
    """Where a record reports: the `Telemetry` of an `instrument()` (llmtrace/_telemetry.py)."""

    def finish(self, record: CallRecord, end_time: float) -> None: ...

    def reader_failed(self, record: CallRecord, exc: Exception) -> EventReader: ...


class CallRecord:
    """State of one call. The stream shells update its counters per chunk and the provider's reader fills in
    what the events say (`first_token = last` on the first chunk of generated content); `end()` runs once."""

    __slots__ = (
        "telemetry", "span", "read", "read_final", "provider", "operation", "request_model", "server_address", "server_port",
        "stream", "request", "cache", "capture", "capture_room", "out_text",
        "start", "first_chunk", "first_token", "last", "chunks", "max_gap",
        "response_id", "response_model", "finish_reason", "choices", "finish_reasons", "terminal", "provider_error", "out_chars",
        "usage_seen", "output_final", "input_tokens", "output_tokens", "cache_read", "cache_write",
        "cache_write_1h", "reasoning_tokens", "provider_miss_reason",
        "outcome", "error", "_ended",
    )

    def __init__(self, telemetry: Recorder, span: Span, read: EventReader, read_final: EventReader, *, provider: str, operation: str,
                 request_model: str | None, server_address: str | None, server_port: int | None, stream: bool,
                 request: Any, cache: CacheIntent | None) -> None:
        self.telemetry = telemetry
        self.span = span
        self.read = read
        self.read_final = read_final
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.server_address = server_address
        self.server_port = server_port
        self.stream = stream
        self.request = request  # the request body, kept until the end for estimates and cache diagnosis
        self.cache = cache
        self.capture: list[str] | None = None  # output text, only when content capture is on
        self.capture_room = 0
        self.out_text: OutputCounter | None = None  # output counted by the tokenizer: streams with no usage coming
        self.start = perf_counter()
        self.first_chunk = self.first_token = self.last = self.max_gap = 0.0
        self.chunks = 0
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reason: str | None = None
        self.choices = 1  # completions the request asked for (OpenAI `n`)
        self.finish_reasons: dict[int, str] | None = None  # by choice index, when choices > 1
        self.terminal = False
        self.provider_error: str | None = None  # an error the stream reported without raising (Responses `error`)
        self.out_chars = 0
        self.usage_seen = False
        self.output_final = False  # output_tokens is the provider's final number, not a placeholder
        self.input_tokens = self.output_tokens = self.cache_read = self.cache_write = 0
        self.cache_write_1h = self.reasoning_tokens = 0
        self.provider_miss_reason: str | None = None
        self.outcome: str | None = None
        self.error: BaseException | None = None
        self._ended = False

    def captured(self, text: str) -> None:
        """Output text, kept only with content capture on, and then only up to the cap."""
        if self.capture_room > 0:
            self.capture.append(text[: self.capture_room])  # type: ignore[union-attr]
            self.capture_room -= len(text)

    def choice_finished(self, index: int, reason: str) -> None:
        """A choice's finish reason; the response is complete once every choice asked for has one."""
        if self.choices == 1:
            self.finish_reason, self.terminal = reason, True
            return
        if self.finish_reasons is None:
            self.finish_reasons = {}
        self.finish_reasons[index] = reason
        self.terminal = len(self.finish_reasons) >= self.choices

    def end(self, how: End, error: BaseException | None = None) -> None:
        if self._ended:  # drain, close(), __exit__ and GC can all report the same end
            return
        self._ended = True
        end_time = perf_counter()
        if how == "failed" and error is not None and (_is_failure(error) or not self.stream):
            # A plain call stopped before its response (a timeout, a cancelled task, Ctrl-C) got no result.
            self.outcome, self.error = "error", error
        elif self.provider_error is not None:
            self.outcome = "error"
        elif self.terminal or not self.stream:
            self.outcome = "completed"
        elif how == "drained":
            self.outcome, self.provider_error = "error", "stream_truncated"  # ended without its terminal event
        else:
            self.outcome = "abandoned"
        self.telemetry.finish(self, end_time)

    def __del__(self) -> None:
        # Whatever held this call (stream proxy, its generator, a raw response) was dropped unfinished.
        if not self._ended:
            try:
                self.end("collected")
            except Exception:  # at interpreter exit the modules end() needs may be gone already
                pass


def _is_failure(error: BaseException) -> bool:
    # A consumer that stops reading a stream (GeneratorExit, task cancellation, Ctrl-C: all BaseException
    # only) abandons it; it did not fail.
    return isinstance(error, Exception)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What is recorded as metrics for one call."""

    provider: str
    model: str
    operation: str
    server_address: str | None
    duration: float
    error_type: str | None
    stream_outcome: str
    time_to_first_chunk: float | None
    chunks: int | None
    provider_usage: bool
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    cache_outcome: str | None
    miss_reason: str | None
    cost: Cost | None
