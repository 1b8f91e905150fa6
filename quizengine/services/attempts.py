"""Attempts as stored: loading one a user may see, its question ids, and the checks a response must
pass before it is saved (the shape each item type takes, and the bounds on any value)."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..constants import DEPTH_MAX, MAX_RESPONSE_BYTES, SEQ_MAX
from ..grading import CostlyNumber, FormatError, parse_numeric
from ..models import Attempt, AttemptQuestion, Role
from .errors import ServiceError
from .principal import Principal


def load_attempt(s: Session, user: Principal, attempt_id: int) -> Attempt:
    """The attempt, if the user may see it (its owner, or an instructor); otherwise 404."""
    a = read_attempt(s, attempt_id)
    if a is None or (a.user_id != user.id and user.role != Role.INSTRUCTOR):
        raise ServiceError(404, f"no attempt {attempt_id}")
    return a


def read_attempt(s: Session, attempt_id: int) -> Attempt | None:
    """An attempt with its questions, their responses and item versions (one query each), or None."""
    return s.scalar(select(Attempt).where(Attempt.id == attempt_id).options(
        selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
        selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version)))


def question_id(aq: AttemptQuestion) -> str:
    """The id a student sees: its place in the attempt (an item id could give the answer away)."""
    return f"q{aq.slot + 1}"


# ---------------------------------------------------------------- response checks

def check_response(v: Any, value: Any) -> str | None:
    """Refuse (400) a response that does not fit the question; return a format note for numeric text.

    Refused, never stored: the wrong JSON type, choice ids the variant doesn't have, lists of the
    wrong shape, lone surrogates and control characters, and numbers too long to read at a bounded
    cost. Kept with a note (the student can fix it; it scores 0 until then): numeric text that
    doesn't read as a number, such as ``abc`` or ``1,5``.
    """
    check_value(value)
    kind = v.type
    if value is None:
        return None
    if len(json.dumps(value)) > MAX_RESPONSE_BYTES:
        raise ServiceError(413, f"the response is too large (at most {MAX_RESPONSE_BYTES} bytes as JSON)")
    ok = {
        "single_choice": lambda x: isinstance(x, str),
        "multiple_select": lambda x: isinstance(x, list) and all(isinstance(e, str) for e in x),
        "true_false": lambda x: isinstance(x, bool),
        "numeric": lambda x: _numeric_json(x),
        "short_text": lambda x: isinstance(x, str),
        "matching": lambda x: isinstance(x, dict) and all(isinstance(e, str) for e in x.values()),
        "ordering": lambda x: isinstance(x, list) and all(isinstance(e, str) for e in x),
    }[kind](value)
    if not ok:
        raise ServiceError(400, f"a {kind} response must be {RESPONSE_FORMATS[kind]}")
    problem = misfit(v, value)
    if problem:
        raise ServiceError(400, problem)
    if kind == "numeric":
        try:
            parse_numeric(value, v.answer_shape)
        except CostlyNumber as e:
            raise ServiceError(400, f"not saved: {e}") from None
        except FormatError as e:
            return str(e)
    return None


def misfit(v: Any, value: Any) -> str | None:
    """Why a response of the right JSON type still doesn't fit this variant (ids, shape), or None."""
    kind = v.type
    if kind in ("single_choice", "multiple_select"):
        ids = [c.id for c in v.choices]
        picked = [value] if kind == "single_choice" else value
        unknown = [p for p in picked if p not in ids]
        if unknown:
            return f"{_short(unknown[0])} is not an option of this question (its options are {', '.join(ids)})"
        if len(set(picked)) != len(picked):
            return "each option can be ticked once only"
    elif kind == "matching":
        lefts, rights = [o.id for o in v.lefts], [o.id for o in v.rights]
        for left, right in value.items():
            if left not in lefts:
                return f"{_short(left)} is not a term of this question (its terms are {', '.join(lefts)})"
            if right not in rights:
                return f"{_short(right)} is not an option of this question (its options are {', '.join(rights)})"
    elif kind == "ordering":
        ids = [o.id for o in v.options]
        if sorted(value) != sorted(ids):
            return f"an ordering lists every entry once: {', '.join(sorted(ids))}, in your order"
    elif kind == "numeric":
        return _shape_misfit(value, v.answer_shape)
    return None


def _shape_misfit(value: Any, shape: tuple[int, ...]) -> str | None:
    if not shape:
        return "this answer is one number, not a list" if isinstance(value, list) else None
    if len(shape) == 1:
        if isinstance(value, list) and len(value) == shape[0] and not any(isinstance(e, list) for e in value):
            return None
        return f"this answer is a vector: send a list of {shape[0]} numbers (or numeric strings)"
    if isinstance(value, list) and len(value) == shape[0] and all(
            isinstance(row, list) and len(row) == shape[1] and not any(isinstance(e, list) for e in row)
            for row in value):
        return None
    return f"this answer is a {shape[0]} x {shape[1]} matrix: send {shape[0]} lists of {shape[1]} numbers each"


def _short(x: str) -> str:
    return repr(x if len(x) <= 40 else x[:37] + "...")


RESPONSE_FORMATS = {
    "single_choice": "a choice id (string)", "multiple_select": "a list of choice ids",
    "true_false": "true or false", "numeric": "a number, a numeric string, or nested lists of them",
    "short_text": "a string", "matching": "an object {left_id: right_id}", "ordering": "a list of ids in order",
}


def _numeric_json(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return math.isfinite(x)
    if isinstance(x, str):
        return True
    if isinstance(x, list):
        return all(_numeric_json(e) for e in x)
    return False


def check_seq(seq: Any) -> int | None:
    """A save's optional ``seq``: an integer from 0 to SEQ_MAX (400 otherwise); JSON's 3.0 is 3."""
    if isinstance(seq, float) and seq.is_integer():
        seq = int(seq)
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= SEQ_MAX):
        raise ServiceError(400, f"seq must be an integer from 0 to {SEQ_MAX}")
    return seq


# Characters no answer holds: C0/C1 controls (tab, newline and carriage return are fine) and lone
# surrogates, which JSON's \ud800 escapes can carry but no page can encode as UTF-8.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_value(value: Any) -> None:
    """400 for a response no grader or page can take: deep lists, integers beyond float64, non-text."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > DEPTH_MAX:
            raise ServiceError(400, f"the response nests lists more than {DEPTH_MAX} deep")
        if isinstance(v, dict):
            stack.extend((e, depth + 1) for e in (*v.keys(), *v.values()))
        elif isinstance(v, list):
            stack.extend((e, depth + 1) for e in v)
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > sys.float_info.max:
            raise ServiceError(400, "a number in the response is too large (beyond 1.8e308)")
        elif isinstance(v, str) and (bad := NOT_TEXT.search(v)):
            what = "a lone surrogate" if 0xD800 <= ord(bad.group()) <= 0xDFFF else "a control character"
            raise ServiceError(400, f"the response contains {what} (U+{ord(bad.group()):04X}), which is not "
                                    "text: remove it and save again")

