"""How the core modules depend on each other: one way, engine <- providers, and no circle (type-only imports
included, since a circle there is a circle in the design)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmtrace"
OPTIONAL = ("emulator", "demo")  # extras with modules of their own, outside the core


def core_imports() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if any(p in OPTIONAL for p in parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                if node.module:
                    found.add(".".join([*base, node.module]))
                else:
                    found |= {".".join([*base, alias.name]) for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_no_import_circle_among_the_core_modules():
    graph = core_imports()
    circles = sorted(f"{a} -> {b}" for a in graph for b in graph[a] if a in reachable(graph, b))
    assert not circles, circles


def test_providers_build_on_the_engine_and_the_engine_knows_no_provider():
    graph = core_imports()
    assert "llmtrace._stream" in graph["llmtrace.providers"]
    engine = reachable(graph, "llmtrace._stream") | {"llmtrace._stream"}
    assert not {m for m in engine if m.startswith("llmtrace.providers")}
