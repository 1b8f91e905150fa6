"""Load every bank and quiz file of a folder into a Catalog, collecting problems with marks."""

from __future__ import annotations

import difflib
import hashlib
import json
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from . import schema, types
from .loader import BankItem, Document, Mark, Problem, read_yaml

ITEM_ADAPTER: TypeAdapter = TypeAdapter(types.Item)


def _field_names() -> set[str]:
    names: set[str] = set()
    modules = [schema] + [sys.modules[t.model.__module__] for t in types.TYPES]
    for obj in (obj for module in modules for obj in vars(module).values()):
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            names |= set(obj.model_fields)
    return names


KNOWN_KEYS = sorted(_field_names())


@dataclass
class Bank:
    topic: str
    title: str
    path: str
    item_ids: list[str] = field(default_factory=list)


@dataclass
class QuizDef:
    model: schema.Quiz
    path: str
    doc: Document


@dataclass
class Catalog:
    items: dict[str, BankItem] = field(default_factory=dict)
    banks: dict[str, Bank] = field(default_factory=dict)
    quizzes: dict[str, QuizDef] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    report: list[tuple] = field(default_factory=list)  # validate's slip rates (bank.validate.validate_paths)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def content_hash(topic: str, raw: Any) -> str:
    blob = json.dumps({"topic": topic, "item": raw}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _loc_path(loc: tuple, raw: Any) -> tuple:
    """Turn a pydantic error location into a path into the raw data (dropping union tags)."""
    out: list[Any] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part not in node and (
                (part in types.ITEM_TYPES and node.get("type") == part) or node.get("kind") == part):
            continue  # an item's type or a figure's kind
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return tuple(out)


def _dotted(path: tuple) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def schema_problems(doc: Document, base: tuple, raw: Any, err: ValidationError, label: str) -> list[Problem]:
    """Convert pydantic errors to problems pointing at the YAML node at fault."""
    out = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        on_key = bool(loc) and loc[-1] == "[key]"
        path = _loc_path(loc[:-1] if on_key else loc, raw)
        where = _dotted(path)
        prefix = f"{label}: " + (f"{where}: " if where else "")
        kind = e["type"]
        if kind == "extra_forbidden":
            key = path[-1]
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(doc.problem(base + path, f"{label}: unknown key {key!r}{hint}", key=True))
        elif kind == "missing":
            parent = _dotted(path[:-1])
            out.append(doc.problem(base + path[:-1], f"{label}: " + (f"{parent}: " if parent else "") +
                                   f"missing key {path[-1]!r}"))
        elif kind in ("union_tag_invalid", "union_tag_not_found") and path[:1] == ("figures",):
            tag, kinds = e["ctx"].get("tag"), schema.FIGURE_KINDS
            close = difflib.get_close_matches(str(tag), kinds, n=1) if tag else []
            what = f"unknown figure kind {tag!r}" if tag else "missing key 'kind'"
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(doc.problem(base + path + (("kind",) if tag else ()),
                                   f"{label}: {what}{hint} (valid: {', '.join(kinds)})"))
        elif kind == "union_tag_invalid":
            tag = e["ctx"]["tag"]
            close = difflib.get_close_matches(str(tag), types.ITEM_TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(doc.problem(base + path + ("type",), f"{label}: unknown item type {tag!r}{hint} "
                                   f"(valid: {', '.join(types.ITEM_TYPES)})"))
        elif kind == "union_tag_not_found":
            out.append(doc.problem(base + path, f"{label}: missing key 'type' (one of {', '.join(types.ITEM_TYPES)})"))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, (dict, list)) or kind == "value_error" else f" (got {got!r})"
            if on_key:
                msg = f"the name {path[-1]!r} is not allowed: {msg}"
            out.append(doc.problem(base + path, f"{prefix}{msg}{shown}", key=on_key))
    return out


def _skipped(f: Path) -> str | None:
    """Why a file is not read (a symlink or not a regular file), or None to read it."""
    if f.is_symlink():  # a link could lead anywhere, e.g. to instance/secret_key
        return "skipped: a symbolic link (bank files must be regular files; copy the file instead)"
    try:
        mode = f.lstat().st_mode
    except OSError:
        return None  # vanished: reading it reports that
    return None if stat.S_ISREG(mode) else "skipped: not a regular file"


def yaml_files(folder: Path) -> tuple[list[Path], list[Problem]]:
    """The regular ``*.yaml``/``*.yml`` files under ``folder``; symlinks and other kinds are skipped
    (a warning each), and links to folders are not followed."""
    files, skipped = [], []
    for f in sorted(folder.rglob("*")):
        if f.suffix not in (".yaml", ".yml") or f.is_dir() and not f.is_symlink():
            continue
        why = _skipped(f)
        if why:
            skipped.append(Problem(str(f), Mark(1, 1), "warning", why))
        else:
            files.append(f)
    return files, skipped


def discover(paths: list[Path]) -> tuple[list[Path], list[Path], list[Problem]]:
    """Split the given files and folders into bank files and quiz files."""
    banks: list[Path] = []
    quizzes: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            files, skipped = yaml_files(p)
            problems += skipped
        elif p.exists() or p.is_symlink():
            why = _skipped(p)
            files = [] if why else [p]
            if why:
                problems.append(Problem(str(p), Mark(1, 1), "warning", why))
        else:
            problems.append(Problem(str(p), Mark(1, 1), "error", "no such file or folder"))
            continue
        for f in files:
            (quizzes if "quizzes" in f.parent.parts[-1:] else banks).append(f)
    return banks, quizzes, problems


def load_catalog(paths: list[Path]) -> Catalog:
    """Load banks and quizzes; every problem found is collected, none stops the load."""
    cat = Catalog()
    bank_files, quiz_files, cat.problems = discover(paths)
    first_seen: dict[str, tuple[str, Any]] = {}
    for f in bank_files:
        doc = _read(cat, f)
        if doc is not None:
            _load_bank(cat, doc, first_seen)
    for f in quiz_files:
        doc = _read(cat, f)
        if doc is None:
            continue
        try:
            quiz = schema.Quiz.model_validate(doc.data)
        except ValidationError as e:
            cat.problems += schema_problems(doc, (), doc.data, e, "quiz")
            continue
        if quiz.id in cat.quizzes:
            cat.problems.append(doc.problem(("id",), f"quiz: duplicate quiz id {quiz.id!r} (also in {cat.quizzes[quiz.id].path})"))
            continue
        cat.quizzes[quiz.id] = QuizDef(quiz, str(f), doc)
    return cat


def _read(cat: Catalog, f: Path) -> Document | None:
    """Parse one file into the catalog's record; None when nothing of it could be read."""
    cat.files.append(str(f))
    doc = read_yaml(f)
    cat.problems += doc.problems
    return None if doc.data is None and doc.problems else doc


def _load_bank(cat: Catalog, doc: Document, first_seen: dict) -> None:
    try:
        header = schema.BankHeader.model_validate(doc.data)
    except ValidationError as e:
        cat.problems += schema_problems(doc, (), doc.data, e, "bank")
        items = doc.data.get("items") if isinstance(doc.data, dict) else None
        if not isinstance(items, list):
            return
        topic = str(doc.data.get("topic", "?"))
        header = None
    else:
        items, topic = header.items, header.topic
    if header is not None:
        if topic in cat.banks:
            cat.problems.append(doc.problem(("topic",), f"bank: topic {topic!r} is also used by {cat.banks[topic].path}"))
        else:
            cat.banks[topic] = Bank(topic, header.title, doc.path)
    for i, raw in enumerate(items):
        label = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"items[{i}]"
        try:
            model = ITEM_ADAPTER.validate_python(raw)
        except ValidationError as e:
            cat.problems += schema_problems(doc, ("items", i), raw, e, label)
            continue
        if model.id in first_seen:
            other_path, other_mark = first_seen[model.id]
            cat.problems.append(doc.problem(("items", i, "id"), f"duplicate id {model.id!r} "
                                            f"(first defined at {other_path}:{other_mark.line}:{other_mark.col})"))
            continue
        first_seen[model.id] = (doc.path, doc.mark(("items", i, "id")))
        cat.items[model.id] = BankItem(model, topic, doc.path, doc, i, raw, content_hash(topic, raw),
                                       header.source if header else None)
        if topic in cat.banks:
            cat.banks[topic].item_ids.append(model.id)
