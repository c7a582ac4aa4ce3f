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
        self._active = True
        for sdk in _adapters():
            # Runs now if the SDK is already imported, else when it is; hooks cannot be removed, so they check.
            if sdk not in _hooked:
                _hooked.add(sdk)
                wrapt.register_post_import_hook(_on_import, sdk)
            elif _is_imported(sdk):
                self._patch(sdk)

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            self._active = False
            for patch, handle in reversed(getattr(self, "_applied", [])):
                target, _, attr = patch.name.rpartition(".")
                module = __import__(patch.module, fromlist=["_"])
                owner = _resolve(module, target)
                wrapt.unwrap_object(owner, attr, handle, missing_ok=True)
            self._applied = []

    def _patch(self, sdk: str) -> None:
        with self._lock:
            if not getattr(self, "_active", False) or any(p.module.startswith(sdk) for p, _ in self._applied):
                return
            adapter: Adapter = _adapters()[sdk]()
            sync_call, async_call = call_wrappers(adapter, self._telemetry)
            wrappers = {"call": sync_call, "async_call": async_call, "helper_close": helper_close_wrapper,
                        "async_helper_close": async_helper_close_wrapper}
            for patch in adapter.patches:
                try:
                    handle = wrapt.wrap_function_wrapper(patch.module, patch.name, wrappers[patch.wrap])
                except (ImportError, AttributeError) as exc:  # an SDK version without this target
                    log.warning("llmtrace could not patch %s.%s: %s", patch.module, patch.name, exc)
                    continue
                self._applied.append((patch, handle))


_hooked: set[str] = set()  # SDK names with a post-import hook registered (once per process)


def _on_import(module: Any) -> None:
    LLMTraceInstrumentor()._patch(module.__name__)  # a no-op unless instrumented (checked under the lock)


def _is_imported(name: str) -> bool:
    import sys

    return name in sys.modules


def _resolve(obj: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        obj = getattr(obj, part)
    return obj
