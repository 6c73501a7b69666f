"""No import cycle anywhere in bench/, baselines/ or methods/: every import, top-level or inside a function.

A cycle makes a module's behaviour depend on which of its partners was imported first, and it is
the shape issue 14 removed from bench/metrics (base <-> protocols, nuscenes_io <-> nuscenes_tracking).
The graph is read statically from each file's AST (an import the code never runs still counts).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_graph(package: str) -> dict[str, set[str]]:
    """``module -> modules of the same package it imports`` (a submodule's import of a parent package's
    ``__init__`` is not an edge: Python has that package loaded first anyway)."""
    files = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here[: len(here) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                wanted = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in wanted:
                while target and target not in files:  # "pkg.mod.attr" -> "pkg.mod"
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (depth-first search with an explicit stack)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(path.pop())
            elif nxt in path:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in done:
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_and_function_level_imports():
    graph = module_graph("bench")
    assert "bench.metrics.base" in graph["bench.metrics.tracking"]  # a top-level absolute import
    assert "bench.interface" in graph["bench.registry"]  # an import inside a function


@pytest.mark.parametrize("package", ["bench", "baselines", "methods"])
def test_no_import_cycle(package: str) -> None:
    cycle = find_cycle(module_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
