"""The `llmtrace` command: `demo`, `emulator` and `cost`.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`,
imported only when chosen so that `llmtrace cost` works without the demo extras installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

_SUBCOMMANDS = {
    "demo": ("llmtrace.demo.cli", "run a traced workload against the local emulator and show it live"),
    "emulator": ("llmtrace.emulator.cli", "serve the local Anthropic/OpenAI emulator"),
    "cost": ("llmtrace._cost_cli", "monthly cost with and without prompt caching"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="llmtrace", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(_SUBCOMMANDS) + "}")
    chosen = next((a for a in argv if a in _SUBCOMMANDS), None)
    for name, (module, help_text) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                parser.exit(2, f"llmtrace {name}: missing optional dependency ({exc.name}); "
                               f"install with: pip install 'llmtrace-otel[demo]'\n")
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
