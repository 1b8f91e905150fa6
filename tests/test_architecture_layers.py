"""The layers hold (issue 12): views don't build queries, modules stay small, the calculator and the
services stand on their own. Read from the source with ast, so a function-local import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "quizengine"
MAX_LINES = 400
QUERY_BUILDERS = {"select", "update", "insert", "delete"}


def modules(folder: Path = PACKAGE) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every import of a module as (absolute module, names), function-local ones included."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [a.name for a in node.names]))
    return out


def query_calls(path: Path) -> list[str]:
    """Calls in a module of SQLAlchemy's select/update/insert/delete, however they were imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()  # local names bound to a query builder
    modules_: set[str] = set()  # local names bound to sqlalchemy (or a submodule)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names |= {a.asname or a.name for a in node.names if a.name in QUERY_BUILDERS}
            modules_ |= {a.asname or a.name for a in node.names if a.name in ("sql", "sqlalchemy")}
        elif isinstance(node, ast.Import):
            modules_ |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] == "sqlalchemy"}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in names:
            found.append(f"{path.name}:{node.lineno}: {f.id}(")
        elif isinstance(f, ast.Attribute) and f.attr in QUERY_BUILDERS and isinstance(f.value, ast.Name) \
                and f.value.id in modules_:
            found.append(f"{path.name}:{node.lineno}: {f.value.id}.{f.attr}(")
    return found


def test_no_view_module_builds_a_query():
    views = modules(PACKAGE / "web")
    assert len(views) >= 8
    found = [call for path in views for call in query_calls(path)]
    assert not found, "queries belong in services/: " + "; ".join(found)


@pytest.mark.parametrize("source, expected", [
    ("from sqlalchemy import select\nselect(1)\n", 1),
    ("from sqlalchemy import update as u\nu(1)\n", 1),
    ("import sqlalchemy as sa\nsa.delete(1)\n", 1),
    ("from sqlalchemy import sql\nsql.insert(1)\n", 1),
    ("d = {}\nd.update(a=1)\n", 0),  # a dict's update is no query
])
def test_the_query_check_sees_each_way_of_importing(tmp_path, source, expected):
    path = tmp_path / "view.py"
    path.write_text(source)
    assert len(query_calls(path)) == expected


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules()}
    assert len(sizes) > 30
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"split these modules (at most {MAX_LINES} lines): {over}"


def test_calc_imports_nothing_else_of_the_package():
    calc = modules(PACKAGE / "calc")
    assert len(calc) >= 8
    outside = [(p.name, m) for p in calc for m, _ in imports(p)
               if m.split(".")[0] == "quizengine" and not m.startswith("quizengine.calc")]
    assert not outside, f"calc/ must stand alone: {outside}"


def test_services_know_nothing_of_flask_or_the_web_layer():
    found = [(p.name, m) for p in modules(PACKAGE / "services") for m, _ in imports(p)
             if m.split(".")[0] == "flask" or m.startswith("quizengine.web")]
    assert not found, found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (``from pkg import mod`` is an edge to mod)."""
    names = {}
    for p in modules():
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        names[name.removesuffix(".__init__")] = p
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        for module, imported in imports(path):
            for target in [f"{module}.{n}" if f"{module}.{n}" in names else module for n in imported or [""]]:
                if target in names and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_function_local_imports_included():
    found = cycles(import_graph())
    assert not found, found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_resolves_relative_imports():
    found = dict(imports(PACKAGE / "services" / "closing.py"))
    assert "quizengine.models" in found and "quizengine.services.attempt_rows" in found
    assert "quizengine.db" in found
