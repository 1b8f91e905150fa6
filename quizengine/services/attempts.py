"""Attempts: start, autosave, submit, expire, and what a student or instructor may see of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..bank.families import distinct
from ..bank.params import plain
from ..bank.types import ResponseRefused, check_response
from ..grading import grade
from ..lti import outbox as lti_outbox
from ..models import Attempt, AttemptQuestion, CurrentItem, ItemVersion, Quiz, Response, User
from .banks import bank_item, cached_item, variant_of

log = logging.getLogger(__name__)

GRADED = ("submitted", "expired")
ACTIVE_CAP_S = 600.0


class ServiceError(Exception):
    """A request the rules refuse; ``status`` is the HTTP status a view should answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(d: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return d if d is None or d.tzinfo else d.replace(tzinfo=timezone.utc)


def iso(d: datetime | None) -> str | None:
    return None if d is None else aware(d).isoformat()


# ---------------------------------------------------------------- quizzes

def quiz_window(q: Quiz, t: datetime) -> str:
    """``open``, ``not_open`` (before opens_at) or ``closed``."""
    if q.opens_at and t < aware(q.opens_at):
        return "not_open"
    if q.closes_at and t >= aware(q.closes_at):
        return "closed"
    return "open"


def user_attempts(s: Session, user: User, quiz_id: str | None = None) -> list[Attempt]:
    stmt = select(Attempt).where(Attempt.user_id == user.id).order_by(Attempt.quiz_id, Attempt.number)
    if quiz_id is not None:
        stmt = stmt.where(Attempt.quiz_id == quiz_id)
    return list(s.scalars(stmt))


def policy_score(q: Quiz, attempts: list[Attempt]) -> tuple[float | None, Attempt | None]:
    """The score that counts under the quiz's policy, and the attempt it comes from."""
    graded = [a for a in attempts if a.state in GRADED and a.score is not None]
    if not graded:
        return None, None
    if q.score_policy == "last":
        a = max(graded, key=lambda a: a.number)
        return a.score, a
    if q.score_policy == "mean":
        return sum(a.score for a in graded) / len(graded), max(graded, key=lambda a: a.number)
    a = max(graded, key=lambda a: (a.score, -a.number))
    return a.score, a


def quiz_rows(s: Session, user: User, t: datetime) -> list[dict[str, Any]]:
    """The quizzes a user sees, in the API's format (CONTRACT section 4)."""
    rows = []
    for q in s.scalars(select(Quiz).order_by(Quiz.id)):
        attempts = user_attempts(s, user, q.id)
        best, _ = policy_score(q, attempts)
        rows.append({
            "id": q.id, "title": q.title, "opens_at": iso(q.opens_at), "closes_at": iso(q.closes_at),
            "time_limit_s": q.time_limit_s, "max_attempts": q.max_attempts, "attempts_used": len(attempts),
            "state": quiz_window(q, t), "score_policy": q.score_policy, "score": best,
            "max_score": _quiz_max_score(q),
            "open_attempt_id": next((a.id for a in attempts if a.state == "open"), None),
        })
    return rows


def _quiz_max_score(q: Quiz) -> float | None:
    slots = q.definition.get("slots", [])
    if all(sl.get("points") is not None for sl in slots):
        return float(sum(sl["points"] * sl.get("count", 1) for sl in slots))
    return None


# ---------------------------------------------------------------- starting

def _hmac_int(secret: str, *parts: object) -> int:
    msg = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hmac.new(secret.encode(), msg, hashlib.sha256).digest()[:8], "big")


@dataclass(frozen=True)
class PoolItem:
    item_id: str
    topic: str
    tags: frozenset[str]
    item_version_id: int
    version: str
    family: str | None = None  # at most one item of a family per attempt


_POOLS: dict[tuple[str, int, int], list[PoolItem]] = {}


