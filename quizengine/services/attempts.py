"""Attempts: start, autosave, submit, expire, and what a student or instructor may see of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..bank.params import plain
from ..grading import CostlyNumber, FormatError, grade, parse_numeric
from ..models import Attempt, AttemptQuestion, CurrentItem, ItemVersion, Quiz, Response, User
from .banks import bank_item, cached_item, variant_of

GRADED = ("submitted", "expired")
ACTIVE_CAP_S = 600.0
MAX_RESPONSE_BYTES = 8 * 1024


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


_POOLS: dict[tuple[str, int, int], list[PoolItem]] = {}


def current_items(s: Session) -> list[PoolItem]:
    """The items the banks hold now; cached per process until a bank load changes them."""
    stamp = s.execute(select(func.count(CurrentItem.item_id), func.coalesce(func.sum(CurrentItem.item_version_id), 0))).one()
    key = (str(s.get_bind().url), int(stamp[0]), int(stamp[1]))
    pool = _POOLS.get(key)
    if pool is None:
        rows = s.execute(select(CurrentItem.item_id, CurrentItem.topic, CurrentItem.tags, CurrentItem.item_version_id,
                                ItemVersion.version)
                         .join(ItemVersion, CurrentItem.item_version_id == ItemVersion.id).order_by(CurrentItem.item_id))
        pool = [PoolItem(r.item_id, r.topic, frozenset(r.tags or []), r.item_version_id, r.version) for r in rows]
        _POOLS.clear()
        _POOLS[key] = pool
    return pool


def draw_items(s: Session, q: Quiz, secret: str, user_id: int, number: int) -> list[tuple[PoolItem, float | None]]:
    """Draw each slot's items for one attempt; no item twice; unpredictable without the secret."""
    current = {c.item_id: c for c in current_items(s)}
    chosen: list[tuple[PoolItem, float | None]] = []
    used: set[str] = set()
    for k, slot in enumerate(q.definition["slots"]):
        if slot.get("items"):
            pool = [current[i] for i in slot["items"] if i in current]
        else:
            tags = set(slot.get("tags") or [])
            pool = [c for c in current.values() if c.topic == slot["topic"] and tags <= c.tags]
        pool = [c for c in pool if c.item_id not in used]
        pool.sort(key=lambda c: _hmac_int(secret, "draw", user_id, q.id, number, k, c.item_id))
        count = slot.get("count", 1)
        if len(pool) < count:
            raise ServiceError(409, f"quiz {q.id}: slot {k + 1} needs {count} items but its pool has {len(pool)} "
                                    "left; ask your instructor to fix the quiz")
        for c in pool[:count]:
            chosen.append((c, slot.get("points")))
            used.add(c.item_id)
    if q.definition.get("shuffle_slots"):
        chosen.sort(key=lambda pair: _hmac_int(secret, "order", user_id, q.id, number, pair[0].item_id))
    return chosen


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


ID_MAX = 2**31 - 1  # ids live in INTEGER columns: a larger value fails on PostgreSQL
SEQ_MAX = 2**53 - 1  # seq is a BIGINT; pages send Date.now() (ms), and JSON numbers are exact to 2^53
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
    note = check_response(cached_variant(s, q.item_version_id, q.item_id, q.version, q.seed), value)
    # Time since the attempt's previous save (capped: a student who walked away is not "on" it).
    since = aware(a.last_activity_at) or aware(a.started_at)
    spent = min(max((t - since).total_seconds(), 0.0), ACTIVE_CAP_S)
    return SavePlan(attempt_id, q.id, value, seq, spent, t, note)


def _check_open(state: str, expires_at: datetime | None, t: datetime) -> None:
    if state != "open" or (expires_at is not None and aware(expires_at) <= t):
        # (An attempt whose time is up is submitted by the sweeper or the next read, not here.)
        shown = state if state != "open" else "expired"
        raise ServiceError(409, f"the attempt is {shown}; responses can no longer be changed")


