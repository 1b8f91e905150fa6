"""The instructor's list of bank items: each item's validation state, filtered by topic, type, state
and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..bank.loader import Problem
from .bank_checks import Board

STATES = ("ok", "warning", "error", "checking")


@dataclass
class BankIndex:
    rows: list[dict[str, Any]]  # item, status, problems, calculated
    other: list[Problem]  # problems outside single items (files, banks, quizzes)
    topics: list[str]
    types: list[str]
    total: int
    checked: int  # items whose own checks have finished (the rest show "checking")
    filters: dict[str, str] = field(default_factory=dict)


def bank_index(board: Board, topic: str = "", kind: str = "", state: str = "", query: str = "") -> BankIndex:
    """Every item of the banks that passes the filters (empty: any), with its state and problems so far."""
    cat = board.catalog
    problems: dict[str, list[Problem]] = {}
    for p in board.problems():
        if p.item_id in cat.items:
            problems.setdefault(p.item_id, []).append(p)
    rows = []
    for item in cat.items.values():
        errs = problems.get(item.id, [])
        status = "error" if any(p.severity == "error" for p in errs) else "warning" if errs else \
            "ok" if item.id in board.checked else "checking"
        text = f"{item.id} {item.model.prompt} {' '.join(item.model.tags)}".lower()
        if (topic and item.topic != topic) or (kind and item.model.type != kind) or (state and status != state) \
                or (query and query.lower() not in text):
            continue
        rows.append({"item": item, "status": status, "problems": errs,
                     "calculated": getattr(item.model, "calc", None) is not None})
    other = [p for p in board.fixed if p.item_id not in cat.items]
    return BankIndex(rows, other, sorted(cat.banks), sorted({i.model.type for i in cat.items.values()}),
                     len(cat.items), len(board.checked), {"topic": topic, "type": kind, "state": state, "q": query})
