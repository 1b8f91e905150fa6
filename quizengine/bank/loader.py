"""Load YAML keeping the line and column of every node, so errors can point at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[Any, ...]  # a path into the data: keys and list indices


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Problem:
    """One finding of the validator, in the compiler form editors understand."""

    path: str
    mark: Mark
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.mark.line}:{self.mark.col}: {self.severity}: {self.message}"


@dataclass
class Document:
    """Parsed YAML data with the marks of its nodes."""

    path: str
    data: Any
    marks: dict[Path_, Mark] = field(default_factory=dict)  # value nodes
    key_marks: dict[Path_, Mark] = field(default_factory=dict)  # the key of a mapping entry
    problems: list[Problem] = field(default_factory=list)

    def mark(self, path: Path_, key: bool = False) -> Mark:
        """Return the mark of the node at ``path``, or of its nearest ancestor that exists."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if key and p in self.marks:
                return self.marks[p]
            p = p[:-1]
        return self.marks.get((), Mark(1, 1))

    def problem(self, path: Path_, message: str, severity: str = "error", key: bool = False) -> Problem:
        return Problem(self.path, self.mark(path, key), severity, message)


# libyaml's parser when PyYAML was built with it (several times faster); same nodes and marks.
class _Builder(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A SafeLoader used to compose nodes and resolve scalars."""


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _build(doc: Document, node: yaml.Node, path: Path_, ctor: _Builder) -> Any:
    doc.marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                doc.problems.append(Problem(doc.path, _mark(key_node), "error", "a mapping key must be a plain value"))
                continue
            if key in out:
                first = doc.key_marks[path + (key,)]
                doc.problems.append(Problem(doc.path, _mark(key_node), "error",
                                            f"duplicate key {key!r} (first at line {first.line})"))
                continue
            doc.key_marks[path + (key,)] = _mark(key_node)
            out[key] = _build(doc, value_node, path + (key,), ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(doc, child, path + (i,), ctor) for i, child in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)


def parse_yaml(text: str, path: str) -> Document:
    """Parse YAML text; a syntax error becomes a Problem at its line and column."""
    doc = Document(path=path, data=None)
    try:
        loader = _Builder(text)
        try:
            node = loader.get_single_node()
            doc.data = None if node is None else _build(doc, node, (), loader)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        mark = Mark(m.line + 1, m.column + 1) if m else Mark(1, 1)
        msg = " ".join(filter(None, [e.context, e.problem])) or "invalid YAML"
        doc.problems.append(Problem(path, mark, "error", f"YAML syntax: {msg}"))
    except yaml.YAMLError as e:
        doc.problems.append(Problem(path, Mark(1, 1), "error", f"YAML syntax: {e}"))
    return doc


def read_yaml(path: Path) -> Document:
    """Read and parse one file; unreadable files become a Problem too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        doc = Document(path=str(path), data=None)
        doc.problems.append(Problem(str(path), Mark(1, 1), "error", f"cannot read file: {e}"))
        return doc
    return parse_yaml(text, str(path))
