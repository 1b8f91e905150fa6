"""Grade one response to one item's variant outside any attempt, as a submitted attempt would."""

from __future__ import annotations

from typing import Any

from ..bank.types import ResponseRefused, check_response
from ..bank.variant import Variant
from .attempts import check_value
from .errors import ServiceError
from .grades import grade_question


class Refused(ValueError):
    """A response the save-time checks refuse (it could never be stored, so never graded)."""


def grade_response(v: Variant, value: Any) -> dict[str, Any]:
    """The CONTRACT section 3 ``grade`` object: the save-time checks, then the attempt's grader.

    Raise Refused, with the message a save would get, for a response no attempt could store.
    """
    try:
        check_value(value)
        check_response(v, value)
    except (ServiceError, ResponseRefused) as e:
        raise Refused(str(e)) from None
    points = float(v.model.points)
    score, result = grade_question(v, points, value)
    return {"id": v.item.id, "seed": v.seed, "score": score, "max_score": points,
            "correct": bool(result.get("correct", False)), "feedback": result["feedback"],
            "mistake": result.get("mistake"), "format_error": result.get("format_error"),
            "answered": result["answered"]}
