"""The `llmtrace` command as a new user meets it: help always prints, a missing extra is named in one line,
bad arguments are refused by exit code and message, and the README names the extras the examples need."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from llmtrace.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
# Runs the CLI with some modules made unimportable, as on a machine without the extra that brings them.
WITHOUT = "import sys; sys.modules.update(dict.fromkeys(sys.argv[1].split(','))); from llmtrace.cli import main; " \
          "sys.exit(main(sys.argv[2:]))"


def cli_without(modules: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT, modules, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.mark.parametrize("command, modules", [("emulator", "starlette,uvicorn"), ("demo", "rich,plotly,starlette")])
def test_help_prints_without_the_extra(command: str, modules: str) -> None:
    done = cli_without(modules, command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: llmtrace {command}") and "--help" in done.stdout


@pytest.mark.parametrize("command, modules, extra", [("emulator", "starlette,uvicorn", "emulator"),
                                                     ("demo", "rich,plotly", "demo")])
def test_a_missing_extra_is_named_in_one_line(command: str, modules: str, extra: str) -> None:
    done = cli_without(modules, command)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"llmtrace {command}: {modules.replace(',', ', ')} not installed; install "
                                        f"the {extra} extra: pip install 'llmtrace-otel[{extra}]'"]


def test_what_each_subcommand_needs_is_what_its_extra_installs() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def installs(extra: str) -> set[str]:
        names: set[str] = set()
        for requirement in extras[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group()  # type: ignore[union-attr]
            if name == "llmtrace-otel":
                for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                    names |= installs(inner.strip())
            else:
                names.add(name.lower())
        return names

    for command in SUBCOMMANDS.values():
        if command.extra:
            assert set(command.needs) <= installs(command.extra), command


@pytest.mark.parametrize("share", ["2", "-0.1", "nan", "lots"])
def test_emulator_refuses_a_fault_share_outside_0_to_1(share: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["emulator", "--fault-rate", f"disconnect={share}"])
    assert stopped.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message.startswith("llmtrace emulator: error: argument --fault-rate:") and f"disconnect={share}" in message


def test_emulator_config_refuses_a_share_above_1() -> None:
    from llmtrace.emulator import EmulatorConfig

    with pytest.raises(ValueError, match="disconnect=2"):
        EmulatorConfig(fault_rates={"disconnect": 2.0})


def test_readme_names_the_extras_the_examples_need() -> None:
    readme = (ROOT / "README.md").read_text()
    lines = [line for line in readme.splitlines() if "pip install" in line and "examples/" in line]
    assert lines, "the README quickstart has no install line for the examples"
    named = set(re.search(r"llmtrace-otel\[([^\]]*)\]", lines[0]).group(1).split(","))  # type: ignore[union-attr]
    for example in sorted((ROOT / "examples").glob("[!_]*.py")):
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(example.read_text()))
                    if isinstance(node, ast.Import) for alias in node.names}
        needed = (imported & {"anthropic", "openai"}) | {"emulator"}  # LLMTRACE_EMULATOR=1 serves the local APIs
        assert needed <= named, (example.name, needed - named)
