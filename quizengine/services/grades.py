"""Scores: grading one question, and the rule that an instructor's override wins.

Every place that shows, sums or exports a question's score reads it through ``effective_score``
(``EFFECTIVE_SCORE`` in SQL); every place that grades a response calls ``grade_question``.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from sqlalchemy import func

from ..grading import grade
from ..models import AttemptQuestion, QuestionResult


class Scored(Protocol):
    override_score: float | None
    score: float | None


def counted(override: float | None, graded: float | None) -> float | None:
    """The score that counts: the instructor's override if set, else the graded one."""
    return override if override is not None else graded


def effective_score(q: Scored) -> float | None:
    """The score that counts for a question (an AttemptQuestion): its override wins."""
    return counted(q.override_score, q.score)


# The same rule in SQL, for totals computed by the database (an ungraded question counts 0).
EFFECTIVE_SCORE = func.coalesce(AttemptQuestion.override_score, AttemptQuestion.score, 0.0)


def attempt_total(scores: Iterable[float | None]) -> float:
    """An attempt's score: the sum of its questions' effective scores (None counts 0)."""
    return round(sum(s or 0.0 for s in scores), 10)


def grade_question(v: Any, points: float, value: Any) -> tuple[float, QuestionResult]:
    """One question's score, scaled to its points, and its result; no response scores 0."""
    if value is None:
        return 0.0, {"feedback": "Not answered.", "answered": False}
    g = grade(v, value)
    scale = points / g.max_score if g.max_score else 0.0
    result: QuestionResult = {"feedback": g.feedback, "format_error": g.format_error, "mistake": g.mistake,
                              "correct": g.correct, "answered": True}
    if g.parts is not None:
        result["parts"] = g.parts  # scores in the item's points (a view scales them to the slot's)
    return round(g.score * scale, 10), result
