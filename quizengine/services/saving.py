"""Saving answers: autosave of one response and the plain form's Save, versioned by ``seq``.

A save is checked in a read transaction (owner, state, question, the response's shape), then
written in a short write transaction of two or three statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..bank.types import ResponseRefused, check_response, item_type
from ..constants import SEQ_MAX
from ..db import Database
from ..models import Attempt, AttemptQuestion, AttemptState, ItemVersion, Response, Role
from .attempts import check_value
from .banks import cached_variant
from .clock import aware, now
from .errors import ServiceError, StaleSave
from .principal import Principal

ACTIVE_CAP_S = 600.0  # time between two saves is credited to the question saved, up to this


@dataclass(frozen=True)
class SavePlan:
    """A checked save, ready to write: everything that can be read was read without the write lock."""

    attempt_id: int
    question_id: int
    value: Any
    seq: int | None
    spent: float
    t: datetime
    note: str | None


def plan_save(s: Session, user: Principal, attempt_id: int, qid: str, value: Any, seq: int | None,
              t: datetime | None = None) -> SavePlan:
    """Check a save (owner, state, question, response shape) in a read transaction."""
    t = t or now()
    a = s.execute(select(Attempt.user_id, Attempt.state, Attempt.expires_at, Attempt.last_activity_at,
                         Attempt.started_at).where(Attempt.id == attempt_id)).first()
    if a is None or (a.user_id != user.id and user.role != Role.INSTRUCTOR):
        raise ServiceError(404, f"no attempt {attempt_id}")
    if a.user_id != user.id:
        raise ServiceError(403, "only the student taking the attempt can answer it")
    _check_open(a.state, a.expires_at, t)
    slot = int(qid[1:]) - 1 if qid[:1] == "q" and qid[1:].isdigit() and len(qid) < 8 else -1
    q = s.execute(select(AttemptQuestion.id, AttemptQuestion.seed, AttemptQuestion.item_version_id,
                         ItemVersion.item_id, ItemVersion.version)
                  .join(ItemVersion, AttemptQuestion.item_version_id == ItemVersion.id)
                  .where(AttemptQuestion.attempt_id == attempt_id, AttemptQuestion.slot == slot)).first()
    if q is None:
        raise ServiceError(404, f"attempt {attempt_id} has no question {qid!r}")
    check_value(value)
    try:
        note = check_response(cached_variant(s, q.item_version_id, q.item_id, q.version, q.seed), value)
    except ResponseRefused as e:
        raise ServiceError(e.status, str(e)) from None
    # Time since the attempt's previous save (capped: a student who walked away is not "on" it).
    since = aware(a.last_activity_at) or aware(a.started_at)
    spent = min(max((t - since).total_seconds(), 0.0), ACTIVE_CAP_S)
    return SavePlan(attempt_id, q.id, value, seq, spent, t, note)


def _check_open(state: str, expires_at: datetime | None, t: datetime) -> None:
    if state != AttemptState.OPEN or (expires_at is not None and aware(expires_at) <= t):
        # (An attempt whose time is up is submitted by the sweeper or the next read, not here.)
        shown = state if state != AttemptState.OPEN else AttemptState.EXPIRED
        raise ServiceError(409, f"the attempt is {shown}; responses can no longer be changed")


def same_value(a: Any, b: Any) -> bool:
    """Two responses are the same JSON (1 and true differ; key order does not matter)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def apply_save(s: Session, plan: SavePlan) -> tuple[datetime, int]:
    """Write a planned save in a short write transaction; 409 if the attempt closed or ``seq`` is stale.

    A ``seq`` must be above the stored one; an equal ``seq`` is a repeat (200 with no write) if the
    value is the same and stale otherwise. Without ``seq`` the server issues the stored one plus 1.
    Two or three small statements: the write lock (SQLite) or the attempt's row lock (PostgreSQL)
    is held only for them, and a concurrent submit is ordered before or after, never in between.
    """
    t = plan.t
    opened = s.execute(update(Attempt).where(Attempt.id == plan.attempt_id, Attempt.state == AttemptState.OPEN,
                                             (Attempt.expires_at.is_(None)) | (Attempt.expires_at > t))
                       .values(last_activity_at=t).execution_options(synchronize_session=False))
    if opened.rowcount != 1:
        row = s.execute(select(Attempt.state, Attempt.expires_at).where(Attempt.id == plan.attempt_id)).first()
        _check_open(row.state, row.expires_at, t)
        raise ServiceError(409, "the attempt can no longer be changed")  # pragma: no cover - closed above
    stmt = update(Response).where(Response.question_id == plan.question_id)
    values: dict[str, Any] = {"value": plan.value, "saved_at": t, "active_s": Response.active_s + plan.spent,
                              "seq": Response.seq + 1 if plan.seq is None else plan.seq}
    # Without seq the stored one plus 1, short of SEQ_MAX: beyond it a client's JSON number is no longer exact.
    stmt = stmt.where(Response.seq < (SEQ_MAX if plan.seq is None else plan.seq))
    if s.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount == 1:
        return t, plan.seq if plan.seq is not None else s.scalar(
            select(Response.seq).where(Response.question_id == plan.question_id))
    stored = s.execute(select(Response.seq, Response.value, Response.saved_at)
                       .where(Response.question_id == plan.question_id)).first()
    if stored is not None:
        if plan.seq is None:
            raise ServiceError(409, f"this answer was saved with the highest seq ({SEQ_MAX}); it can no longer "
                                    "be replaced")
        if stored.seq == plan.seq and same_value(stored.value, plan.value):
            return aware(stored.saved_at), stored.seq  # a repeat of the stored save
        raise StaleSave(plan.seq, stored.seq, stored.value, stored.saved_at)
    s.execute(insert(Response).values(question_id=plan.question_id, value=plan.value, seq=plan.seq or 0, saved_at=t,
                                      first_saved_at=t, active_s=plan.spent))
    return t, plan.seq or 0


