"""`llmtrace cost`: what a workload costs a month with and without prompt caching."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any

from ._pricing import PER_MILLION, PriceTable, min_cacheable_tokens

DAYS = 30
TTL_MINUTES = {"5m": 5, "1h": 60}


@dataclass(frozen=True)
class Estimate:
    requests_per_month: float
    uncached: float  # every prompt token at the input price
    cached_reads: float  # every request reads the cacheable prefix (or, under the minimum, nothing is cached)
    cache_write_extra: float  # writing the prefix once per TTL window: the write price less the read it replaces
    writes_per_month: float
    total: float
    savings: float
    break_even_reads: int  # reads of a prefix that repay one write
    cacheable: bool  # the prefix is at least the model's minimum cacheable length
    min_cacheable_tokens: int | None


def estimate(*, input_price: float, output_price: float, read_multiplier: float, write_multiplier: float,
             requests_per_minute: float, prompt_tokens: int, cached_share: float, output_tokens: int,
             ttl: str, min_cache_tokens: int | None = None) -> Estimate:
    """Monthly cost; prices in USD per million tokens. A prefix under `min_cache_tokens` is not cached at all."""
    requests = requests_per_minute * 60 * 24 * DAYS
    prefix = prompt_tokens * cached_share
    cacheable = min_cache_tokens is None or prefix >= min_cache_tokens
    if not cacheable:  # the provider processes it uncached, without error: no reads, no writes
        prefix = 0
    per_token_in, per_token_out = input_price / PER_MILLION, output_price / PER_MILLION
    uncached = requests * (prompt_tokens * per_token_in + output_tokens * per_token_out)
    cached = requests * ((prompt_tokens - prefix) * per_token_in + prefix * per_token_in * read_multiplier
                         + output_tokens * per_token_out)
    # Conservatively, the prefix is written again once per TTL window (reads refresh it, so it is often less).
    writes = min(requests, DAYS * 24 * 60 / TTL_MINUTES[ttl]) if prefix else 0
    write_extra = writes * prefix * per_token_in * (write_multiplier - read_multiplier)
    total = cached + write_extra
    premium, discount = write_multiplier - 1, 1 - read_multiplier
    break_even = math.ceil(premium / discount - 1e-9) if discount > 0 and premium > 0 else 0
    return Estimate(requests, uncached, cached, write_extra, writes, total, uncached - total, break_even,
                    cacheable, min_cache_tokens)


def _number(minimum: float = 0.0, maximum: float = math.inf, kind: type = float) -> Any:
    """An argparse type: a finite number in [minimum, maximum]."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not (minimum <= value <= maximum) or not math.isfinite(value):  # NaN fails the first test
            bound = f"between {minimum:g} and {maximum:g}" if maximum < math.inf else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, not {text!r}")
        return value
    return parse


