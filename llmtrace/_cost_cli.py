"""`llmtrace cost`: what a workload costs a month with and without prompt caching."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

from ._pricing import PER_MILLION, PriceTable

DAYS = 30
TTL_MINUTES = {"5m": 5, "1h": 60}


@dataclass(frozen=True)
class Estimate:
    requests_per_month: float
    uncached: float  # every prompt token at the input price
    cached_reads: float  # every request reads the cacheable prefix
    cache_writes: float  # the extra for writing the prefix once per TTL window
    writes_per_month: float
    total: float
    savings: float
    break_even_reads: int  # reads of a prefix that repay one write


def estimate(*, input_price: float, output_price: float, read_multiplier: float, write_multiplier: float,
             requests_per_minute: float, prompt_tokens: int, cached_share: float, output_tokens: int,
             ttl: str) -> Estimate:
    """Monthly cost; prices in USD per million tokens."""
    requests = requests_per_minute * 60 * 24 * DAYS
    prefix = prompt_tokens * cached_share
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
    return Estimate(requests, uncached, cached, write_extra, writes, total, uncached - total, break_even)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="price the workload with this model's prices from the table")
    parser.add_argument("--input-price", type=float, help="USD per million input tokens (instead of --model)")
    parser.add_argument("--output-price", type=float, default=0.0, help="USD per million output tokens")
    parser.add_argument("--cache-read-multiplier", type=float, default=0.1, help="cache read price / input price")
    parser.add_argument("--cache-write-multiplier", type=float,
                        help="cache write price / input price (default 1.25 for a 5m TTL, 2.0 for 1h)")
    parser.add_argument("--ttl", choices=sorted(TTL_MINUTES), default="5m", help="cache TTL (default 5m)")
    parser.add_argument("--requests-per-minute", type=float, required=True)
    parser.add_argument("--prompt-tokens", type=int, required=True, help="input tokens per request")
    parser.add_argument("--cached-share", type=float, default=1.0,
                        help="share of the prompt that is a reusable cached prefix, 0..1 (default 1)")
    parser.add_argument("--output-tokens", type=int, default=0, help="output tokens per request")
    parser.add_argument("--pricing", help="a price file overriding the bundled table (see docs/pricing.md)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.cached_share <= 1:
        print("llmtrace cost: --cached-share must be between 0 and 1", file=sys.stderr)
        return 2
    write_multiplier = args.cache_write_multiplier or (2.0 if args.ttl == "1h" else 1.25)
    read_multiplier, label = args.cache_read_multiplier, "custom prices"
    if args.model:
        table = PriceTable.load(args.pricing)
        price = table.lookup(args.model)
        if price is None:
            print(f"llmtrace cost: no price for {args.model!r}; give --input-price and --output-price", file=sys.stderr)
            return 2
        input_price, output_price = price.input * PER_MILLION, price.output * PER_MILLION
        read_multiplier = price.cache_read / price.input if price.input else 0.0
        write_multiplier = (price.cache_write_1h if args.ttl == "1h" else price.cache_write_5m) / price.input \
            if price.input else 0.0
        label = f"{args.model}, prices of {table.as_of}"
    elif args.input_price is not None:
        input_price, output_price = args.input_price, args.output_price
    else:
        print("llmtrace cost: give --model or --input-price", file=sys.stderr)
        return 2
    result = estimate(input_price=input_price, output_price=output_price, read_multiplier=read_multiplier,
                      write_multiplier=write_multiplier, requests_per_minute=args.requests_per_minute,
                      prompt_tokens=args.prompt_tokens, cached_share=args.cached_share,
                      output_tokens=args.output_tokens, ttl=args.ttl)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    share = f"{args.cached_share:.0%}"
    rows = [
        ("without caching", result.uncached, ""),
        ("with caching", result.cached_reads, "every request reads the cached prefix"),
        ("+ cache writes", result.cache_writes,
         f"one write per {args.ttl} TTL window ({result.writes_per_month:,.0f} a month)"),
        ("= total", result.total, ""),
        ("savings", result.savings, f"{result.savings / result.uncached:.1%} of the uncached cost"
         if result.uncached else ""),
    ]
    print(f"llmtrace cost ({label})")
    print(f"  {args.requests_per_minute:,.0f} requests/min = {result.requests_per_month:,.0f} a month ({DAYS} days); "
          f"{args.prompt_tokens:,} prompt tokens, {share} cacheable; {args.output_tokens:,} output tokens")
    print(f"  input ${input_price:g}/M, output ${output_price:g}/M, cache read {read_multiplier:g}x, "
          f"cache write {write_multiplier:g}x ({args.ttl})")
    print()
    print(f"  {'':<16}{'per month':>16}")
    for name, value, note in rows:
        print(f"  {name:<16}{'$' + format(value, ',.2f'):>16}  {note}".rstrip())
    print()
    if result.break_even_reads:
        print(f"  break-even: a cache write costs {write_multiplier - 1:g}x input extra and each read saves "
              f"{1 - read_multiplier:g}x, so a prefix pays for itself after {result.break_even_reads} "
              f"read{'s' if result.break_even_reads > 1 else ''} within its TTL")
    return 0
