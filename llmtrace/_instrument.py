"""LLMTraceInstrumentor: configuration, default exporters, and the patch table walked to wrap and unwrap."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Mapping
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ._pricing import PriceTable
from ._stream import Adapter, Patch, async_helper_close_wrapper, call_wrappers, helper_close_wrapper
from ._telemetry import DEFAULT_CAPTURE_MAX_CHARS, Telemetry

log = logging.getLogger("llmtrace")

_TRUE = ("1", "true", "yes", "on")


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in _TRUE


def _adapters() -> dict[str, type]:
    from .providers.anthropic import AnthropicAdapter
    from .providers.openai import OpenAIAdapter

    return {"anthropic": AnthropicAdapter, "openai": OpenAIAdapter}


class LLMTraceInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Patches the Anthropic and OpenAI SDKs; also the `opentelemetry_instrumentor` entry point."""

    _lock = threading.RLock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # both SDKs are optional: whichever is installed gets patched, now or when imported

    def _instrument(self, **kwargs: Any) -> None:
        if _env_flag("LLMTRACE_DISABLED"):
            log.info("llmtrace is disabled by LLMTRACE_DISABLED")
            return
        from ._exporters import default_providers  # the SDK's exporter modules, only when instrumenting

        tracer_provider, meter_provider = default_providers(kwargs.get("tracer_provider"),
                                                            kwargs.get("meter_provider"))
        capture = kwargs.get("capture_content")
        pricing: str | os.PathLike[str] | Mapping[str, Any] | None = kwargs.get("pricing")
        self._telemetry = Telemetry(
            tracer_provider, meter_provider,
            capture_content=_env_flag("LLMTRACE_CAPTURE_CONTENT") if capture is None else bool(capture),
            capture_max_chars=int(os.environ.get("LLMTRACE_CAPTURE_MAX_CHARS", DEFAULT_CAPTURE_MAX_CHARS)),
            emit_cache_creation=_env_flag("LLMTRACE_CACHE_CREATION_ATTRIBUTE", True),
            openai_stream_usage=_env_flag("LLMTRACE_OPENAI_STREAM_USAGE") if kwargs.get("openai_stream_usage") is None
            else bool(kwargs["openai_stream_usage"]),
            prices=PriceTable.load(pricing),
        )
        self._applied: list[tuple[Patch, Any]] = []
        self._waiting: dict[str, list[tuple[Patch, Any]]] = {}  # module not imported yet -> its patches
        self._patched: set[str] = set()
        self._active = True
        for sdk in _adapters():
            _when_imported(sdk)

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            self._active = False
            for patch, handle in reversed(getattr(self, "_applied", [])):
                target, _, attr = patch.name.rpartition(".")
                module = __import__(patch.module, fromlist=["_"])
                owner = _resolve(module, target)
                wrapt.unwrap_object(owner, attr, handle, missing_ok=True)
            self._applied = []
            self._waiting = {}
            self._patched = set()

    def _on_import(self, name: str) -> None:
        """A module was imported: an SDK to patch, or a module of one whose patches were waiting for it."""
        with self._lock:
            if not getattr(self, "_active", False):
                return
            if name in _adapters() and name not in self._patched:
                self._patch(name)
            for patch, wrapper in self._waiting.pop(name, ()):
                self._apply(patch, wrapper)

    def _patch(self, sdk: str) -> None:
        self._patched.add(sdk)
        adapter: Adapter = _adapters()[sdk]()
        sync_call, async_call = call_wrappers(adapter, self._telemetry)
        wrappers = {"call": sync_call, "async_call": async_call, "helper_close": helper_close_wrapper,
                    "async_helper_close": async_helper_close_wrapper}
        for patch in adapter.patches:
            if _is_imported(patch.module):
                self._apply(patch, wrappers[patch.wrap])
            else:  # e.g. the SDK's streaming helpers, which an app may never import: not imported for us either
                self._waiting.setdefault(patch.module, []).append((patch, wrappers[patch.wrap]))
                _when_imported(patch.module)

    def _apply(self, patch: Patch, wrapper: Any) -> None:
        try:
            handle = wrapt.wrap_function_wrapper(patch.module, patch.name, wrapper)
        except (ImportError, AttributeError) as exc:  # an SDK version without this target
            log.warning("llmtrace could not patch %s.%s: %s", patch.module, patch.name, exc)
            return
        self._applied.append((patch, handle))


_hooked: set[str] = set()  # module names with a post-import hook registered (once per process)


def _when_imported(name: str) -> None:
    """Tell the instrumentor when module `name` is imported (now, if it already is). Hooks cannot be removed,
    so there is one per module per process, and each checks whether instrumentation is on."""
    if name not in _hooked:
        _hooked.add(name)
        wrapt.register_post_import_hook(_on_import, name)
    elif _is_imported(name):
        LLMTraceInstrumentor()._on_import(name)


def _on_import(module: Any) -> None:
    LLMTraceInstrumentor()._on_import(module.__name__)  # a no-op unless instrumented (checked under the lock)


def _is_imported(name: str) -> bool:
    import sys

    return name in sys.modules


def _resolve(obj: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        obj = getattr(obj, part)
    return obj