REQUIRED = ("requests_per_minute", "prompt_tokens")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    price, share, count = _number(), _number(0, 1), _number(kind=int)
    parser.add_argument("--model", help="price the workload with this model's prices and minimum cacheable length "
                                        "from the table")
    parser.add_argument("--input-price", type=price,
                        help="USD per million input tokens (instead of --model's; its cache prices follow)")
    parser.add_argument("--output-price", type=price,
                        help="USD per million output tokens (default: --model's, else 0)")
    parser.add_argument("--cache-read-multiplier", type=price,
                        help="cache read price / input price (default: --model's, else 0.1)")
    parser.add_argument("--cache-write-multiplier", type=price,
                        help="cache write price / input price (default: --model's, else 1.25 for a 5m TTL, 2.0 for 1h)")
    parser.add_argument("--min-cache-tokens", type=count,
                        help="shortest prefix the model caches (default: --model's, from the table)")
    parser.add_argument("--ttl", choices=sorted(TTL_MINUTES), default="5m", help="cache TTL (default 5m)")
    parser.add_argument("--requests-per-minute", type=price, help="requests per minute (required)")
    parser.add_argument("--prompt-tokens", type=count, help="input tokens per request (required)")
    parser.add_argument("--cached-share", type=share, default=1.0,
                        help="share of the prompt that is a reusable cached prefix, 0..1 (default 1)")
    parser.add_argument("--output-tokens", type=count, default=0, help="output tokens per request")
    parser.add_argument("--pricing", help="a price file overriding the bundled table (see docs/pricing.md)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    # checked after parsing, so that an unknown flag is reported as such rather than as missing arguments
    parser.set_defaults(_parser=parser)


def _fail(message: str) -> int:
    print(f"llmtrace cost: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    missing = [f"--{name.replace('_', '-')}" for name in REQUIRED if getattr(args, name) is None]
    if missing:
        args._parser.error(f"the following arguments are required: {', '.join(missing)}")
    try:
        table = PriceTable.load(args.pricing, strict=True) if args.model or args.pricing else None
    except ValueError as exc:
        return _fail(f"cannot use {exc}")
    input_price: float | None = None
    read_multiplier, write_multiplier, output_price = 0.1, 2.0 if args.ttl == "1h" else 1.25, 0.0
    min_cache_tokens, label = None, "custom prices"
    if args.model:
        price = table.lookup(args.model)  # type: ignore[union-attr]
        if price is None:
            return _fail(f"no price for {args.model!r}; give --input-price and --output-price")
        input_price, output_price = price.input * PER_MILLION, price.output * PER_MILLION
        if price.input:
            read_multiplier = price.cache_read / price.input
            write_multiplier = (price.cache_write_1h if args.ttl == "1h" else price.cache_write_5m) / price.input
        min_cache_tokens = min_cacheable_tokens(args.model, price.provider)
        overridden = [name for name in ("input_price", "output_price", "cache_read_multiplier",
                                        "cache_write_multiplier", "min_cache_tokens") if getattr(args, name) is not None]
        label = f"{args.model}, prices of {table.as_of}"  # type: ignore[union-attr]
        if overridden:
            label += "; given: " + ", ".join(f"--{name.replace('_', '-')}" for name in overridden)
    elif args.input_price is None:
        return _fail("give --model or --input-price")
    if args.input_price is not None:
        input_price = args.input_price
    assert input_price is not None
    output_price = args.output_price if args.output_price is not None else output_price
    if args.cache_read_multiplier is not None:
        read_multiplier = args.cache_read_multiplier
    if args.cache_write_multiplier is not None:
        write_multiplier = args.cache_write_multiplier
    if args.min_cache_tokens is not None:
        min_cache_tokens = args.min_cache_tokens
    result = estimate(input_price=input_price, output_price=output_price, read_multiplier=read_multiplier,
                      write_multiplier=write_multiplier, requests_per_minute=args.requests_per_minute,
                      prompt_tokens=args.prompt_tokens, cached_share=args.cached_share,
                      output_tokens=args.output_tokens, ttl=args.ttl, min_cache_tokens=min_cache_tokens)
    if args.json:
        # to the micro-dollar: binary floats would print 64800.00000000001
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(result).items()},
                         indent=2))
        return 0
    print(f"llmtrace cost ({label})")
    print(f"  {args.requests_per_minute:,.0f} requests/min = {result.requests_per_month:,.0f} a month ({DAYS} days); "
          f"{args.prompt_tokens:,} prompt tokens, {args.cached_share:.0%} cacheable; {args.output_tokens:,} output tokens")
    print(f"  input ${input_price:g}/M, output ${output_price:g}/M, cache read {read_multiplier:g}x, "
          f"cache write {write_multiplier:g}x ({args.ttl})")
    print()
    print(f"  {'':<18}{'per month':>16}")
    for name, value, note in _rows(result, args.ttl, read_multiplier, write_multiplier):
        print(f"  {name:<18}{'$' + format(value, ',.2f'):>16}  {note}".rstrip())
    print()
    if not result.cacheable:
        prefix = args.prompt_tokens * args.cached_share
        print(f"  not cached: the {prefix:,.0f}-token prefix is under the {result.min_cacheable_tokens:,} tokens "
              f"{args.model or 'the model'} needs to cache a prefix, so every request pays the full input price "
              "and caching saves nothing")
    elif result.break_even_reads:
        print(f"  break-even: a cache write costs {write_multiplier - 1:g}x input extra and each read saves "
              f"{1 - read_multiplier:g}x, so a prefix pays for itself after {result.break_even_reads} "
              f"read{'s' if result.break_even_reads > 1 else ''} within its TTL")
    return 0


def _rows(result: Estimate, ttl: str, read: float, write: float) -> list[tuple[str, float, str]]:
    savings_note = f"{result.savings / result.uncached:.1%} of the uncached cost" if result.uncached else ""
    if not result.cacheable:
        return [("without caching", result.uncached, ""),
                ("with caching", result.total, "the same: the prefix is too short to cache"),
                ("savings", result.savings, savings_note)]
    return [
        ("without caching", result.uncached, ""),
        ("with caching", result.cached_reads, "every request reads the cached prefix"),
        ("+ write extra", result.cache_write_extra,
         f"one write per {ttl} TTL window ({result.writes_per_month:,.0f} a month), each at {write:g}x input "
         f"in place of a {read:g}x read"),
        ("= total", result.total, ""),
        ("savings", result.savings, savings_note),
    ]
