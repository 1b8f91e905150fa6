"""Score changes after grading: manual overrides and regrades, each with an audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from ..bank.variant import make_variant
from ..db import Database
from ..lti import outbox as lti_outbox
from ..models import (GRADED, Attempt, AttemptQuestion, BankFileVersion, CurrentItem, ItemVersion, QuestionResult,
                      ScoreChange, User)
from .attempts import question_id
from .banks import bank_item
from .clock import aware, now
from .closing import GRADE_TRIES
from .errors import ServiceError
from .grades import EFFECTIVE_SCORE, attempt_total, effective_score, grade_question
from .principal import Principal


def _retotal(a: Attempt) -> None:
    a.score = attempt_total(effective_score(q) for q in a.questions)


def override(s: Session, attempt_id: int, qid: str, new_score: float | None, reason: str,
             by: Principal) -> ScoreChange:
    """Set (or with None, clear) an instructor's score for one question; a reason is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(400, "give a reason for the change (it is kept in the audit trail)")
    a = s.scalar(select(Attempt).where(Attempt.id == attempt_id).with_for_update()
                 .options(selectinload(Attempt.questions)))
    if a is None:
        raise ServiceError(404, f"no attempt {attempt_id}")
    if a.state not in GRADED:
        raise ServiceError(409, "only a submitted attempt can be rescored")
    q = next((q for q in a.questions if question_id(q) == qid), None)
    if q is None:
        raise ServiceError(404, f"attempt {attempt_id} has no question {qid!r}")
    if new_score is not None and not 0 <= new_score <= q.points:
        raise ServiceError(400, f"the score must be between 0 and {q.points:g}")
    old = effective_score(q)
    q.override_score = new_score
    change = ScoreChange(attempt_question_id=q.id, kind="override", old_score=old,
                         new_score=new_score if new_score is not None else q.score, reason=reason,
                         changed_by=by.id, changed_at=now(), details={"cleared": new_score is None})
    s.add(change)
    _retotal(a)
    s.flush()
    lti_outbox.enqueue(s, [a.id])
    return change


def audit(s: Session, attempt_id: int) -> list[tuple[ScoreChange, str, str]]:
    """Every score change of an attempt with the changer's username and the question id."""
    rows = s.execute(select(ScoreChange, User.username, AttemptQuestion)
                     .join(AttemptQuestion, ScoreChange.attempt_question_id == AttemptQuestion.id)
                     .join(User, ScoreChange.changed_by == User.id)
                     .where(AttemptQuestion.attempt_id == attempt_id).order_by(ScoreChange.id))
    return [(c, name, question_id(aq)) for c, name, aq in rows]


@dataclass
class RegradeRow:
    question: AttemptQuestion
    student: str
    attempt_id: int
    old_version: str
    old_score: float
    new_score: float
    overridden: bool
    result: QuestionResult = field(default_factory=QuestionResult)  # feedback etc. under the new version

    @property
    def changed(self) -> bool:
        return abs(self.new_score - self.old_score) > 1e-9


def versions(s: Session, item_id: str) -> list[ItemVersion]:
    return list(s.scalars(select(ItemVersion).where(ItemVersion.item_id == item_id).order_by(ItemVersion.id)))


@dataclass
class VersionChoice:
    """A version of an item as the regrade page offers it."""

    id: int
    version: str
    created_at: datetime
    author: str | None  # who saved the bank file in the browser editor; None: loaded from the banks folder
    current: bool  # the version the banks hold now


SAVE_WINDOW = timedelta(seconds=30)  # an editor save records its file, then its items, in one transaction


def _author(s: Session, v: ItemVersion) -> str | None:
    """Who saved this version: the editor's save of a file holding the item, just before the version appeared."""
    created = aware(v.created_at)
    saves = s.execute(select(BankFileVersion.content, User.username)
                      .join(User, BankFileVersion.saved_by == User.id)
                      .where(BankFileVersion.saved_at <= created, BankFileVersion.saved_at >= created - SAVE_WINDOW)
                      .order_by(BankFileVersion.id.desc()))
    return next((name for content, name in saves if f"id: {v.item_id}" in content), None)


def version_choices(s: Session, item_id: str) -> list[VersionChoice]:
    """Every version of an item, newest first, with its date and author; 404 for an unknown item."""
    rows = versions(s, item_id)
    if not rows:
        raise ServiceError(404, f"no item {item_id!r}")
    current = s.scalar(select(CurrentItem.item_version_id).where(CurrentItem.item_id == item_id))
    return [VersionChoice(v.id, v.version, aware(v.created_at), _author(s, v), v.id == current)
            for v in reversed(rows)]