def current_items(s: Session) -> list[PoolItem]:
    """The items the banks hold now; cached per process until a bank load changes them."""
    stamp = s.execute(select(func.count(CurrentItem.item_id), func.coalesce(func.sum(CurrentItem.item_version_id), 0))).one()
    key = (str(s.get_bind().url), int(stamp[0]), int(stamp[1]))
    pool = _POOLS.get(key)
    if pool is None:
        rows = s.execute(select(CurrentItem.item_id, CurrentItem.topic, CurrentItem.tags, CurrentItem.item_version_id,
                                ItemVersion.version, ItemVersion.data["family"].as_string().label("family"))
                         .join(ItemVersion, CurrentItem.item_version_id == ItemVersion.id).order_by(CurrentItem.item_id))
        pool = [PoolItem(r.item_id, r.topic, frozenset(r.tags or []), r.item_version_id, r.version, r.family or None)
                for r in rows]
        _POOLS.clear()
        _POOLS[key] = pool
    return pool


def draw_items(s: Session, q: Quiz, secret: str, user_id: int, number: int) -> list[tuple[PoolItem, float | None]]:
    """Draw each slot's items for one attempt; no item twice; unpredictable without the secret.

    With ``repeats: avoid`` (the default) items the student met in an earlier attempt come last,
    the least recently met first: they are drawn again only when a pool has no unseen items left.
    """
    current = {c.item_id: c for c in current_items(s)}
    avoid = number > 1 and q.definition.get("repeats", "avoid") == "avoid"
    seen = seen_items(s, q.id, user_id, number) if avoid else {}
    chosen: list[tuple[PoolItem, float | None]] = []
    used: set[str] = set()
    families: set[str] = set()
    for k, slot in enumerate(q.definition["slots"]):
        pool = [c for c in slot_pool(current, slot) if c.item_id not in used]
        pool.sort(key=lambda c: (seen.get(c.item_id, 0), _hmac_int(secret, "draw", user_id, q.id, number, k, c.item_id)))
        count = slot.get("count", 1)
        pool = distinct(pool, count, lambda c: c.family, families)  # never two items of one family
        if len(pool) < count:
            raise ServiceError(409, f"quiz {q.id}: slot {k + 1} needs {count} items but its pool has {len(pool)} "
                                    "left; ask your instructor to fix the quiz")
        for c in pool:
            chosen.append((c, slot.get("points")))
            used.add(c.item_id)
    repeated = [c.item_id for c, _ in chosen if c.item_id in seen]
    if repeated:
        log.warning("quiz %s: attempt %d of user %d repeats %d items of earlier attempts (the pools ran out of "
                    "unseen items): %s", q.id, number, user_id, len(repeated), ", ".join(repeated))
    if q.definition.get("shuffle_slots"):
        chosen.sort(key=lambda pair: _hmac_int(secret, "order", user_id, q.id, number, pair[0].item_id))
    return chosen


def slot_pool(current: dict[str, PoolItem], slot: dict[str, Any]) -> list[PoolItem]:
    """The items a slot of a quiz definition draws from."""
    if slot.get("items"):
        return [current[i] for i in slot["items"] if i in current]
    tags, leave_out = set(slot.get("tags") or []), set(slot.get("exclude_tags") or [])
    return [c for c in current.values() if c.topic == slot["topic"] and tags <= c.tags and not leave_out & c.tags]


def seen_items(s: Session, quiz_id: str, user_id: int, number: int) -> dict[str, int]:
    """Item id -> the latest of the student's attempts before ``number`` that drew it."""
    rows = s.execute(select(ItemVersion.item_id, func.max(Attempt.number))
                     .join(AttemptQuestion, AttemptQuestion.item_version_id == ItemVersion.id)
                     .join(Attempt, Attempt.id == AttemptQuestion.attempt_id)
                     .where(Attempt.user_id == user_id, Attempt.quiz_id == quiz_id, Attempt.number < number)
                     .group_by(ItemVersion.item_id))
    return {item_id: int(n) for item_id, n in rows}


