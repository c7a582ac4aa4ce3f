"""OpenTelemetry traces and metrics for LLM streaming and prompt caching (Anthropic and OpenAI SDKs).

```python
import llmtrace
llmtrace.instrument()
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._instrument import LLMTraceInstrumentor

__all__ = ["LLMTraceInstrumentor", "__version__", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import llmtrace` (and the pytest plugin pytest loads in every session) stays cheap.
    if name == "LLMTraceInstrumentor":
        from ._instrument import LLMTraceInstrumentor

        return LLMTraceInstrumentor
    raise AttributeError(f"module 'llmtrace' has no attribute {name!r}")


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None, capture_content: bool | None = None,
               pricing: str | os.PathLike[str] | Mapping[str, Any] | None = None,
               openai_stream_usage: bool | None = None) -> None:
    """Trace every Anthropic and OpenAI SDK call, streamed or not, from now on. Idempotent and thread-safe.

    ```python
    llmtrace.instrument()                                  # OTLP to OTEL_EXPORTER_OTLP_ENDPOINT (or :4318)
    llmtrace.instrument(tracer_provider=tp, meter_provider=mp, capture_content=True, pricing="prices.json")
    ```

    Parameters:
    * tracer_provider, meter_provider: where spans and metrics go. Default: the app's global providers, or,
      when the app configured none, the exporters the standard `OTEL_TRACES_EXPORTER` /
      `OTEL_METRICS_EXPORTER` name (default OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`), flushed at exit
      within `LLMTRACE_EXIT_FLUSH_TIMEOUT` seconds (default 3).
    * capture_content: record prompts and output text on spans, up to a size cap (default off;
      `LLMTRACE_CAPTURE_CONTENT`).
    * pricing: a JSON price file or a mapping that overrides the bundled price table (`LLMTRACE_PRICING_FILE`).
    * openai_stream_usage: ask OpenAI chat/completions streams for usage (`stream_options.include_usage`)
      when the app did not, and hide that extra usage chunk from the app, so token and cost metrics
      cover them (default off, since it changes the request; `LLMTRACE_OPENAI_STREAM_USAGE`).
    """
    from ._instrument import LLMTraceInstrumentor

    instrumentor = LLMTraceInstrumentor()
    with LLMTraceInstrumentor._lock:
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                capture_content=capture_content, pricing=pricing,
                                openai_stream_usage=openai_stream_usage)


def uninstrument() -> None:
    """Restore every patched SDK method. Streams already returned keep reporting until they end."""
    from ._instrument import LLMTraceInstrumentor

    instrumentor = LLMTraceInstrumentor()
    with LLMTraceInstrumentor._lock:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
