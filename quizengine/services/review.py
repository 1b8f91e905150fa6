"""Bank review for instructors: the items with their validation state, previews, stress tests."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..bank import figures
from ..bank.catalog import BankItem
from ..bank.params import plain
from ..bank.variant import VariantError, make_variant

@dataclass
class StressReport:
    seeds: int
    failures: list[tuple[int, str]]  # (seed, why): errors and domain checks
    distribution: list[tuple[str, int]]  # answer (formatted) -> count, most common first
    numeric: list[float]  # scalar answers, for a histogram
    summary: dict[str, Any]
    figures: list[dict[str, Any]] = field(default_factory=list)  # seed 0's, drawn (Figure.data())


def stress(item: BankItem, seeds: int = 200) -> StressReport:
    """Build every variant for seeds 0..n-1: the answers' distribution and any seed that fails."""
    failures: list[tuple[int, str]] = []
    counts: Counter = Counter()
    numeric: list[float] = []
    shown: list[dict[str, Any]] = []
    for seed in range(seeds):
        try:
            v = make_variant(item, seed)
        except VariantError as e:
            failures.append((seed, str(e)))
            continue
        if v.task is not None and not getattr(item.model, "allow_trivial", False):
            why = v.kind.trivial(v)
            if why:
                failures.append((seed, why))
        try:  # every seed's figures read their numbers; seed 0's are drawn for the page
            drawings = figures.prepare(item, v.values, v.task, v.result)
            if seed == 0 and drawings:
                shown = [f.data() for f in figures.figures_for(v)]
        except VariantError as e:
            failures.append((seed, str(e)))
        answer = plain(v.answer)
        number = v.kind.stress_number(v, answer)
        if number is not None:
            numeric.append(number)
        key = v.kind.stress_key(v, answer)
        counts[key] += 1
    summary: dict[str, Any] = {}
    if numeric:
        summary = {"min": min(numeric), "median": statistics.median(numeric), "max": max(numeric),
                   "distinct": len(set(numeric))}
    return StressReport(seeds, failures, counts.most_common(15), numeric, summary, shown)

