"""Closing attempts: grading at submit and at expiry, and the sweep of attempts whose time is up.

Grading may be slow (a costly response, a large item), so it never runs under the write lock:
the attempt and its responses are read in a read transaction, graded with no transaction open,
and the scores written in one short write transaction, only if the attempt is still open and
its responses are the ones graded (else it is graded again, at most GRADE_TRIES times).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from ..db import Database
from ..lti import outbox as lti_outbox
from ..models import Attempt, AttemptQuestion, AttemptState, Response
from .attempt_rows import QuestionRow, attempt_head, question_rows, variants
from .banks import variant_of
from .clock import aware, now
from .errors import ServiceError
from .grades import attempt_total, counted, effective_score, grade_question
from .principal import Principal

log = logging.getLogger(__name__)

GRADE_TRIES = 3


class GradingOverBudget(Exception):
    """Grading an attempt took longer than its time budget (checked between questions)."""


def grade_attempt(a: Attempt) -> None:
    """Grade a loaded attempt in place (for callers already inside a write transaction)."""
    for q in a.questions:
        q.score, q.result = grade_question(variant_of(q.item_version, q.seed), q.points,
                                           q.response.value if q.response is not None else None)
    a.score = attempt_total(effective_score(q) for q in a.questions)


Fingerprint = tuple[tuple[Any, ...], ...]


def _fingerprint_row(question_id: int, item_version_id: int, override: float | None, seq: int | None,
                     saved_at: datetime | None, value: Any) -> tuple[Any, ...]:
    return (question_id, item_version_id, override, seq, aware(saved_at), json.dumps(value, sort_keys=True))


# The write's statements, built once and run on the session's connection (Core, as
# services/attempt_rows.py reads): the ORM's per-statement work cost more than the statements.
_FINGERPRINT = (select(AttemptQuestion.id, AttemptQuestion.item_version_id, AttemptQuestion.override_score,
                       Response.seq, Response.saved_at, Response.value)
                .outerjoin(Response, Response.question_id == AttemptQuestion.id)
                .where(AttemptQuestion.attempt_id == bindparam("attempt_id")).order_by(AttemptQuestion.slot))
_STILL_OPEN = select(Attempt.state, Attempt.expires_at).where(Attempt.id == bindparam("attempt_id")).with_for_update()
_QUESTION_TABLE = AttemptQuestion.__table__
_SCORES = (update(_QUESTION_TABLE).where(_QUESTION_TABLE.c.id == bindparam("q_id"))
           .values(score=bindparam("q_score"), result=bindparam("q_result")))
# PostgreSQL: the scores of every question in one statement (an executemany of UPDATEs is one
# statement per question there, each parsed, planned and answered). JSON as the column would store it.
_PG_SCORES = text("UPDATE attempt_question AS q SET score = u.score, result = CAST(u.result AS json) "
                  "FROM unnest(CAST(:ids AS integer[]), CAST(:scores AS float8[]), CAST(:results AS text[])) "
                  "AS u(id, score, result) WHERE q.attempt_id = :attempt_id AND q.id = u.id")  # the index on attempt_id
_CLOSE = (update(Attempt.__table__).where(Attempt.__table__.c.id == bindparam("attempt_id"),
                                          Attempt.__table__.c.state == AttemptState.OPEN)
          .values(state=bindparam("a_state"), submitted_at=bindparam("a_at"), score=bindparam("a_score")))


def _fingerprint(s: Session, attempt_id: int) -> Fingerprint:
    """What grading depends on, as stored now: each question's version, override and response."""
    rows = s.connection().execute(_FINGERPRINT, {"attempt_id": attempt_id})
    return tuple(_fingerprint_row(*r) for r in rows)


@dataclass(frozen=True)
class GradingWork:
    """An open attempt as read for grading: its variants and responses, and their fingerprint."""

    attempt_id: int
    user_id: int
    quiz_id: str
    expires_at: datetime | None
    questions: tuple[tuple[int, Any, float, float | None, Any], ...]  # (id, variant, points, override, value)
    fingerprint: Fingerprint
    rows: tuple[QuestionRow, ...]  # the questions as read


def _read_work(s: Session, a: Any, solutions: bool = False) -> GradingWork:
    """The attempt's variants and responses, read as rows (services/attempt_rows: no ORM objects);
    with ``solutions``, each question's explanation as rendered ahead too (for the submit's results)."""
    questions, rows = [], []
    read = question_rows(s, a.id, solutions)
    for q, v in zip(read, variants(s, read)):
        questions.append((q.id, v, q.points, q.override_score, q.value if q.answered else None))
        rows.append(_fingerprint_row(q.id, q.item_version_id, q.override_score, q.seq, q.saved_at,
                                     q.value if q.answered else None))
    return GradingWork(a.id, a.user_id, a.quiz_id, aware(a.expires_at), tuple(questions), tuple(rows), tuple(read))


