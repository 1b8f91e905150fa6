"""Grading: ask the variant's item type to compare a response, and scale it to the item's points.

Reading a response is ``parsing``, comparing numbers ``tolerance``, and each type's rule lives in
its module of ``bank/types/``; a format error costs nothing: the student is told and can fix it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .bank.variant import Variant
from .parsing import CostlyNumber, FormatError, normalise_text, parse_number, parse_numeric
from .tolerance import entries_close, numbers_match, scalar_close

__all__ = ["CostlyNumber", "FormatError", "GradeResult", "entries_close", "grade", "normalise_text",
           "numbers_match", "parse_number", "parse_numeric", "scalar_close"]


@dataclass(frozen=True)
class GradeResult:
    score: float  # points earned
    max_score: float
    feedback: str = ""
    format_error: str | None = None
    mistake: str | None = None  # the buggy calculator the response matches
    parts: list[dict[str, Any]] | None = None  # a multi-part item's per-part results (bank/ecf.PartResult)

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score else 0.0

    @property
    def correct(self) -> bool:
        return self.format_error is None and math.isclose(self.score, self.max_score)


def grade(v: Variant, response: Any) -> GradeResult:
    """Grade one response to one variant."""
    points = float(v.model.points)
    try:
        (fraction, feedback, mistake), parts = v.kind.grade_full(v, response)
    except FormatError as e:
        return GradeResult(0.0, points, feedback=str(e), format_error=str(e))
    feedback = feedback or ("Correct." if fraction == 1 else "")
    return GradeResult(round(points * fraction, 10), points, feedback, None, mistake, parts)
