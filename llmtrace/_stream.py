"""The engine's shells: transparent proxies around what the SDKs return, and the call wrappers.

Everything that decides what a call *was* lives in `CallRecord`; these classes only report to it.
The sync and async shells differ in `next` against `await anext`, and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

if TYPE_CHECKING:
    from ._record import CallRecord
    from ._telemetry import Telemetry

# --- what a provider adapter gives the engine (llmtrace/providers/) ---
Wrap = Literal["call", "async_call", "helper_close", "async_helper_close"]
ResultKind = Literal["stream", "async_stream", "response", "async_response"] | None


@dataclass(frozen=True)
class Patch:
    module: str
    name: str  # dotted path inside the module, e.g. "SyncAPIClient.request"
    wrap: Wrap


class Adapter(Protocol):
    sdk: str  # the module whose import triggers the patches
    patches: tuple[Patch, ...]

    def start(self, telemetry: Telemetry, instance: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[CallRecord, tuple[Any, ...], dict[str, Any]] | None:
        """A record for an LLM call (and the arguments to send it with), or None for any other request."""

    def result_kind(self, result: Any) -> ResultKind: ...

    def items(self, stream: Any) -> Any:
        """What the engine loops over for an SDK stream: the stream, or the source its own iteration re-yields."""


def _events(items: Any, record: CallRecord) -> Iterator[Any]:
    """The per-chunk path: time, count and read each item the SDK yields. Arithmetic and one read call only.

    It loops over the SDK's own iterator, as a bare `for` loop would: no Python call per item to reach it.
    """
    read = record.read
    try:
        for event in iter(items):
            now = perf_counter()
            if record.chunks:
                gap = now - record.last
                if gap > record.max_gap:
                    record.max_gap = gap
            else:
                record.first_chunk = now
            record.last = now
            record.chunks += 1
            try:
                if read(record, event):  # an item llmtrace asked for itself (opt-in OpenAI stream usage): hide it
                    record.chunks -= 1
                    continue
            except Exception as exc:  # a reader bug or an event of an unexpected shape: the app gets its event
                read = record.telemetry.reader_failed(record, exc)
            yield event
    except GeneratorExit:  # closed or dropped by the app at a `yield`: the shell reports how
        raise
    except BaseException as exc:  # end() decides whether a stop is an error or an abandon
        record.end("failed", exc)
        raise
    record.end("drained")


async def _async_events(items: Any, record: CallRecord) -> AsyncIterator[Any]:
    # The body of _events with `async for`: kept inline in both, as a shared helper call per chunk would
    # cost about a tenth of the per-chunk budget.
    read = record.read
    try:
        async for event in aiter(items):
            now = perf_counter()
            if record.chunks:
                gap = now - record.last
                if gap > record.max_gap:
                    record.max_gap = gap
            else:
                record.first_chunk = now
            record.last = now
            record.chunks += 1
            try:
                if read(record, event):
                    record.chunks -= 1
                    continue
            except Exception as exc:
                read = record.telemetry.reader_failed(record, exc)
            yield event
    except GeneratorExit:
        raise
    except BaseException as exc:
        record.end("failed", exc)
        raise
    record.end("drained")


class TracedStream(wrapt.BaseObjectProxy):
    """A sync SDK stream (`anthropic.Stream`, `openai.Stream`); `isinstance` and every attribute pass through.

    `for` loops iterate a generator over the SDK's own iterator (`items`: the stream, or the source its
    iteration only re-yields), which costs far less per item than a method on the proxy; `next(stream)`
    reaches the same generator. The proxy and the generator both hold the record, which ends the call as
    `collected` when the last of them is dropped.
    """

    def __init__(self, stream: Any, record: CallRecord, items: Any) -> None:
        super().__init__(stream)
        self._self_events = _events(items, record)  # `_self_`: state on the proxy (wrapt's rule)
        self._self_record = record

    def __iter__(self) -> Iterator[Any]:
        return self._self_events

    def __next__(self) -> Any:
        return next(self._self_events)

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_record.end("closed")

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_record.end("closed")

    def _llmtrace_closed(self) -> None:
        """A helper closed the HTTP response directly, bypassing `close()` (openai ChatCompletionStream)."""
        self._self_record.end("closed")


class AsyncTracedStream(wrapt.BaseObjectProxy):
    """An async SDK stream (`anthropic.AsyncStream`, `openai.AsyncStream`)."""

    def __init__(self, stream: Any, record: CallRecord, items: Any) -> None:
        super().__init__(stream)
        self._self_events = _async_events(items, record)
        self._self_record = record

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_events

    def __anext__(self) -> Awaitable[Any]:
        return self._self_events.__anext__()

    async def __aenter__(self) -> AsyncTracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_record.end("closed")

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_record.end("closed")

    @property
    def aclose(self) -> Callable[[], Awaitable[None]]:
        return _ending_aclose(self)

    def _llmtrace_closed(self) -> None:
        self._self_record.end("closed")


class TracedResponse(wrapt.BaseObjectProxy):
    """`with_raw_response` / `with_streaming_response` results: the stream or message exists once parsed."""

    def __init__(self, response: Any, record: CallRecord, adapter: Adapter) -> None:
        super().__init__(response)
        self._self_record = record
        self._self_adapter = adapter
        self._self_parsed: Any = _UNSET

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        result = self.__wrapped__.parse(*args, **kwargs)
        return _observe_parsed(self, result)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            if self._self_parsed is _UNSET:
                self._self_record.end("closed")


def _ending_aclose(proxy: AsyncTracedStream) -> Callable[[], Awaitable[None]]:
    """The wrapped stream's `aclose` alias (openai 3.57 `AsyncStream`), ending the call too.

    The alias calls the wrapped stream's own `close()`, bypassing the proxy's. A property, so that a
    stream without the alias (anthropic's `AsyncStream`) still has none: the AttributeError is the SDK's.
    """
    wrapped_aclose = proxy.__wrapped__.aclose
    record = proxy._self_record

    async def aclose() -> None:
        try:
            await wrapped_aclose()
        finally:
            record.end("closed")

    return aclose


class AsyncTracedResponse(TracedResponse):
    async def parse(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        result = await self.__wrapped__.parse(*args, **kwargs)
        return _observe_parsed(self, result)

    async def close(self) -> None:  # type: ignore[override]
        try:
            await self.__wrapped__.close()
        finally:
            if self._self_parsed is _UNSET:
                self._self_record.end("closed")


_UNSET = object()


def _observe_parsed(response: TracedResponse, result: Any) -> Any:
    # The SDK caches what parse() returns, so parsing again must give back the same proxy.
    seen = response._self_parsed
    if seen is _UNSET:
        observed = observe(result, response._self_record, response._self_adapter)
        response._self_parsed = (result, observed)
        return observed
    first, observed = seen
    return observed if first is result else result  # `parse(to=OtherType)`: nothing more to learn


def observe(result: Any, record: CallRecord, adapter: Adapter) -> Any:
    """What the SDK returned: a stream gets a proxy, a raw response a parse hook, a message is read now."""
    kind = adapter.result_kind(result)
    if kind == "stream":
        return TracedStream(result, record, adapter.items(result))
    if kind == "async_stream":
        return AsyncTracedStream(result, record, adapter.items(result))
    if kind == "response":
        return TracedResponse(result, record, adapter)
    if kind == "async_response":
        return AsyncTracedResponse(result, record, adapter)
    try:
        record.read_final(record, result)
    except Exception as exc:
        record.telemetry.reader_failed(record, exc)
    record.end("drained")
    return result


def call_wrappers(adapter: Adapter, telemetry: Telemetry) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The wrapt wrappers for the SDK's request method: (sync, async)."""

    def start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[CallRecord, tuple, dict] | None:
        try:
            return adapter.start(telemetry, instance, args, kwargs)
        except Exception as exc:  # never let telemetry break the call: it goes out untraced
            telemetry.warn_once("start", "llmtrace could not trace a call; it was sent untraced: %r", exc)
            return None

    def sync_call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = start(instance, args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        record, args, kwargs = started
        token = otel_context.attach(trace.set_span_in_context(record.span))  # current only while sending
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            record.end("failed", exc)
            raise
        finally:
            otel_context.detach(token)
        return observe(result, record, adapter)

    async def async_call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
        started = start(instance, args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        record, args, kwargs = started
        token = otel_context.attach(trace.set_span_in_context(record.span))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            record.end("failed", exc)
            raise
        finally:
            otel_context.detach(token)
        return observe(result, record, adapter)

    return sync_call, async_call


def helper_close_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    """For SDK helpers whose close() closes the HTTP response without telling the raw stream."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        _notify_closed(instance)


async def async_helper_close_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                                     kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _notify_closed(instance)


def _notify_closed(helper: Any) -> None:
    raw = getattr(helper, "_raw_stream", None)
    if type(raw) in (TracedStream, AsyncTracedStream):
        raw._llmtrace_closed()
