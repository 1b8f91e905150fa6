"""The package's import graph, read from the source with ast: every import counts, those inside
functions included (a function-local import is how a cycle hides)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "quizengine"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, anywhere in its file: ``from P import x`` is an edge to
    the module P.x when x is a module, else to P (x is a name defined in P)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "quizengine"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "quizengine":
                target = node.module
            else:
                continue
            for a in node.names:
                out.add(f"{target}.{a.name}" if f"{target}.{a.name}" in known else target)
    resolved = set()
    for target in out:
        while target not in known and "." in target:  # `import quizengine.x.y` of a name in a module
            target = target.rpartition(".")[0]
        if target in known and target != name:
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# -- the checker itself, on small graphs and sources

@pytest.mark.parametrize("edges,cyclic", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"a"}}, True),
    ({"a": {"b", "c"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}, True),
    ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, False),  # a diamond is not a cycle
])
def test_find_cycle_on_small_graphs(edges, cyclic):
    assert (find_cycle(edges) is not None) is cyclic


def test_function_local_imports_are_edges(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ..grading import numbers_match\n    return numbers_match\n")
    known = {"quizengine.grading", "quizengine.bank.variant"}
    assert imports_of("quizengine.bank.variant", src, known) == {"quizengine.grading"}


def test_relative_imports_of_modules_and_packages(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from . import schema, types\nfrom .types.base import field\nimport quizengine.calc.spec\n")
    known = {"quizengine.bank", "quizengine.bank.schema", "quizengine.bank.types", "quizengine.bank.types.base",
             "quizengine.calc.spec", "quizengine.bank.catalog"}
    assert imports_of("quizengine.bank.catalog", src, known) == {
        "quizengine.bank.schema", "quizengine.bank.types", "quizengine.bank.types.base", "quizengine.calc.spec"}


# -- the package

def test_the_graph_sees_the_whole_package():
    edges = graph()
    assert {"quizengine.bank.variant", "quizengine.grading", "quizengine.bank.types",
            "quizengine.services.attempts", "quizengine.web.api"} <= set(edges)
    assert "quizengine.bank.types" in edges["quizengine.bank.variant"]


def test_no_import_cycle_in_the_package_function_local_imports_included():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_bank_never_imports_grading_services_or_web():
    edges = graph()
    above = ("quizengine.grading", "quizengine.services", "quizengine.web", "quizengine.cli", "quizengine.models",
             "quizengine.db")
    wrong = {(m, t) for m, ts in edges.items() if m.startswith("quizengine.bank") for t in ts if t.startswith(above)}
    assert not wrong


def test_calculator_imports_nothing_else_of_the_package():
    edges = graph()
    wrong = {(m, t) for m, ts in edges.items() if m.startswith("quizengine.calc")
             for t in ts if not t.startswith("quizengine.calc")}
    assert not wrong
