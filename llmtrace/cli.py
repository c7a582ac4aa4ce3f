"""The `llmtrace` command: `demo`, `emulator` and `cost`.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`, importable
without its extra, so that `--help` always works; before a subcommand runs, the modules its extra brings are
checked, and a missing one is named in one line with the extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import NamedTuple


class Subcommand(NamedTuple):
    module: str
    help: str
    extra: str | None  # the llmtrace-otel extra that installs what it needs
    needs: tuple[str, ...]  # import names of what that extra installs and the subcommand cannot run without


SUBCOMMANDS = {
    "demo": Subcommand("llmtrace.demo.cli", "run a traced workload against the local emulator and show it live",
                       "demo", ("anthropic", "openai", "rich", "plotly", "starlette", "uvicorn")),
    "emulator": Subcommand("llmtrace.emulator.cli", "serve the local Anthropic/OpenAI emulator", "emulator",
                           ("starlette", "uvicorn")),
    "cost": Subcommand("llmtrace._cost_cli", "monthly cost with and without prompt caching", None, ()),
}


def missing_modules(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="llmtrace", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, command in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if name == chosen:  # only the chosen one is imported: `llmtrace cost` stays quick
            module = importlib.import_module(command.module)
            module.add_arguments(p)
            p.set_defaults(_run=module.run, _command=command)
    args = parser.parse_args(argv)
    command = args._command
    missing = missing_modules(command.needs)
    if missing:
        parser.exit(2, f"llmtrace {args.command}: {', '.join(missing)} not installed; install the "
                       f"{command.extra} extra: pip install 'llmtrace-otel[{command.extra}]'\n")
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
