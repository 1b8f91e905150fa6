"""Attempts as stored: loading one a user may see, its question ids, and the bounds any response and
``seq`` must keep before a save (the shape each item type takes is checked by its module in
bank/types: ``check_response``)."""

from __future__ import annotations

import re
import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..constants import DEPTH_MAX, SEQ_MAX
from ..models import Attempt, AttemptQuestion, Role
from .errors import ServiceError
from .principal import Principal


def load_attempt(s: Session, user: Principal, attempt_id: int, versions: bool = True) -> Attempt:
    """The attempt, if the user may see it (its owner, or an instructor); otherwise 404."""
    a = read_attempt(s, attempt_id, versions)
    if a is None or (a.user_id != user.id and user.role != Role.INSTRUCTOR):
        raise ServiceError(404, f"no attempt {attempt_id}")
    return a


def read_attempt(s: Session, attempt_id: int, versions: bool = True) -> Attempt | None:
    """An attempt with its questions, their responses and (unless ``versions`` is false: a view that
    reads the rendering cache needs none) their item versions, one query each; or None."""
    loads = [selectinload(Attempt.questions).selectinload(AttemptQuestion.response)]
    if versions:
        loads.append(selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version))
    return s.scalar(select(Attempt).where(Attempt.id == attempt_id).options(*loads))


def question_id(aq: AttemptQuestion) -> str:
    """The id a student sees: its place in the attempt (an item id could give the answer away)."""
    return f"q{aq.slot + 1}"


# ---------------------------------------------------------------- response checks

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
