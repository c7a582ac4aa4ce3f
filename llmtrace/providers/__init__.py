"""Provider adapters: what to patch in each SDK, and how to read its requests, events and results
(the `Adapter` protocol of the engine, llmtrace/_stream.py); helpers the adapters share.

An adapter holds no lifecycle code: starting, timing, ending and recording live in the engine.
Both SDKs send every API call through their client's `request()` method, so one patch per client
class sees every entry point (`create`, the `.stream()` helpers, tool runners and threads, raw and
streaming responses, Bedrock/Vertex/Azure clients, clients made before `instrument()` and resources
bound before it), once per call, with retries inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .. import _semconv as sc
from .._stream import ResultKind

if TYPE_CHECKING:
    from .._cache import CacheIntent
    from .._record import CallRecord, EventReader
    from .._telemetry import Telemetry

def request_options(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # `request(self, cast_to, options, *, stream=False, stream_cls=None)` in both SDKs
    return args[1] if len(args) > 1 else kwargs.get("options")


def with_options(args: tuple[Any, ...], kwargs: dict[str, Any],
                 options: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The `request()` arguments with other options in place of the app's (which are left untouched)."""
    if len(args) > 1:
        return (args[0], options, *args[2:]), kwargs
    return args, {**kwargs, "options": options}


def start_call(telemetry: Telemetry, client: Any, body: dict[str, Any], *, provider: str, operation: str,
               model: str | None, stream: bool, read: EventReader, read_final: EventReader,
               cache: CacheIntent | None, max_tokens: Any) -> CallRecord:
    """What every adapter records at the start of a call, from the client and the request body."""
    address, port = server_of(client)
    attributes: dict[str, Any] = {}
    if isinstance(max_tokens, int):
        attributes[sc.REQUEST_MAX_TOKENS] = max_tokens
    if (temperature := given(body.get("temperature"), (int, float))) is not None:
        attributes[sc.REQUEST_TEMPERATURE] = temperature
    return telemetry.start(read, read_final, provider=provider, operation=operation, model=model, stream=stream,
                           server_address=address, server_port=port, request=body, cache=cache,
                           attributes=attributes)


class ProviderNames:
    """`gen_ai.provider.name` of a client, from its class name, worked out once per class."""

    def __init__(self, name_of: Callable[[str], str]) -> None:
        self._name_of = name_of
        self._by_type: dict[type, str] = {}

    def __call__(self, client: Any) -> str:
        cls = type(client)
        name = self._by_type.get(cls)
        if name is None:
            name = self._by_type[cls] = self._name_of(cls.__name__)
        return name


def server_of(client: Any) -> tuple[str | None, int | None]:
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None) or None
    if host is None:
        return None, None
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return host, port


class KindCache:
    """`result_kind` by type, computed once per result class."""

    def __init__(self, kinds: tuple[tuple[type, str], ...]) -> None:
        self._kinds = kinds
        self._by_type: dict[type, ResultKind] = {}

    def __call__(self, result: Any) -> ResultKind:
        cls = type(result)
        try:
            return self._by_type[cls]
        except KeyError:
            kind = next((k for base, k in self._kinds if issubclass(cls, base)), None)
            self._by_type[cls] = kind  # type: ignore[assignment]
            return kind  # type: ignore[return-value]


def given(value: Any, kind: type | tuple[type, ...]) -> Any:
    """`value` if it is of `kind`; None for the SDKs' NotGiven/Omit placeholders and anything else."""
    return value if isinstance(value, kind) else None
