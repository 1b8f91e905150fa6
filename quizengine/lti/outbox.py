"""Scores to the LMS (AGS): a durable outbox, filled in the grade's own transaction, sent outside it.

Every change of a score (submit, expiry, regrade, override) calls ``enqueue`` inside its write
transaction: the line items of that student and quiz get their outbox row's version bumped. After
the commit a sender is woken (a thread of this process, or inline in tests); the sweeper also calls
``deliver_due`` for the retries. A post is made with no transaction open, with timeouts, and the
row is marked sent only for the version that was read: a score changed meanwhile is posted again.
A failure is kept (tries, last error) and retried with a doubling delay, at most an hour apart,
until the platform takes it: never dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from ..models import Attempt, LtiKey, LtiLineItem, LtiPlatform, LtiScoreOutbox, Quiz
from ..services.quizzes import policy_score  # the gradebook's rule (best, last or mean attempt)
from . import keys

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a row being posted is not taken by another sender for this long
FIRST_RETRY_S = 30.0
MAX_RETRY_S = 3600.0
FAILED_AFTER = 5  # tries after which the gradebook calls a pending score "failed" (it is still retried)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- enqueue (in the grade's transaction)

def enqueue(s: Session, attempt_ids: Iterable[int]) -> int:
    """Mark the scores of these attempts' students to be posted to their line items; how many rows."""
    ids = sorted(set(attempt_ids))
    if not ids:
        return 0
    pairs = {(r.user_id, r.quiz_id) for r in s.execute(select(Attempt.user_id, Attempt.quiz_id).where(Attempt.id.in_(ids)))}
    return enqueue_scores(s, pairs)


def enqueue_scores(s: Session, pairs: Iterable[tuple[int, str]]) -> int:
    """As ``enqueue``, for the (student id, quiz id) of each attempt (a caller that has them read)."""
    items = [i for user_id, quiz_id in sorted(set(pairs)) for i in s.scalars(
        select(LtiLineItem.id).where(LtiLineItem.user_id == user_id, LtiLineItem.quiz_id == quiz_id))]
    return enqueue_items(s, items)


def enqueue_items(s: Session, line_item_ids: list[int]) -> int:
    if not line_item_ids:
        return 0
    t = now()
    rows = {r.line_item_id: r for r in s.scalars(select(LtiScoreOutbox).where(
        LtiScoreOutbox.line_item_id.in_(line_item_ids)))}
    for item_id in line_item_ids:
        row = rows.get(item_id)
        if row is None:
            s.add(LtiScoreOutbox(line_item_id=item_id, version=1, sent_version=0, tries=0, next_try_at=t))
        else:
            row.version += 1
            row.tries, row.next_try_at = 0, t
    s.flush()
    url = s.get_bind().url.render_as_string(hide_password=False)
    event.listen(s, "after_commit", lambda _s: wake(url), once=True)
    return len(line_item_ids)


# ---------------------------------------------------------------- the score that counts

def score_payload(s: Session, item: LtiLineItem, t: datetime) -> dict[str, Any] | None:
    """The AGS score of a line item's student now: the quiz's policy score, submitted when it was."""
    quiz = s.get(Quiz, item.quiz_id)
    attempts = list(s.scalars(select(Attempt).where(Attempt.user_id == item.user_id, Attempt.quiz_id == item.quiz_id)))
    score, counted = policy_score(quiz, attempts)
    if score is None or counted is None or counted.submitted_at is None:
        return None
    return {"userId": item.lti_sub, "scoreGiven": round(float(score), 6), "scoreMaximum": float(counted.max_score),
            "activityProgress": "Completed", "gradingProgress": "FullyGraded",
            "timestamp": t.isoformat(timespec="milliseconds"),
            "submission": {"submittedAt": _aware(counted.submitted_at).isoformat(timespec="milliseconds")}}


