"""Prices and minimum cacheable lengths per model, from the data files in `llmtrace/data/`.

Model names are matched after normalising away what does not change the price: case, provider
prefixes (`anthropic.`, `us.anthropic.`, `openai/`), version suffixes (`-v1:0`, `@20251001`) and
dated snapshots (`-20251001`, `-2024-08-06`). What does not then match a table entry exactly has no
price: a cost is never guessed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

log = logging.getLogger("llmtrace")

PER_MILLION = 1_000_000
_PREFIX = re.compile(r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:anthropic|openai|azure|bedrock|vertex_ai)[./]")
_SUFFIX = re.compile(r"(?:-v\d+(?::\d+)?|:\d+|@\d{8}|@latest|-\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")
_PRICE_KEYS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float
    provider: str | None = None  # whose caching rules apply (minimum lengths, multipliers)


@dataclass(frozen=True, slots=True)
class Cost:
    total: float  # what the call cost
    uncached: float  # what it would have cost with every input token at the input price
    savings: float  # uncached - total: negative when write premiums were not repaid
    read_discount: float  # cache_read tokens x (input - cache read price), >= 0
    write_premium: float  # cache_write tokens x (write price - input price), >= 0


def normalize(model: str) -> str:
    name = _PREFIX.sub("", model.strip().lower())
    previous = None
    while previous != name:  # "claude-haiku-4-5-20251001-v1:0" has two suffixes
        previous, name = name, _SUFFIX.sub("", name)
    return name


class PriceTable:
    """The bundled price table, overlaid by a user's file or mapping in the same format (docs/pricing.md)."""

    def __init__(self, prices: Mapping[str, ModelPrice], as_of: str) -> None:
        self._prices = dict(prices)
        self.as_of = as_of
        self._resolved: dict[str, ModelPrice | None] = {}  # model string as sent -> its price
        self._unknown: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
             strict: bool = False) -> PriceTable:
        """The bundled table, overlaid by `source` (a JSON file or a mapping), or else by `$LLMTRACE_PRICING_FILE`.

        A broken override never raises: it is reported once on the `llmtrace` logger and the bundled
        table is used. With `strict` (the `llmtrace cost` command), it raises ValueError instead.
        """
        bundled = _read_bundled("prices.json")
        prices = _parse(bundled, bundled["cache_multipliers"])
        as_of = bundled["as_of"]
        if source is None:
            source = os.environ.get("LLMTRACE_PRICING_FILE") or None
        if source is not None:
            where = "the pricing mapping" if isinstance(source, Mapping) else f"pricing file {os.fspath(source)!r}"
            try:
                data = source if isinstance(source, Mapping) else _read_file(source)
                if not isinstance(data, Mapping):
                    raise ValueError(f"expected a JSON object, not {type(data).__name__}")
                prices.update(_parse(data, {**bundled["cache_multipliers"], **data.get("cache_multipliers", {})}))
                as_of = str(data.get("as_of", as_of))
            except Exception as exc:  # unreadable, not JSON, wrong shape, negative prices...
                if strict:
                    raise ValueError(f"{where}: {exc}") from None
                log.warning("llmtrace ignored %s: %s; using the bundled prices of %s", where, exc, as_of)
        return cls(prices, as_of)

    def lookup(self, model: str) -> ModelPrice | None:
        try:
            return self._resolved[model]
        except KeyError:
            price = self._prices.get(normalize(model))
            if len(self._resolved) < 4096:  # bounded: model strings come from requests
                self._resolved[model] = price
            return price

    def cost(self, model: str, *, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int,
             cache_write_1h: int = 0) -> Cost | None:
        """The cost of a call; `input_tokens` includes the cache reads and writes. None for an unknown model
        (reported once per model on the `llmtrace` logger)."""
        price = self.lookup(model)
        if price is None:
            with self._lock:
                first = model not in self._unknown and len(self._unknown) < 1024
                self._unknown.add(model)
            if first:
                log.warning("llmtrace has no price for model %r: its calls get no cost (add it with "
                            "instrument(pricing=...) or LLMTRACE_PRICING_FILE)", model)
            return None
        write_5m = cache_write - cache_write_1h
        uncached_input = max(input_tokens - cache_read - cache_write, 0)
        total = (uncached_input * price.input + cache_read * price.cache_read + write_5m * price.cache_write_5m
                 + cache_write_1h * price.cache_write_1h + output_tokens * price.output)
        uncached = input_tokens * price.input + output_tokens * price.output
        read_discount = cache_read * max(price.input - price.cache_read, 0.0)
        write_premium = (write_5m * max(price.cache_write_5m - price.input, 0.0)
                         + cache_write_1h * max(price.cache_write_1h - price.input, 0.0))
        return Cost(total, uncached, uncached - total, read_discount, write_premium)


def min_cacheable_tokens(model: str, provider: str | None = None) -> int | None:
    """The model's minimum cacheable prefix in tokens, or None when the table does not know it."""
    table = _minimums()
    found = table["models"].get(model) or table["models"].get(normalize(model))
    if found is None and provider is not None:
        found = table["provider_defaults"].get(provider)
    return found


@lru_cache(maxsize=1)
def _minimums() -> dict[str, Any]:
    return _read_bundled("cache_minimums.json")


def _read_file(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None


def _read_bundled(name: str) -> dict[str, Any]:
    return json.loads(resources.files("llmtrace").joinpath("data", name).read_text(encoding="utf-8"))


def _parse(data: Mapping[str, Any], multipliers: Mapping[str, Mapping[str, float]]) -> dict[str, ModelPrice]:
    """Prices per token from a table of USD per million tokens; raises ValueError on a malformed entry."""
    models = data.get("models")
    if not isinstance(models, Mapping):
        raise ValueError('expected an object "models": {"<model>": {"input": ..., "output": ...}}')
    parsed = {}
    for name, entry in models.items():
        if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
            raise ValueError(f"model {name!r}: needs at least 'input' and 'output' prices")
        factors = multipliers.get(entry.get("provider", ""), {"cache_read": 1.0, "cache_write_5m": 1.0,
                                                             "cache_write_1h": 1.0})
        values = {}
        for key in _PRICE_KEYS:
            value = entry[key] if key in entry else entry["input"] * factors[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"model {name!r}: {key} must be a non-negative number, not {value!r}")
            values[key] = value / PER_MILLION
        provider = entry.get("provider")
        parsed[normalize(name)] = ModelPrice(**values, provider=provider if isinstance(provider, str) else None)
    return parsed
