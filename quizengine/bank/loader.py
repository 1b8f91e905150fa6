"""Load YAML keeping the line and column of every node, so errors can point at them."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[Any, ...]  # a path into the data: keys and list indices

# Budgets for one file, so that a small file can't make a large amount of work (banks/README.md).
MAX_FILE_BYTES = 1024 * 1024  # the editor's limit too
MAX_NODES = 100_000  # nodes after expanding aliases ("billion laughs" is 366 bytes and ~10^9 nodes)
MAX_DEPTH = 100  # levels of nesting


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
    message: str  # an item's problems start with "ITEM_ID: "
    item_id: str | None = None  # the item it is about, if any

    @property
    def detail(self) -> str:
        """The message without its item id (for a page that shows the item already)."""
        return self.message.removeprefix(f"{self.item_id}: ") if self.item_id else self.message

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

    def problem(self, path: Path_, message: str, severity: str = "error", key: bool = False,
                item_id: str | None = None) -> Problem:
        return Problem(self.path, self.mark(path, key), severity, message, item_id)


@dataclass
class BankItem:
    """One item as loaded, with where it came from."""

    model: Any  # one of the item types' models (bank/types/)
    topic: str
    path: str
    doc: Document
    index: int
    raw: dict
    version: str  # content hash: changes whenever the item's YAML data changes
    bank_source: str | None = None

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def source(self) -> str | None:
        return self.model.source or self.bank_source

    @property
    def where(self) -> tuple:
        return ("items", self.index)

    def problem(self, sub: tuple, message: str, severity: str = "error", key: bool = False) -> Problem:
        return self.doc.problem(self.where + sub, f"{self.id}: {message}", severity, key, item_id=self.id)


# libyaml's parser when PyYAML was built with it (several times faster); same nodes and marks.
class _Builder(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A SafeLoader used to compose nodes and resolve scalars."""


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(doc: Document, node: yaml.Node, ctor: _Builder) -> Any:
    """Construct a plain value; one that Python refuses (an integer of 5,000 digits, the 13th month) is a Problem."""
    try:
        return ctor.construct_object(node, deep=True)
    except ValueError as e:
        doc.problems.append(Problem(doc.path, _mark(node), "error", f"YAML value: {str(e).split(';')[0]}"))
        return None


def _build(doc: Document, node: yaml.Node, path: Path_, ctor: _Builder) -> Any:
    doc.marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(doc, key_node, ctor)
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
    return _scalar(doc, node, ctor)


class _Budget(Exception):
    """The composed document is over a budget; ``mark`` is the node at fault."""

    def __init__(self, mark: Mark, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


def _check_budget(root: yaml.Node, text: str) -> None:
    """Refuse recursive aliases, nesting deeper than MAX_DEPTH and more than MAX_NODES after aliases.

    Aliases share one node object, so expanded sizes are memoized per node: linear in the
    document, however many times its aliases expand.
    """
    seen: dict[int, tuple[int, int]] = {}  # node id -> (expanded size, height)
    open_: set[int] = set()

    def too_deep(node: yaml.Node) -> _Budget:
        return _Budget(_mark(node), f"nested more than {MAX_DEPTH} levels deep (the limit)")

    def size(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in seen:
            if depth + seen[key][1] > MAX_DEPTH:  # an alias repeats a deep node deeper down
                raise too_deep(node)
            return seen[key]
        if key in open_:
            raise _Budget(*_alias_at_fault(text, _mark(node), None))
        if depth > MAX_DEPTH:
            raise too_deep(node)
        n, h = 1, 0
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            open_.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [c for kv in node.value for c in kv]
            for child in children:
                cn, ch = size(child, depth + 1)
                n, h = n + cn, max(h, ch + 1)
                if n > MAX_NODES:
                    raise _Budget(*_alias_at_fault(text, _mark(node), MAX_NODES))
            open_.discard(key)
        seen[key] = (n, h)
        return n, h

    size(root, 0)


def _alias_at_fault(text: str, fallback: Mark, budget: int | None) -> tuple[Mark, str]:
    """Find the alias that recurses (budget None) or that takes the document over the node budget.

    Composed nodes don't keep where their aliases were written, so the events are read again:
    only on this error path.
    """
    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []  # open collections: anchor, node count at their start
    total = 0
    for ev in yaml.parse(text, Loader=_Builder):
        if isinstance(ev, yaml.AliasEvent):
            mark = _mark(ev)
            if budget is None and any(a == ev.anchor for a, _ in stack):
                return mark, (f"recursive alias *{ev.anchor}: it stands inside the node anchored &{ev.anchor}, "
                              "which would then contain itself forever; an alias may only repeat a finished node")
            total += sizes.get(ev.anchor, 1)
            if budget is not None and total > budget:
                return mark, (f"alias *{ev.anchor} expands the document to more than {budget:,} nodes "
                              f"(the limit, counted after expanding aliases)")
        elif isinstance(ev, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            total += 1
            if isinstance(ev, yaml.ScalarEvent):
                if ev.anchor:
                    sizes[ev.anchor] = 1
            else:
                stack.append((ev.anchor, total - 1))
            if budget is not None and total > budget:
                return _mark(ev), f"the document has more than {budget:,} nodes (the limit)"
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, start = stack.pop()
            if anchor:
                sizes[anchor] = total - start
    # Not reached: the composed nodes and the events agree. A fallback all the same.
    if budget is None:  # pragma: no cover
        return fallback, "recursive alias: a node contains itself"
    return fallback, f"the document has more than {budget:,} nodes after expanding aliases (the limit)"


def parse_yaml(text: str, path: str) -> Document:
    """Parse YAML text; a syntax error or a budget exceeded becomes a Problem at its line and column."""
    doc = Document(path=path, data=None)
    try:
        loader = _Builder(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_budget(node, text)
            doc.data = None if node is None else _build(doc, node, (), loader)
        finally:
            loader.dispose()
    except _Budget as e:
        doc.data, doc.marks, doc.key_marks = None, {}, {}
        doc.problems.append(Problem(path, e.mark, "error", f"YAML: {e.message}"))
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        mark = Mark(m.line + 1, m.column + 1) if m else Mark(1, 1)
        msg = " ".join(filter(None, [e.context, e.problem])) or "invalid YAML"
        doc.problems.append(Problem(path, mark, "error", f"YAML syntax: {msg}"))
    except yaml.YAMLError as e:
        doc.problems.append(Problem(path, Mark(1, 1), "error", f"YAML syntax: {e}"))
    return doc


def read_yaml(path: Path) -> Document:
    """Read and parse one regular file; symlinks, other kinds of file, unreadable or oversized files
    become a Problem that never shows their contents."""
    doc = Document(path=str(path), data=None)

    def refuse(message: str) -> Document:
        doc.problems.append(Problem(str(path), Mark(1, 1), "error", message))
        return doc

    try:
        # O_NOFOLLOW: a link planted in the banks folder is never opened (no race with a check
        # before the open); O_NONBLOCK: a FIFO doesn't hang the worker.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if path.is_symlink():
            return refuse("skipped: a symbolic link (bank files must be regular files)")
        return refuse(f"cannot read file: {e.strerror}")
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            return refuse("skipped: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            return refuse(f"the file has {info.st_size:,} bytes; a bank file is limited to {MAX_FILE_BYTES:,} (1 MiB)")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return refuse(f"the file has more than {MAX_FILE_BYTES:,} bytes (1 MiB), the limit for a bank file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return refuse(f"not UTF-8 text (byte {e.start + 1} cannot be decoded)")
    return parse_yaml(text.replace("\r\n", "\n").replace("\r", "\n"), str(path))