def post_score(item: LtiLineItem, platform: LtiPlatform, key: LtiKey, payload: dict[str, Any]) -> None:
    """POST {lineitem}/scores (application/vnd.ims.lis.v1.score+json); raises on any failure."""
    # pylti1p3 (and with it requests, jwt, cryptography) loads with the first score posted, not with
    # the submit that enqueues it: a worker that never talks to a platform never imports it.
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade

    from .connector import Connector
    from .toolconf import registration

    grade = (Grade().set_user_id(payload["userId"]).set_score_given(payload["scoreGiven"])
             .set_score_maximum(payload["scoreMaximum"]).set_activity_progress(payload["activityProgress"])
             .set_grading_progress(payload["gradingProgress"]).set_timestamp(payload["timestamp"])
             .set_submitted_at(payload["submission"]["submittedAt"]))
    ags = AssignmentsGradesService(Connector(registration(platform, key)),
                                   {"scope": item.scopes, "lineitem": item.lineitem})
    ags.put_grade(grade)


# ---------------------------------------------------------------- delivery (no transaction open while posting)

def _backoff(tries: int) -> timedelta:
    return timedelta(seconds=min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, tries - 1)))


def _claim(db: Any, row_id: int, t: datetime) -> bool:
    with db.write() as s:
        done = s.execute(update(LtiScoreOutbox).where(
            LtiScoreOutbox.id == row_id, LtiScoreOutbox.next_try_at <= t,
            LtiScoreOutbox.version > LtiScoreOutbox.sent_version).values(next_try_at=t + LEASE))
        return done.rowcount == 1


def deliver_one(db: Any, row_id: int, t: datetime | None = None,
                post: Callable[..., None] = post_score) -> bool | None:
    """Post one due row; True when the platform took it, False when it failed, None when not due."""
    t = t or now()
    if not _claim(db, row_id, t):
        return None
    with db.read() as s:
        row = s.get(LtiScoreOutbox, row_id)
        item = s.get(LtiLineItem, row.line_item_id)
        platform = s.get(LtiPlatform, item.platform_id)
        key = s.scalar(select(LtiKey).where(LtiKey.role == "current"))
        version, payload = row.version, score_payload(s, item, t)
    error = None
    if payload is not None:
        try:
            if key is None:
                with db.write() as s:
                    key = keys.current_key(s, t)
            post(item, platform, key, payload)
        except Exception as e:  # noqa: BLE001 - any failure is kept on the row and retried
            from .connector import failure

            error = failure(e)
    with db.write() as s:
        row = s.get(LtiScoreOutbox, row_id)
        if row is None:
            return None
        if error is None:
            row.sent_version = max(row.sent_version, version)
            row.tries, row.last_error, row.next_try_at = 0, None, now()
            if payload is not None:
                row.last_sent_at, row.last_payload = now(), payload
        else:
            row.tries += 1
            row.last_error, row.next_try_at = error[:2000], now() + _backoff(row.tries)
            log.warning("lti: score for line item %d not posted (try %d): %s", row.line_item_id, row.tries, error)
    return error is None


def deliver_due(db: Any, t: datetime | None = None, budget_s: float | None = 10.0,
                post: Callable[..., None] = post_score) -> int:
    """Post every due score (oldest first) until the budget is used; how many the platforms took."""
    t = t or now()
    began = time.monotonic()
    with db.read() as s:
        ids = list(s.scalars(select(LtiScoreOutbox.id).where(
            LtiScoreOutbox.version > LtiScoreOutbox.sent_version, LtiScoreOutbox.next_try_at <= t)
            .order_by(LtiScoreOutbox.next_try_at, LtiScoreOutbox.id).limit(500)))
    sent = 0
    for row_id in ids:
        if budget_s is not None and time.monotonic() - began > budget_s:
            break
        sent += bool(deliver_one(db, row_id, t, post))
    return sent