def save_response(db: Database, user: Principal, attempt_id: int, qid: str, value: Any, seq: int | None,
                  t: datetime | None = None) -> tuple[datetime, int, str | None]:
    """Autosave one response: check it without the write lock, then write it (saved_at, seq, note)."""
    with db.read() as s:
        plan = plan_save(s, user, attempt_id, qid, value, seq, t)
    for tries in range(2):
        try:
            with db.write() as s:
                saved_at, stored_seq = apply_save(s, plan)
            return saved_at, stored_seq, plan.note
        except IntegrityError:  # two first saves of one question at once: the other one inserted
            if tries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def shown(value: Any) -> Any:
    """A response as the attempt page's fields show it: numbers as their text (0.5 and "0.5" look alike)."""
    if isinstance(value, list):
        return [shown(x) for x in value]
    if isinstance(value, dict):
        return {k: shown(x) for k, x in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def save_page(db: Database, user: Principal, view: dict[str, Any], answers: dict[str, tuple[Any, int | None]],
              t: datetime | None = None) -> tuple[list[str], list[str]]:
    """Save the plain form: ``answers`` maps a question id to (value, the seq the page was rendered with).

    A question whose value is the stored one, or that was blank when rendered and is blank now (an
    ordering left in the order shown counts as blank), is not written. Any other is saved with the rendered seq plus 1 (0 when nothing was stored), so an
    answer saved since the page was rendered is kept (not overwritten). Returns (saved, kept) ids.
    """
    saved, kept = [], []
    for q in view["questions"]:
        if q["id"] not in answers:
            continue
        value, rendered = answers[q["id"]]
        if same_value(shown(value), shown(q["response"])) or (
                rendered is None and item_type(q["type"]).blank_on_page(q, value)):
            continue
        try:
            seq = 0 if rendered is None else min(rendered + 1, SEQ_MAX)  # at the highest, a changed answer is kept
            save_response(db, user, view["attempt_id"], q["id"], value, seq, t)
            saved.append(q["id"])
        except StaleSave:
            kept.append(q["id"])
    return saved, kept
