"""Imports go one way: no module of the package imports, even late inside a function, a module
that imports it back. A cycle means two ideas live in the wrong files (issue 15, item 17)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import qtran

PACKAGE = Path(qtran.__file__).parent

# Cycles accepted as known debt, kept visible (none now: the fig3/fig4 <-> claims cycles went when
# the names both read moved to fig3_layout/fig4_layout). Anything added here needs a reason in NOTES.md.
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every qtran module `path` imports, at top level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qtran"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qtran"))
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ re-exports its children; importing it is not a dependency cycle.
    return {m: {d for d in imports_of(p, modules) if d != m and not m.startswith(d + ".")}
            for m, p in paths.items()}


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), set()

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_no_import_cycles_in_the_package():
    found = cycles(import_graph())
    unexpected = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not unexpected, f"modules importing each other: {unexpected}"


@pytest.mark.parametrize("low, high", [("qtran.host_loop", "qtran.run"), ("qtran.saved_policy", "qtran.cli"),
                                       ("qtran.plots", "qtran.redraw"), ("qtran.experiments.claims", "qtran.cli")])
def test_lower_modules_do_not_import_the_drivers(low, high):
    assert high not in import_graph()[low]