def status(s: Session, quiz_id: str | None = None) -> dict[str, Any]:
    """For the gradebook: scores waiting (pending), failing (failed) and the last error."""
    stmt = (select(LtiScoreOutbox).join(LtiLineItem, LtiLineItem.id == LtiScoreOutbox.line_item_id)
            .where(LtiScoreOutbox.version > LtiScoreOutbox.sent_version))
    if quiz_id is not None:
        stmt = stmt.where(LtiLineItem.quiz_id == quiz_id)
    rows = list(s.scalars(stmt.order_by(LtiScoreOutbox.next_try_at)))
    linked = s.scalar(select(func.count(LtiLineItem.id)).where(LtiLineItem.quiz_id == quiz_id)) \
        if quiz_id is not None else None
    errors = [r for r in rows if r.last_error]
    return {"pending": sum(r.tries < FAILED_AFTER for r in rows), "failed": sum(r.tries >= FAILED_AFTER for r in rows),
            "last_error": errors[-1].last_error if errors else None, "linked": linked,
            "next_try_at": rows[0].next_try_at if rows else None}


def quiz_status(s: Session, quiz_id: str) -> dict[str, Any] | None:
    """``status`` of one quiz's scores, or None when none of its students came from an LMS."""
    if s.scalar(select(LtiLineItem.id).where(LtiLineItem.quiz_id == quiz_id).limit(1)) is None:
        return None
    return status(s, quiz_id)


def scores_due(s: Session, t: datetime) -> bool:
    """Whether a score waits to be posted and is due at ``t``."""
    return s.scalar(select(LtiScoreOutbox.id).where(LtiScoreOutbox.version > LtiScoreOutbox.sent_version,
                                                    LtiScoreOutbox.next_try_at <= t).limit(1)) is not None


def retry_now(s: Session, quiz_id: str) -> int:
    """Make every waiting score of a quiz due now (the instructor's "retry now")."""
    ids = select(LtiLineItem.id).where(LtiLineItem.quiz_id == quiz_id).scalar_subquery()
    done = s.execute(update(LtiScoreOutbox).where(LtiScoreOutbox.line_item_id.in_(ids),
                                                  LtiScoreOutbox.version > LtiScoreOutbox.sent_version)
                     .values(next_try_at=now()).execution_options(synchronize_session=False))
    return done.rowcount


def dismiss_failed(s: Session, quiz_id: str) -> int:
    """Stop retrying a quiz's failed scores (the instructor's "stop retrying"): the platform keeps
    refusing them. Only the score as it stands is given up; a later change of it is posted again."""
    ids = select(LtiLineItem.id).where(LtiLineItem.quiz_id == quiz_id).scalar_subquery()
    done = s.execute(update(LtiScoreOutbox).where(LtiScoreOutbox.line_item_id.in_(ids),
                                                  LtiScoreOutbox.version > LtiScoreOutbox.sent_version,
                                                  LtiScoreOutbox.tries >= FAILED_AFTER)
                     .values(sent_version=LtiScoreOutbox.version, tries=0)
                     .execution_options(synchronize_session=False))
    return done.rowcount


# ---------------------------------------------------------------- senders: who posts after a commit

class Sender:
    """Posts the outbox of one database: in a thread of this process ("thread"), at once ("inline"), or not."""

    def __init__(self, db: Any, mode: str = "thread"):
        self.db, self.mode = db, mode
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def kick(self) -> None:
        if self.mode == "inline":
            deliver_due(self.db)
        elif self.mode == "thread":
            self._ensure_thread()
            self._wake.set()

    def _ensure_thread(self) -> None:
        with self._lock:  # a forked worker starts its own thread (threads don't survive a fork)
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="quizengine-lti-scores", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                deliver_due(self.db)
            except Exception:  # noqa: BLE001 - keep the thread (the database may be down a moment)
                log.exception("lti: score delivery failed")


_SENDERS: dict[str, Sender] = {}


def register(db: Any, mode: str) -> Sender:
    sender = _SENDERS[db.engine.url.render_as_string(hide_password=False)] = Sender(db, mode)
    return sender


def wake(url: str) -> None:
    sender = _SENDERS.get(url)
    if sender is not None:
        try:
            sender.kick()
        except Exception:  # noqa: BLE001 - the score is in the outbox; the sweeper posts it later
            log.exception("lti: score delivery failed; the sweeper retries it")
