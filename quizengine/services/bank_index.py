"""The instructor's list of bank items: each item's validation state, filtered by topic, type, state
and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..bank.catalog import Catalog
from ..bank.loader import Problem
from .review import problems_by_item

STATES = ("ok", "warning", "error")


@dataclass
class BankIndex:
    rows: list[dict[str, Any]]  # item, status, problems, calculated
    other: list[Problem]  # problems outside single items (files, banks, quizzes)
    topics: list[str]
    types: list[str]
    total: int
    filters: dict[str, str] = field(default_factory=dict)


def bank_index(cat: Catalog, topic: str = "", kind: str = "", state: str = "", query: str = "") -> BankIndex:
    """Every item of the catalog that passes the filters (empty: any), with its state and problems."""
    problems = problems_by_item(cat)
    rows = []
    for item in cat.items.values():
        errs = problems.get(item.id, [])
        status = "error" if any(p.severity == "error" for p in errs) else "warning" if errs else "ok"
        text = f"{item.id} {item.model.prompt} {' '.join(item.model.tags)}".lower()
        if (topic and item.topic != topic) or (kind and item.model.type != kind) or (state and status != state) \
                or (query and query.lower() not in text):
            continue
        rows.append({"item": item, "status": status, "problems": errs,
                     "calculated": getattr(item.model, "calc", None) is not None})
    other = [p for p in cat.problems if p.item_id not in cat.items]
    return BankIndex(rows, other, sorted(cat.banks), sorted({i.model.type for i in cat.items.values()}),
                     len(cat.items), {"topic": topic, "type": kind, "state": state, "q": query})