def _grade_work(work: GradingWork, deadline: float | None) -> tuple[list[dict[str, Any]], float]:
    """Grade with no transaction open: the rows to write and the attempt's total."""
    rows, scores = [], []
    for qid, v, points, override, value in work.questions:
        if deadline is not None and time.monotonic() > deadline:
            raise GradingOverBudget(f"attempt {work.attempt_id}: grading ran over its time budget")
        score, result = grade_question(v, points, value)
        rows.append({"id": qid, "score": score, "result": result})
        scores.append(counted(override, score))
    return rows, attempt_total(scores)


def _write_scores(conn: Any, attempt_id: int, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_SCORES, {"attempt_id": attempt_id, "ids": [r["id"] for r in rows],
                                  "scores": [r["score"] for r in rows], "results": [json.dumps(r["result"]) for r in rows]})
    else:
        conn.execute(_SCORES, [{"q_id": r["id"], "q_score": r["score"], "q_result": r["result"]} for r in rows])


def close_attempt(db: Database, attempt_id: int, t: datetime, user: Principal | None = None,
                  due_only: bool = False, deadline: float | None = None) -> bool:
    """Grade and close an open attempt (expired if its time is up at ``t``); True if this call closed it.

    With ``user``, only that student may submit (403; 404 for an attempt they may not see).
    With ``due_only``, an attempt whose time is not up stays open. ``deadline`` (time.monotonic)
    bounds the grading, checked between questions.
    """
    return _close(db, attempt_id, t, user, due_only, deadline) is not None


def _close(db: Database, attempt_id: int, t: datetime, user: Principal | None, due_only: bool,
           deadline: float | None, solutions: bool = False) -> list[QuestionRow] | None:
    """``close_attempt``; the questions as this call stored them (scores and results; with
    ``solutions``, their explanations as rendered ahead), or None."""
    for _ in range(GRADE_TRIES):
        with db.read() as s:
            a = attempt_head(s, attempt_id, user)
            if a is None:
                return None
            if user is not None and a.user_id != user.id:
                raise ServiceError(403, "only the student taking the attempt can submit it")
            due = a.expires_at is not None and aware(a.expires_at) <= t
            if a.state != AttemptState.OPEN or (due_only and not due):
                return None
            work = _read_work(s, a, solutions)
        rows, total = _grade_work(work, deadline)
        state, at = (AttemptState.EXPIRED, work.expires_at) if due else (AttemptState.SUBMITTED, t)
        with db.write() as s:
            conn = s.connection()
            now_open = conn.execute(_STILL_OPEN, {"attempt_id": attempt_id}).first()
            if now_open is None or now_open.state != AttemptState.OPEN:
                return None  # closed meanwhile by another submit or the sweeper: graded once
            if aware(now_open.expires_at) != work.expires_at or _fingerprint(s, attempt_id) != work.fingerprint:
                continue  # a save landed while grading: grade what is stored now
            _write_scores(conn, attempt_id, rows)
            conn.execute(_CLOSE, {"attempt_id": attempt_id, "a_state": state, "a_at": at, "a_score": total})
            lti_outbox.enqueue_scores(s, [(work.user_id, work.quiz_id)])  # the LMS's line items get the new score
            graded = {r["id"]: r for r in rows}
            return [q._replace(score=graded[q.id]["score"], result=graded[q.id]["result"]) for q in work.rows]
    raise ServiceError(409, f"the answers kept changing while attempt {attempt_id} was graded; submit again")


def submit_attempt(db: Database, user: Principal, attempt_id: int, t: datetime | None = None) -> bool:
    """Grade and close an open attempt; a second submit changes nothing. True if this call closed it."""
    return close_attempt(db, attempt_id, t or now(), user=user)


def submit_graded(db: Database, user: Principal, attempt_id: int, t: datetime) -> list[QuestionRow] | None:
    """``submit_attempt``; the questions as this call stored them, for the results it answers with
    (``views.result_view``: no second read of them, nor of their explanations rendered ahead), or
    None when it closed nothing."""
    return _close(db, attempt_id, t, user, False, None, solutions=True)