def apply_save(s: Session, plan: SavePlan) -> tuple[datetime, int]:
    """Write a planned save in a short write transaction; 409 if the attempt closed or ``seq`` is stale.

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
    values: dict[str, Any] = {"value": plan.value, "saved_at": t, "active_s": Response.active_s + plan.spent}
    if plan.seq is not None:
        stmt = stmt.where(Response.seq <= plan.seq)
        values["seq"] = plan.seq
    if s.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount == 1:
        return t, plan.seq if plan.seq is not None else s.scalar(
            select(Response.seq).where(Response.question_id == plan.question_id))
    stored = s.scalar(select(Response.seq).where(Response.question_id == plan.question_id))
    if stored is not None:
        raise ServiceError(409, f"a newer answer (seq {stored}) is already saved; this one (seq {plan.seq}) is stale")
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


def cached_variant(s: Session, item_version_id: int, item_id: str, version: str, seed: int) -> Any:
    """The variant from the process cache, loading the item version only on a miss."""
    from .banks import cached

    v = cached(item_id, version, seed)
    return v if v is not None else variant_of(s.get(ItemVersion, item_version_id), seed)


# ---------------------------------------------------------------- submitting

def grade_attempt(a: Attempt) -> None:
    total = 0.0
    for q in a.questions:
        v = variant_of(q.item_version, q.seed)
        value = q.response.value if q.response is not None else None
        if value is None:
            q.score, q.result = 0.0, {"feedback": "Not answered.", "answered": False}
        else:
            g = grade(v, value)
            scale = q.points / g.max_score if g.max_score else 0.0
            q.score = round(g.score * scale, 10)
            q.result = {"feedback": g.feedback, "format_error": g.format_error, "mistake": g.mistake,
                        "correct": g.correct, "answered": True}
        total += q.override_score if q.override_score is not None else q.score
    a.score = round(total, 10)


def submit_attempt(s: Session, user: User, attempt_id: int, t: datetime | None = None) -> Attempt:
    """Grade and close an open attempt; a second submit changes nothing."""
    t = t or now()
    a = load_attempt(s, user, attempt_id, lock=True)
    if a.user_id != user.id:
        raise ServiceError(403, "only the student taking the attempt can submit it")
    if a.state in GRADED:
        return a
    if expire_if_due(s, a, t):
        return a
    grade_attempt(a)
    a.state, a.submitted_at = "submitted", t
    s.flush()
    return a


def expire_if_due(s: Session, a: Attempt, t: datetime) -> bool:
    """Submit an open attempt whose time is up, with what was saved; True if it did."""
    if a.state != "open" or a.expires_at is None or aware(a.expires_at) > t:
        return False
    grade_attempt(a)
    a.state, a.submitted_at = "expired", aware(a.expires_at)
    s.flush()
    return True


def fresh_view(db: Any, user: Any, attempt_id: int, t: datetime | None = None) -> dict[str, Any]:
    """The attempt's view; an open attempt whose time is up is submitted first (a write only then)."""
    t = t or now()
    with db.read() as s:
        a = load_attempt(s, user, attempt_id)
        if not (a.state == "open" and a.expires_at is not None and aware(a.expires_at) <= t):
            return attempt_view(s, a, t)
    with db.write() as s:
        expire_if_due(s, load_attempt(s, user, attempt_id, lock=True), t)
    with db.read() as s:
        return attempt_view(s, load_attempt(s, user, attempt_id), t)


def expire_due(s: Session, t: datetime | None = None) -> int:
    """Submit every open attempt whose time is up; return how many."""
    t = t or now()
    ids = list(s.scalars(select(Attempt.id).where(Attempt.state == "open", Attempt.expires_at.is_not(None),
                                                   Attempt.expires_at <= t)))
    n = 0
    for attempt_id in ids:
        a = s.scalar(select(Attempt).where(Attempt.id == attempt_id).with_for_update()
                     .options(selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
                              selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version)))
        if a is not None and expire_if_due(s, a, t):
            n += 1
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