@dataclass
class RegradeCounts:
    attempts: int  # attempts with a question that moves to the version
    questions: int
    changed: int  # questions whose score changes
    overridden: int  # questions whose manual score stays what counts


def counts(rows: list[RegradeRow]) -> RegradeCounts:
    return RegradeCounts(len({r.attempt_id for r in rows}), len(rows), sum(r.changed for r in rows),
                         sum(r.overridden for r in rows))


def check_reason(reason: str | None) -> str:
    """A regrade's reason, required: it is kept in every changed question's audit trail."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(400, "give a reason for the regrade (it is kept in the audit trail of every question)")
    if len(reason) > 1000:
        raise ServiceError(400, "the reason is limited to 1000 characters")
    return reason


def preview(s: Session, item_id: str, version_id: int) -> list[RegradeRow]:
    """The before/after score of every graded attempt that has another version of the item."""
    target = s.get(ItemVersion, version_id)
    if target is None or target.item_id != item_id:
        raise ServiceError(404, f"item {item_id!r} has no version {version_id}")
    new_item = bank_item(target)
    rows = []
    questions = s.scalars(select(AttemptQuestion).join(ItemVersion).join(Attempt)
                          .where(ItemVersion.item_id == item_id, AttemptQuestion.item_version_id != version_id,
                                 Attempt.state.in_(GRADED))
                          .options(selectinload(AttemptQuestion.response), selectinload(AttemptQuestion.item_version),
                                   selectinload(AttemptQuestion.attempt).selectinload(Attempt.user))
                          .order_by(AttemptQuestion.attempt_id))
    for q in questions:
        new, result = grade_question(make_variant(new_item, q.seed), q.points,
                                     q.response.value if q.response is not None else None)
        rows.append(RegradeRow(q, q.attempt.user.username, q.attempt_id, q.item_version.version, q.score or 0.0, new,
                               q.override_score is not None, result))
    return rows


def _affected(s: Session, item_id: str, version_id: int) -> dict[int, tuple[int, float | None]]:
    """The questions a regrade to this version touches now: id -> (item version id, score)."""
    rows = s.execute(select(AttemptQuestion.id, AttemptQuestion.item_version_id, AttemptQuestion.score)
                     .join(ItemVersion, AttemptQuestion.item_version_id == ItemVersion.id)
                     .join(Attempt, AttemptQuestion.attempt_id == Attempt.id)
                     .where(ItemVersion.item_id == item_id, AttemptQuestion.item_version_id != version_id,
                            Attempt.state.in_(GRADED)))
    return {r.id: (r.item_version_id, r.score) for r in rows}


def apply(db: Database, item_id: str, version_id: int, reason: str, by: Principal) -> list[RegradeRow]:
    """Move every affected question to the chosen version and regrade it (overrides stay).

    The new grades are computed in a read transaction; the write is one short transaction, made
    only if the affected questions are still those graded (else computed again, a bounded number
    of times).
    """
    reason = check_reason(reason)
    for _ in range(GRADE_TRIES):
        with db.read() as s:
            rows = preview(s, item_id, version_id)
            to_version = s.get(ItemVersion, version_id).version
        with db.write() as s:
            seen = {r.question.id: (r.question.item_version_id, r.question.score) for r in rows}
            if _affected(s, item_id, version_id) != seen:
                continue  # an attempt was submitted or regraded meanwhile
            if not rows:
                return rows
            s.execute(update(AttemptQuestion), [{"id": r.question.id, "item_version_id": version_id,
                                                 "score": r.new_score, "result": r.result} for r in rows])
            t = now()
            s.add_all(ScoreChange(attempt_question_id=r.question.id, kind="regrade", old_score=r.question.score,
                                  new_score=r.new_score, reason=reason, changed_by=by.id, changed_at=t,
                                  details={"from_version": r.old_version, "to_version": to_version}) for r in rows)
            _retotal_ids(s, {r.attempt_id for r in rows})
            lti_outbox.enqueue(s, {r.attempt_id for r in rows if r.changed})
            return rows
    raise ServiceError(409, "attempts kept changing while the regrade was computed; try again")


def _retotal_ids(s: Session, attempt_ids: set[int]) -> None:
    """Set each attempt's score to the sum of its questions' scores (an override wins)."""
    totals = s.execute(select(AttemptQuestion.attempt_id, func.sum(EFFECTIVE_SCORE))
                       .where(AttemptQuestion.attempt_id.in_(attempt_ids)).group_by(AttemptQuestion.attempt_id))
    s.execute(update(Attempt), [{"id": aid, "score": round(total, 10)} for aid, total in totals])