def expire_if_due(s: Session, a: Attempt, t: datetime) -> bool:
    """Inside a caller's write transaction, submit an open attempt whose time is up; True if it did.

    This grades under the caller's lock: callers run ``expire_due(db, user_id=...)`` first, so it
    only catches an attempt whose time ran out in between.
    """
    if a.state != AttemptState.OPEN or a.expires_at is None or aware(a.expires_at) > t:
        return False
    # Another host's sweeper may be closing it right now (PostgreSQL): take the row, which waits for
    # that commit, and read it again, so that it is graded (and its score sent) once.
    s.refresh(a, with_for_update=True)
    if a.state != AttemptState.OPEN:
        return False
    grade_attempt(a)
    a.state, a.submitted_at = AttemptState.EXPIRED, aware(a.expires_at)
    s.flush()
    lti_outbox.enqueue(s, [a.id])
    return True


class _Claims:
    """The attempts a sweep grades: on PostgreSQL, a session advisory lock per attempt, so that the
    sweepers of several workers and hosts grade different attempts instead of all grading each one
    (the write in ``close_attempt`` would keep only one anyway). SQLite has one host: every attempt."""

    SPACE = 0x71655357  # the advisory lock space of attempts being graded by a sweep

    def __init__(self, db: Database, enabled: bool):
        self.conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") \
            if enabled and not db.is_sqlite else None

    def take(self, attempt_id: int) -> bool:
        return self.conn is None or bool(self.conn.scalar(text("SELECT pg_try_advisory_lock(:space, :id)"),
                                                          {"space": self.SPACE, "id": attempt_id}))

    def release(self, attempt_id: int) -> None:
        if self.conn is not None:
            self.conn.execute(text("SELECT pg_advisory_unlock(:space, :id)"), {"space": self.SPACE, "id": attempt_id})

    def close(self) -> None:
        if self.conn is not None:
            try:  # the connection goes back to the pool: it keeps no lock of this sweep
                self.conn.execute(text("SELECT pg_advisory_unlock_all()"))
            finally:
                self.conn.close()


# Attempts whose grading failed or ran over budget in this process, with how often: a sweep
# tries them last, with a budget doubled per failure, so they never hold up the others.
_TROUBLE: dict[int, int] = {}


def expire_due(db: Database, t: datetime | None = None, budget_s: float | None = None,
               attempt_budget_s: float | None = None, user_id: int | None = None) -> int:
    """Submit open attempts whose time is up, each graded alone and written in its own short transaction.

    ``budget_s``: start no new attempt after this many seconds (the rest wait for the next call).
    ``attempt_budget_s``: give up on one attempt after this long (doubled per earlier failure).
    An attempt whose grading raises or runs over is logged and left open; the others go on.
    ``user_id`` limits it to one student's attempts. Returns how many were submitted.
    """
    t = t or now()
    began = time.monotonic()
    stmt = select(Attempt.id).where(Attempt.state == AttemptState.OPEN, Attempt.expires_at.is_not(None),
                                    Attempt.expires_at <= t)
    if user_id is not None:
        stmt = stmt.where(Attempt.user_id == user_id)
    with db.read() as s:
        ids = sorted(s.scalars(stmt.order_by(Attempt.expires_at, Attempt.id)), key=lambda i: _TROUBLE.get(i, 0))
    n = 0
    claims = _Claims(db, enabled=user_id is None and len(ids) > 0)  # a student's own request grades theirs
    try:
        for k, attempt_id in enumerate(ids):
            if budget_s is not None and time.monotonic() - began > budget_s:
                log.warning("expiry: sweep budget of %.1f s used; %d attempts left for the next sweep", budget_s,
                            len(ids) - k)
                break
            if not claims.take(attempt_id):
                continue  # another sweeper is grading it
            try:
                n += _close_due(db, attempt_id, t, attempt_budget_s)
            finally:
                claims.release(attempt_id)
    finally:
        claims.close()
    return n


def _close_due(db: Database, attempt_id: int, t: datetime, attempt_budget_s: float | None) -> bool:
    """Close one attempt whose time is up; a failure is logged and remembered, never raised."""
    failures = _TROUBLE.get(attempt_id, 0)
    deadline = None if attempt_budget_s is None else time.monotonic() + attempt_budget_s * 2 ** min(failures, 8)
    try:
        closed = close_attempt(db, attempt_id, t, due_only=True, deadline=deadline)
    except Exception as e:  # noqa: BLE001 - one bad attempt must not stop the others
        _TROUBLE[attempt_id] = failures + 1
        log.log(logging.ERROR if failures == 0 else logging.WARNING,
                "expiry: attempt %d left open (failure %d): %s", attempt_id, failures + 1, e,
                exc_info=failures == 0)
        return False
    _TROUBLE.pop(attempt_id, None)
    return closed
