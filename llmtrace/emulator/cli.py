"""`llmtrace emulator`: serve the local Anthropic/OpenAI emulator in the foreground."""

from __future__ import annotations

import argparse

from ._common import FAULTS


def fault_rate(item: str) -> tuple[str, float]:
    """`FAULT=SHARE`, with a known fault and a share of requests between 0 and 1."""
    name, _, share = item.partition("=")
    if name not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {name!r} in {item!r}; known: {', '.join(FAULTS)}")
    try:
        value = float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants FAULT=SHARE, not {item!r}") from None
    if not 0 <= value <= 1:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"the share in {item!r} must be between 0 and 1 (a share of requests)")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    parser.add_argument("--ttft", type=float, default=0.25, help="seconds to the first token (default: %(default)s)")
    parser.add_argument("--chunk-interval", type=float, default=0.01,
                        help="seconds between streamed chunks (default: %(default)s)")
    parser.add_argument("--reply-tokens", type=int, default=60, help="tokens in an answer (default: %(default)s)")
    parser.add_argument("--fault-rate", type=fault_rate, action="append", default=[], metavar="FAULT=SHARE",
                        help=f"inject a fault into a share (0..1) of requests, e.g. disconnect=0.1 "
                             f"({', '.join(FAULTS)}); a request's x-llmtrace-fault header also asks for one")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    from .app import Emulator, EmulatorConfig
    from .server import server

    try:
        config = EmulatorConfig(time_to_first_token=args.ttft, seconds_per_chunk=args.chunk_interval,
                                reply_tokens=args.reply_tokens, fault_rates=dict(args.fault_rate))
    except ValueError as exc:
        raise SystemExit(f"llmtrace emulator: {exc}") from None
    base = f"http://{args.host}:{args.port}"
    print(f"Anthropic: base_url={base}   OpenAI: base_url={base}/v1   (any API key)", flush=True)
    server(Emulator(config), args.host, args.port, args.log_level).run()
    return 0