def repeat_free_attempts(s: Session, q: Quiz) -> int:
    """How many attempts the quiz's pools fill without an item met before (an upper bound)."""
    current = {c.item_id: c for c in current_items(s)}
    slots = q.definition["slots"]
    pools = [slot_pool(current, slot) for slot in slots]
    union = {c.item_id for pool in pools for c in pool}
    bounds = [len(pool) // slot.get("count", 1) for pool, slot in zip(pools, slots)]
    return min(bounds + [len(union) // max(1, sum(slot.get("count", 1) for slot in slots))])


def start_attempt(s: Session, user: User, quiz_id: str, secret: str, t: datetime | None = None) -> Attempt:
    """Start a new attempt, or refuse (403) when the quiz is closed or attempts are used up."""
    t = t or now()
    q = s.get(Quiz, quiz_id)
    if q is None:
        raise ServiceError(404, f"no quiz {quiz_id!r}")
    # Serialise starts per user (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).
    s.execute(select(User.id).where(User.id == user.id).with_for_update())
    window = quiz_window(q, t)
    if window != "open":
        raise ServiceError(403, "the quiz is not open yet" if window == "not_open" else "the quiz is closed")
    attempts = user_attempts(s, user, quiz_id)
    for a in attempts:
        expire_if_due(s, a, t)
    if any(a.state == "open" for a in attempts):
        raise ServiceError(409, "you have an attempt in progress; continue it first")
    if q.max_attempts is not None and len(attempts) >= q.max_attempts:
        raise ServiceError(403, f"all {q.max_attempts} attempts are used")
    number = len(attempts) + 1
    ends = [x for x in (t + timedelta(seconds=q.time_limit_s) if q.time_limit_s else None, aware(q.closes_at)) if x]
    attempt = Attempt(user_id=user.id, quiz_id=q.id, number=number, state="open", started_at=t,
                      expires_at=min(ends) if ends else None, max_score=0.0)
    s.add(attempt)
    try:
        s.flush()
    except IntegrityError:
        raise ServiceError(409, "another attempt was started at the same moment; reload the page") from None
    total = 0.0
    for slot, (cur, points) in enumerate(draw_items(s, q, secret, user.id, number)):
        seed = _hmac_int(secret, "seed", user.id, q.id, number, cur.item_id) % 2**31
        if points is None:
            item = cached_item(cur.item_id, cur.version) or bank_item(s.get(ItemVersion, cur.item_version_id))
            points = item.model.points
        s.add(AttemptQuestion(attempt_id=attempt.id, slot=slot, item_version_id=cur.item_version_id, seed=seed,
                              points=float(points)))
        total += float(points)
    attempt.max_score = total
    s.flush()
    return attempt


# ---------------------------------------------------------------- loading

def load_attempt(s: Session, user: User, attempt_id: int, lock: bool = False) -> Attempt:
    """The attempt, if the user may see it (its owner, or an instructor); otherwise 404."""
    stmt = select(Attempt).where(Attempt.id == attempt_id).options(
        selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
        selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version))
    if lock:
        stmt = stmt.with_for_update(of=Attempt)
    a = s.scalar(stmt)
    if a is None or (a.user_id != user.id and user.role != "instructor"):
        raise ServiceError(404, f"no attempt {attempt_id}")
    return a


def question_id(aq: AttemptQuestion) -> str:
    """The id a student sees: its place in the attempt (an item id could give the answer away)."""
    return f"q{aq.slot + 1}"


def question_of(a: Attempt, qid: str) -> AttemptQuestion:
    for q in a.questions:
        if question_id(q) == qid:
            return q
    raise ServiceError(404, f"attempt {a.id} has no question {qid!r}")


# ---------------------------------------------------------------- saving

ID_MAX = 2**31 - 1  # ids live in INTEGER columns: a larger value fails on PostgreSQL
SEQ_MAX = 2**53 - 1  # seq is a BIGINT (older pages sent Date.now() in ms); JSON numbers are exact to 2^53
DEPTH_MAX = 32  # a response nests lists this deep at most (a matrix answer is 2)


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


def plan_save(s: Session, user: User, attempt_id: int, qid: str, value: Any, seq: int | None,
              t: datetime | None = None) -> SavePlan:
    """Check a save (owner, state, question, response shape) in a read transaction."""
    t = t or now()
    a = s.execute(select(Attempt.user_id, Attempt.state, Attempt.expires_at, Attempt.last_activity_at,
                         Attempt.started_at).where(Attempt.id == attempt_id)).first()
    if a is None or (a.user_id != user.id and user.role != "instructor"):
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
    if state != "open" or (expires_at is not None and aware(expires_at) <= t):
        # (An attempt whose time is up is submitted by the sweeper or the next read, not here.)
        shown = state if state != "open" else "expired"
        raise ServiceError(409, f"the attempt is {shown}; responses can no longer be changed")


class StaleSave(ServiceError):
    """409: the stored answer is newer than the save (changed in another tab or device); carries it."""

    def __init__(self, seq: int | None, stored_seq: int, value: Any, saved_at: datetime):
        super().__init__(409, f"this answer (seq {seq}) is stale: the saved answer, changed in another tab or "
                              f"device, has seq {stored_seq}; send seq {stored_seq + 1} to replace it")
        self.seq, self.value, self.saved_at = stored_seq, value, aware(saved_at)

    def fields(self) -> dict[str, Any]:
        """What a client needs to show the newer answer and carry on: its value, seq and time."""
        return {"seq": self.seq, "response": self.value, "saved_at": iso(self.saved_at)}


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
    opened = s.execute(update(Attempt).where(Attempt.id == plan.attempt_id, Attempt.state == "open",
                                             (Attempt.expires_at.is_(None)) | (Attempt.expires_at > t))
                       .values(last_activity_at=t).execution_options(synchronize_session=False))
    if opened.rowcount != 1:
        row = s.execute(select(Attempt.state, Attempt.expires_at).where(Attempt.id == plan.attempt_id)).first()
        _check_open(row.state, row.expires_at, t)
        raise ServiceError(409, "the attempt can no longer be changed")  # pragma: no cover - closed above
    stmt = update(Response).where(Response.question_id == plan.question_id)
    values: dict[str, Any] = {"value": plan.value, "saved_at": t, "active_s": Response.active_s + plan.spent,
                              "seq": Response.seq + 1 if plan.seq is None else plan.seq}
    if plan.seq is not None:
        stmt = stmt.where(Response.seq < plan.seq)
    if s.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount == 1:
        return t, plan.seq if plan.seq is not None else s.scalar(
            select(Response.seq).where(Response.question_id == plan.question_id))
    stored = s.execute(select(Response.seq, Response.value, Response.saved_at)
                       .where(Response.question_id == plan.question_id)).first()
    if stored is not None:
        if stored.seq == plan.seq and same_value(stored.value, plan.value):
            return aware(stored.saved_at), stored.seq  # a repeat of the stored save
        raise StaleSave(plan.seq, stored.seq, stored.value, stored.saved_at)
    s.execute(insert(Response).values(question_id=plan.question_id, value=plan.value, seq=plan.seq or 0, saved_at=t,
                                      first_saved_at=t, active_s=plan.spent))
    return t, plan.seq or 0


def save_response(db: Any, user: User, attempt_id: int, qid: str, value: Any, seq: int | None,
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


def save_page(db: Any, user: User, view: dict[str, Any], answers: dict[str, tuple[Any, int | None]],
              t: datetime | None = None) -> tuple[list[str], list[str]]:
    """Save the plain form: ``answers`` maps a question id to (value, the seq the page was rendered with).

    A question whose value is the stored one, or that was blank when rendered and is blank now, is
    not written. Any other is saved with the rendered seq plus 1 (0 when nothing was stored), so an
    answer saved since the page was rendered is kept (not overwritten). Returns (saved, kept) ids.
    """
    saved, kept = [], []
    for q in view["questions"]:
        if q["id"] not in answers:
            continue
        value, rendered = answers[q["id"]]
        if same_value(shown(value), shown(q["response"])) or (rendered is None and value is None):
            continue
        try:
            save_response(db, user, view["attempt_id"], q["id"], value, 0 if rendered is None else rendered + 1, t)
            saved.append(q["id"])
        except StaleSave:
            kept.append(q["id"])
    return saved, kept


def cached_variant(s: Session, item_version_id: int, item_id: str, version: str, seed: int) -> Any:
    """The variant from the process cache, loading the item version only on a miss."""
    from .banks import cached

    v = cached(item_id, version, seed)
    return v if v is not None else variant_of(s.get(ItemVersion, item_version_id), seed)


# ---------------------------------------------------------------- submitting
#
# Grading may be slow (a costly response, a large item), so it never runs under the write lock:
# the attempt and its responses are read in a read transaction, graded with no transaction open,
# and the scores written in one short write transaction, only if the attempt is still open and
# its responses are the ones graded (else it is graded again, at most GRADE_TRIES times).

GRADE_TRIES = 3
log = logging.getLogger(__name__)


class GradingOverBudget(Exception):
    """Grading an attempt took longer than its time budget (checked between questions)."""


def grade_question(v: Any, points: float, value: Any) -> tuple[float, dict[str, Any]]:
    """One question's score, scaled to its points, and its result; no response scores 0."""
    if value is None:
        return 0.0, {"feedback": "Not answered.", "answered": False}
    g = grade(v, value)
    scale = points / g.max_score if g.max_score else 0.0
    return round(g.score * scale, 10), {"feedback": g.feedback, "format_error": g.format_error,
                                        "mistake": g.mistake, "correct": g.correct, "answered": True}


def grade_attempt(a: Attempt) -> None:
    """Grade a loaded attempt in place (for callers already inside a write transaction)."""
    total = 0.0
    for q in a.questions:
        q.score, q.result = grade_question(variant_of(q.item_version, q.seed), q.points,
                                           q.response.value if q.response is not None else None)
        total += q.override_score if q.override_score is not None else q.score
    a.score = round(total, 10)


Fingerprint = tuple[tuple[Any, ...], ...]


def _fingerprint_row(question_id: int, item_version_id: int, override: float | None, seq: int | None,
                     saved_at: datetime | None, value: Any) -> tuple[Any, ...]:
    return (question_id, item_version_id, override, seq, aware(saved_at), json.dumps(value, sort_keys=True))


def _fingerprint(s: Session, attempt_id: int) -> Fingerprint:
    """What grading depends on, as stored now: each question's version, override and response."""
    rows = s.execute(select(AttemptQuestion.id, AttemptQuestion.item_version_id, AttemptQuestion.override_score,
                            Response.seq, Response.saved_at, Response.value)
                     .outerjoin(Response, Response.question_id == AttemptQuestion.id)
                     .where(AttemptQuestion.attempt_id == attempt_id).order_by(AttemptQuestion.slot))
    return tuple(_fingerprint_row(*r) for r in rows)


@dataclass(frozen=True)
class GradingWork:
    """An open attempt as read for grading: its variants and responses, and their fingerprint."""

    attempt_id: int
    expires_at: datetime | None
    questions: tuple[tuple[int, Any, float, float | None, Any], ...]  # (id, variant, points, override, value)
    fingerprint: Fingerprint


def _read_work(s: Session, a: Attempt) -> GradingWork:
    questions, rows = [], []
    for q in a.questions:
        r = q.response
        value = r.value if r is not None else None
        questions.append((q.id, variant_of(q.item_version, q.seed), q.points, q.override_score, value))
        rows.append(_fingerprint_row(q.id, q.item_version_id, q.override_score, r.seq if r else None,
                                     r.saved_at if r else None, value))
    return GradingWork(a.id, aware(a.expires_at), tuple(questions), tuple(rows))


def _grade_work(work: GradingWork, deadline: float | None) -> tuple[list[dict[str, Any]], float]:
    """Grade with no transaction open: the rows to write and the attempt's total."""
    rows, total = [], 0.0
    for qid, v, points, override, value in work.questions:
        if deadline is not None and time.monotonic() > deadline:
            raise GradingOverBudget(f"attempt {work.attempt_id}: grading ran over its time budget")
        score, result = grade_question(v, points, value)
        rows.append({"id": qid, "score": score, "result": result})
        total += override if override is not None else score
    return rows, round(total, 10)


def close_attempt(db: Any, attempt_id: int, t: datetime, user: Any = None, due_only: bool = False,
                  deadline: float | None = None) -> bool:
    """Grade and close an open attempt (expired if its time is up at ``t``); True if this call closed it.

    With ``user``, only that student may submit (403; 404 for an attempt they may not see).
    With ``due_only``, an attempt whose time is not up stays open. ``deadline`` (time.monotonic)
    bounds the grading, checked between questions.
    """
    for _ in range(GRADE_TRIES):
        with db.read() as s:
            a = load_attempt(s, user, attempt_id) if user is not None else s.scalar(
                select(Attempt).where(Attempt.id == attempt_id).options(
                    selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
                    selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version)))
            if a is None:
                return False
            if user is not None and a.user_id != user.id:
                raise ServiceError(403, "only the student taking the attempt can submit it")
            due = a.expires_at is not None and aware(a.expires_at) <= t
            if a.state != "open" or (due_only and not due):
                return False
            work = _read_work(s, a)
        rows, total = _grade_work(work, deadline)
        state, at = ("expired", work.expires_at) if due else ("submitted", t)
        with db.write() as s:
            now_open = s.execute(select(Attempt.state, Attempt.expires_at).where(Attempt.id == attempt_id)
                                 .with_for_update()).first()
            if now_open is None or now_open.state != "open":
                return False  # closed meanwhile by another submit or the sweeper: graded once
            if aware(now_open.expires_at) != work.expires_at or _fingerprint(s, attempt_id) != work.fingerprint:
                continue  # a save landed while grading: grade what is stored now
            s.execute(update(AttemptQuestion), rows)
            s.execute(update(Attempt).where(Attempt.id == attempt_id, Attempt.state == "open")
                      .values(state=state, submitted_at=at, score=total).execution_options(synchronize_session=False))
            lti_outbox.enqueue(s, [attempt_id])  # the LMS's line items get the new score (after the commit)
            return True
    raise ServiceError(409, f"the answers kept changing while attempt {attempt_id} was graded; submit again")


def submit_attempt(db: Any, user: Any, attempt_id: int, t: datetime | None = None) -> bool:
    """Grade and close an open attempt; a second submit changes nothing. True if this call closed it."""
    return close_attempt(db, attempt_id, t or now(), user=user)


def expire_if_due(s: Session, a: Attempt, t: datetime) -> bool:
    """Inside a caller's write transaction, submit an open attempt whose time is up; True if it did.

    This grades under the caller's lock: callers run ``expire_due(db, user_id=...)`` first, so it
    only catches an attempt whose time ran out in between.
    """
    if a.state != "open" or a.expires_at is None or aware(a.expires_at) > t:
        return False
    grade_attempt(a)
    a.state, a.submitted_at = "expired", aware(a.expires_at)
    s.flush()
    lti_outbox.enqueue(s, [a.id])
    return True


def fresh_view(db: Any, user: Any, attempt_id: int, t: datetime | None = None) -> dict[str, Any]:
    """The attempt's view; an open attempt whose time is up is submitted first (a write only then)."""
    t = t or now()
    with db.read() as s:
        a = load_attempt(s, user, attempt_id)
        if not (a.state == "open" and a.expires_at is not None and aware(a.expires_at) <= t):
            return attempt_view(s, a, t)
    close_attempt(db, attempt_id, t, due_only=True)
    with db.read() as s:
        return attempt_view(s, load_attempt(s, user, attempt_id), t)


# Attempts whose grading failed or ran over budget in this process, with how often: a sweep
# tries them last, with a budget doubled per failure, so they never hold up the others.
_TROUBLE: dict[int, int] = {}


def expire_due(db: Any, t: datetime | None = None, budget_s: float | None = None,
               attempt_budget_s: float | None = None, user_id: int | None = None) -> int:
    """Submit open attempts whose time is up, each graded alone and written in its own short transaction.

    ``budget_s``: start no new attempt after this many seconds (the rest wait for the next call).
    ``attempt_budget_s``: give up on one attempt after this long (doubled per earlier failure).
    An attempt whose grading raises or runs over is logged and left open; the others go on.
    ``user_id`` limits it to one student's attempts. Returns how many were submitted.
    """
    t = t or now()
    began = time.monotonic()
    stmt = select(Attempt.id).where(Attempt.state == "open", Attempt.expires_at.is_not(None), Attempt.expires_at <= t)
    if user_id is not None:
        stmt = stmt.where(Attempt.user_id == user_id)
    with db.read() as s:
        ids = sorted(s.scalars(stmt.order_by(Attempt.expires_at, Attempt.id)), key=lambda i: _TROUBLE.get(i, 0))
    n = 0
    for k, attempt_id in enumerate(ids):
        if budget_s is not None and time.monotonic() - began > budget_s:
            log.warning("expiry: sweep budget of %.1f s used; %d attempts left for the next sweep", budget_s,
                        len(ids) - k)
            break
        failures = _TROUBLE.get(attempt_id, 0)
        deadline = None if attempt_budget_s is None else time.monotonic() + attempt_budget_s * 2 ** min(failures, 8)
        try:
            n += close_attempt(db, attempt_id, t, due_only=True, deadline=deadline)
        except Exception as e:  # noqa: BLE001 - one bad attempt must not stop the others
            _TROUBLE[attempt_id] = failures + 1
            log.log(logging.ERROR if failures == 0 else logging.WARNING,
                    "expiry: attempt %d left open (failure %d): %s", attempt_id, failures + 1, e,
                    exc_info=failures == 0)
        else:
            _TROUBLE.pop(attempt_id, None)
    return n


# ---------------------------------------------------------------- views

def feedback_allowed(q: Quiz, t: datetime) -> bool:
    if q.feedback == "after_submission":
        return True
    if q.feedback == "after_close":
        return q.closes_at is not None and t >= aware(q.closes_at)
    return False


def attempt_view(s: Session, a: Attempt, t: datetime, instructor: bool = False) -> dict[str, Any]:
    """The attempt with its questions and saved responses; the key only once feedback is allowed."""
    q = s.get(Quiz, a.quiz_id)
    show = a.state in GRADED and (instructor or feedback_allowed(q, t))
    questions = []
    for aq in a.questions:
        v = variant_of(aq.item_version, aq.seed)
        d = v.public()
        d["id"] = question_id(aq)
        d["points"] = aq.points
        d["response"] = aq.response.value if aq.response else None
        d["saved_at"] = iso(aq.response.saved_at) if aq.response else None
        d["seq"] = aq.response.seq if aq.response else None
        if a.state in GRADED:
            d["score"] = aq.override_score if aq.override_score is not None else aq.score
            d["max_score"] = aq.points
        if show:
            d.update(_feedback(v, aq))
        questions.append(d)
    out = {"attempt_id": a.id, "quiz_id": a.quiz_id, "quiz_title": q.title, "number": a.number, "state": a.state,
           "started_at": iso(a.started_at), "expires_at": iso(a.expires_at), "submitted_at": iso(a.submitted_at),
           "questions": questions}
    if a.state in GRADED:
        out["score"], out["max_score"] = a.score, a.max_score
    return out


def _feedback(v: Any, aq: AttemptQuestion) -> dict[str, Any]:
    res = aq.result or {}
    return {"feedback": res.get("feedback", ""), "format_error": res.get("format_error"),
            "mistake": res.get("mistake"), "correct": res.get("correct", False),
            "correct_answer": plain(v.answer), "explanation_html": v.explanation_html}


def result_view(s: Session, a: Attempt, t: datetime) -> dict[str, Any]:
    """The submit result (CONTRACT section 4): score, and per question as the policy allows."""
    q = s.get(Quiz, a.quiz_id)
    show = feedback_allowed(q, t)
    questions = []
    for aq in a.questions:
        score = aq.override_score if aq.override_score is not None else aq.score
        d: dict[str, Any] = {"id": question_id(aq), "score": score, "max_score": aq.points,
                             "feedback": (aq.result or {}).get("feedback", "") if show else ""}
        if show:
            d.update(_feedback(variant_of(aq.item_version, aq.seed), aq))
        questions.append(d)
    return {"attempt_id": a.id, "state": a.state, "score": a.score, "max_score": a.max_score,
            "submitted_at": iso(a.submitted_at), "questions": questions}


def key_view(a: Attempt) -> dict[str, Any]:
    return {"attempt_id": a.id, "questions": [
        {"id": question_id(aq), "answer": plain(variant_of(aq.item_version, aq.seed).answer),
         "item_id": aq.item_version.item_id, "seed": aq.seed, "version": aq.item_version.version}
        for aq in a.questions]}
