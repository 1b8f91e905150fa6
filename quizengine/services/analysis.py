"""Item analysis of a quiz: facility, discrimination, Cronbach's alpha, distractors, wrong answers, time.

Definitions (each student's first graded attempt, unless ``attempts="all"``):
- facility F = mean over responses of score / max score (0 = nobody right, 1 = everybody right);
- discrimination D = Pearson correlation between the item's score fraction and the rest of the
  test (the attempt's total minus this item), over the attempts that drew the item;
- Cronbach's alpha = k/(k-1) * (1 - sum of slot-score variances / variance of totals), over the k
  question slots (students draw different items for a slot, so the slot is the unit);
- mean time = mean seconds credited to the item (time between an attempt's saves is credited to
  the question saved);
- flags: too easy F > 0.95, too hard F < 0.2, not discriminating D < 0.2, each only from
  MIN_FLAG_N responses on (fewer say little);
- items are listed in quiz order: by the slot that draws them, then by id.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..bank.params import fmt
from ..calc.mistakes import DESCRIPTIONS
from ..models import GRADED, Attempt, AttemptQuestion, Quiz
from .banks import variant_of
from .draw import item_order
from .grades import effective_score
from .quizzes import get_quiz

EASY, HARD, WEAK = 0.95, 0.2, 0.2
MIN_FLAG_N = 10  # an item is flagged only once this many responses back the figures


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, or None when either side has no variance (or fewer than 2 points)."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sxx * syy) ** 0.5


def cronbach_alpha(matrix: list[list[float]]) -> float | None:
    """Alpha of a students x parts score matrix (population variances), None if undefined."""
    if len(matrix) < 2 or not matrix[0] or len(matrix[0]) < 2:
        return None
    k = len(matrix[0])
    part_vars = [statistics.pvariance([row[j] for row in matrix]) for j in range(k)]
    total_var = statistics.pvariance([sum(row) for row in matrix])
    if total_var == 0:
        return None
    return k / (k - 1) * (1 - sum(part_vars) / total_var)


@dataclass
class ItemStats:
    item_id: str
    type: str
    topic: str
    n: int = 0
    facility: float | None = None
    discrimination: float | None = None
    mean_time_s: float | None = None
    distractors: list[tuple[str, int, bool]] = field(default_factory=list)  # (option text, picks, correct)
    wrong_numeric: list[tuple[str, int, str | None]] = field(default_factory=list)  # (value, count, mistake)
    mistakes: list[tuple[str, int]] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        out: list[str] = []
        if self.n < MIN_FLAG_N:
            return out
        if self.facility is not None and self.facility > EASY:
            out.append("too easy")
        if self.facility is not None and self.facility < HARD:
            out.append("too hard")
        if self.discrimination is not None and self.discrimination < WEAK:
            out.append("not discriminating")
        return out


@dataclass
class QuizStats:
    quiz: Quiz
    attempts: int
    totals: list[float]  # percent of max per attempt
    alpha: float | None
    mean_percent: float | None
    items: list[ItemStats]


def _effective(aq: AttemptQuestion) -> float:
    return effective_score(aq) or 0.0


def analyse(s: Session, quiz_id: str, attempts: str = "first") -> QuizStats:
    q = get_quiz(s, quiz_id)
    rows = list(s.scalars(select(Attempt).where(Attempt.quiz_id == quiz_id, Attempt.state.in_(GRADED))
                          .order_by(Attempt.user_id, Attempt.number)
                          .options(selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
                                   selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version))))
    if attempts == "first":
        seen, firsts = set(), []
        for a in rows:
            if a.user_id not in seen:
                seen.add(a.user_id)
                firsts.append(a)
        rows = firsts
    per_item: dict[str, list[tuple[AttemptQuestion, float]]] = defaultdict(list)
    slot_matrix: list[list[float]] = []
    totals = []
    for a in rows:
        scores = [_effective(aq) for aq in a.questions]
        total = sum(scores)
        totals.append(100.0 * total / a.max_score if a.max_score else 0.0)
        slot_matrix.append(scores)
        for aq, sc in zip(a.questions, scores):
            per_item[aq.item_version.item_id].append((aq, total - sc))
    widths = {len(r) for r in slot_matrix}
    alpha = cronbach_alpha(slot_matrix) if len(widths) == 1 else None
    order = item_order(s, q)
    last = (len(q.definition.get("slots", [])), 0)  # items no slot draws now come after the rest
    items = [_item_stats(item_id, pairs)
             for item_id, pairs in sorted(per_item.items(), key=lambda kv: (order.get(kv[0], last), kv[0]))]
    return QuizStats(q, len(rows), totals, alpha, statistics.fmean(totals) if totals else None, items)


def _item_stats(item_id: str, pairs: list[tuple[AttemptQuestion, float]]) -> ItemStats:
    first = pairs[0][0]
    st = ItemStats(item_id, first.item_version.type, first.item_version.topic, n=len(pairs))
    fractions = [(_effective(aq) / aq.points if aq.points else 0.0) for aq, _ in pairs]
    st.facility = statistics.fmean(fractions)
    st.discrimination = pearson(fractions, [rest for _, rest in pairs])
    times = [aq.response.active_s for aq, _ in pairs if aq.response is not None]
    st.mean_time_s = statistics.fmean(times) if times else None
    picks: Counter = Counter()
    wrong: Counter = Counter()
    wrong_mistake: dict[str, str | None] = {}
    mistakes: Counter = Counter()
    correct_texts: set[str] = set()
    for aq, _ in pairs:
        v = variant_of(aq.item_version, aq.seed)
        value = aq.response.value if aq.response is not None else None
        mistake = (aq.result or {}).get("mistake")
        if mistake:
            mistakes[mistake] += 1
        if v.choices is not None:
            texts = {c.id: c.text for c in v.choices}
            answer = v.answer if isinstance(v.answer, list) else [v.answer]
            correct_texts |= {texts[c] for c in answer if c in texts}
            for c in (value if isinstance(value, list) else [value] if value else []):
                if c in texts:
                    picks[texts[c]] += 1
            if value is None:
                picks["(no answer)"] += 1
        elif v.type == "numeric" and value is not None and _effective(aq) < aq.points:
            key = _show(value)
            wrong[key] += 1
            wrong_mistake.setdefault(key, mistake)
    if picks or correct_texts:
        everything = set(picks) | correct_texts
        st.distractors = sorted(((t, picks.get(t, 0), t in correct_texts) for t in everything),
                                key=lambda r: (-r[1], r[0]))
    st.wrong_numeric = [(k, n, wrong_mistake.get(k)) for k, n in wrong.most_common(5)]
    st.mistakes = mistakes.most_common()
    return st


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    try:
        return fmt(float(value), 4)
    except (TypeError, ValueError):
        return json.dumps(value)[:40]


def mistake_label(name: str | None) -> str:
    return "" if not name else f"{name}: {DESCRIPTIONS.get(name, '')}"
