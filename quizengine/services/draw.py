"""Starting an attempt: the start rules, the items each slot draws, and each question's seed; and
the most a quiz's draw can be worth (``quiz_points``).

Draws are unpredictable without the server secret: an HMAC of (student, quiz, attempt, slot, item)
orders each pool, and seeds each question's variant.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, delete, func, insert, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..bank.families import distinct
from ..models import Attempt, AttemptQuestion, AttemptState, CurrentItem, ItemVersion, Quiz, SlotDefinition, User
from ..models_rendering import StartPlan
from .banks import bank_item, cached_item
from .clock import now
from .closing import expire_if_due
from .errors import ServiceError
from .principal import Principal
from .quizzes import get_quiz, start_refusal, user_attempts
from .terms import terms_for

log = logging.getLogger(__name__)


def _hmac_int(secret: str, *parts: object) -> int:
    """The first 8 bytes of HMAC-SHA256(secret, parts joined by US), as an integer."""
    inner, outer = _pads(secret)  # the key's pads hashed once, not at every one of a draw's few hundred calls
    h = inner.copy()
    h.update("\x1f".join(map(str, parts)).encode())
    o = outer.copy()
    o.update(h.digest())
    return int.from_bytes(o.digest()[:8], "big")


def _hmac_ints(secret: str, prefix: tuple, last: list[str]) -> list[int]:
    """``_hmac_int(secret, *prefix, x)`` for each x of ``last``, the common prefix hashed once."""
    inner, outer = _pads(secret)
    head = inner.copy()
    head.update(("\x1f".join(map(str, prefix)) + "\x1f").encode())
    out = []
    for x in last:
        h = head.copy()
        h.update(str(x).encode())
        o = outer.copy()
        o.update(h.digest())
        out.append(int.from_bytes(o.digest()[:8], "big"))
    return out


@functools.lru_cache(maxsize=8)
def _pads(secret: str) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC key's inner and outer pads (RFC 2104, as ``hmac`` computes them)."""
    key = secret.encode()
    if len(key) > 64:  # SHA-256's block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))


@dataclass(frozen=True)
class PoolItem:
    item_id: str
    topic: str
    tags: frozenset[str]
    item_version_id: int
    version: str
    family: str | None = None  # at most one item of a family per attempt


class Pool(list):
    """The current items (a list of PoolItem), with what draws computed from them (each slot's candidates)."""

    def __init__(self, items: Any):
        super().__init__(items)
        self.by_id = {c.item_id: c for c in self}
        self.slots: dict[str, list[PoolItem]] = {}

    def candidates(self, slot: SlotDefinition) -> list[PoolItem]:
        """``slot_pool`` of a slot, computed once per slot definition."""
        key = json.dumps(slot, sort_keys=True, default=str)
        found = self.slots.get(key)
        if found is None:
            found = self.slots[key] = slot_pool(self.by_id, slot)
        return found


_POOLS: dict[tuple, Pool] = {}


# What identifies the banks' items now: their count, the sum of their version ids, the last load.
STAMP = select(func.count(CurrentItem.item_id), func.coalesce(func.sum(CurrentItem.item_version_id), literal_column("0")),
               select(func.max(Quiz.updated_at)).scalar_subquery())


def pool_key(url: str, stamp: Any) -> tuple:
    return (url, int(stamp[0]), int(stamp[1]), stamp[2])


def cached_pool(key: tuple) -> Pool | None:
    """The items of ``current_items`` if this process holds them for this key (``pool_key``)."""
    return _POOLS.get(key)


def current_items(s: Session) -> Pool:
    """The items the banks hold now; cached per process until a bank load changes them.

    The stamp is read at every call, so every worker of every host sees a load at once: the items'
    count and version ids, and the time of the last load (every load, the editor's saves included,
    stamps each quiz; a revert that brings back older versions changes that time even when it
    leaves the sum of the ids as it was).
    """
    key = pool_key(str(s.get_bind().url), s.execute(STAMP).one())
    pool = _POOLS.get(key)
    if pool is None:
        rows = s.execute(select(CurrentItem.item_id, CurrentItem.topic, CurrentItem.tags, CurrentItem.item_version_id,
                                ItemVersion.version, ItemVersion.data["family"].as_string().label("family"))
                         .join(ItemVersion, CurrentItem.item_version_id == ItemVersion.id).order_by(CurrentItem.item_id))
        pool = Pool(PoolItem(r.item_id, r.topic, frozenset(r.tags or []), r.item_version_id, r.version,
                             r.family or None) for r in rows)
        _POOLS.clear()
        _POOLS[key] = pool
    return pool


def avoids_repeats(q: Any, number: int) -> bool:
    """Whether attempt ``number``'s draw puts the items of earlier attempts last (``repeats: avoid``)."""
    return number > 1 and q.definition.get("repeats", "avoid") == "avoid"


def draw_items(s: Session | None, q: Any, secret: str, user_id: int, number: int,
               items: Pool | None = None, seen: dict[str, int] | None = None
               ) -> list[tuple[PoolItem, float | None]]:
    """Draw each slot's items for one attempt; no item twice; unpredictable without the secret.

    With ``repeats: avoid`` (the default) items the student met in an earlier attempt come last,
    the least recently met first: they are drawn again only when a pool has no unseen items left.
    ``items`` and ``seen`` (``current_items``, ``seen_items``), when given, are not read from ``s``.
    """
    current = items if items is not None else current_items(s)
    if seen is None:
        seen = seen_items(s, q.id, user_id, number) if avoids_repeats(q, number) else {}
    chosen: list[tuple[PoolItem, float | None]] = []
    used: set[str] = set()
    families: set[str] = set()
    for k, slot in enumerate(q.definition["slots"]):
        pool = [c for c in current.candidates(slot) if c.item_id not in used]
        ranks = _hmac_ints(secret, ("draw", user_id, q.id, number, k), [c.item_id for c in pool])
        order = sorted(range(len(pool)), key=lambda i: (seen.get(pool[i].item_id, 0), ranks[i]))
        pool = [pool[i] for i in order]
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


def question_seed(secret: str, user_id: int, quiz_id: str, number: int, item_id: str) -> int:
    """The seed of an item's variant in a student's attempt (unpredictable without the secret)."""
    return _hmac_int(secret, "seed", user_id, quiz_id, number, item_id) % 2**31


def slot_pool(current: dict[str, PoolItem], slot: SlotDefinition) -> list[PoolItem]:
    """The items a slot of a quiz definition draws from."""
    if slot.get("items"):
        return [current[i] for i in slot["items"] if i in current]
    tags, leave_out = set(slot.get("tags") or []), set(slot.get("exclude_tags") or [])
    return [c for c in current.values() if c.topic == slot["topic"] and tags <= c.tags and not leave_out & c.tags]


def quiz_points(s: Session, q: Quiz) -> float:
    """The most a quiz is worth (an LTI line item's scoreMaximum): each slot's points, or the most its
    pool's items are worth (the LMS scales each score by its own scoreMaximum, so a percentage is kept
    whatever the draw)."""
    current = {c.item_id: c for c in current_items(s)}
    total = 0.0
    for slot in q.definition.get("slots", []):
        points = slot.get("points")
        if points is None:
            pool = slot_pool(current, slot)
            points = max((float((cached_item(c.item_id, c.version) or bank_item(
                s.get(ItemVersion, c.item_version_id))).model.points) for c in pool), default=1.0)
        total += float(points) * slot.get("count", 1)
    return total or 1.0


# Item id -> the latest of a student's attempts before a number that drew it.
SEEN = (select(ItemVersion.item_id, func.max(Attempt.number))
        .join(AttemptQuestion, AttemptQuestion.item_version_id == ItemVersion.id)
        .join(Attempt, Attempt.id == AttemptQuestion.attempt_id)
        .where(Attempt.user_id == bindparam("p_uid", type_=Integer), Attempt.quiz_id == bindparam("p_quiz", type_=String),
               Attempt.number < bindparam("p_number", type_=Integer))
        .group_by(ItemVersion.item_id))


def seen_items(s: Session, quiz_id: str, user_id: int, number: int) -> dict[str, int]:
    """Item id -> the latest of the student's attempts before ``number`` that drew it."""
    rows = s.execute(SEEN, {"p_uid": user_id, "p_quiz": quiz_id, "p_number": number})
    return {item_id: int(n) for item_id, n in rows}


def item_order(s: Session, q: Quiz) -> dict[str, tuple[int, int]]:
    """Item id -> its place in the quiz: (the first slot whose pool holds it now, its place in that slot's
    list of items, 0 for a topic's pool)."""
    current = {c.item_id: c for c in current_items(s)}
    order: dict[str, tuple[int, int]] = {}
    for k, slot in enumerate(q.definition.get("slots", [])):
        for n, c in enumerate(slot_pool(current, slot)):
            order.setdefault(c.item_id, (k, n if slot.get("items") else 0))
    return order


def repeat_free_attempts(s: Session, q: Quiz) -> int:
    """How many attempts the quiz's pools fill without an item met before (an upper bound)."""
    current = {c.item_id: c for c in current_items(s)}
    slots = q.definition["slots"]
    pools = [slot_pool(current, slot) for slot in slots]
    union = {c.item_id for pool in pools for c in pool}
    bounds = [len(pool) // slot.get("count", 1) for pool, slot in zip(pools, slots)]
    return min(bounds + [len(union) // max(1, sum(slot.get("count", 1) for slot in slots))])


def start_attempt(s: Session, user: Principal, quiz_id: str, secret: str, t: datetime | None = None) -> Attempt:
    """Start a new attempt, or refuse (403) when the quiz is closed or attempts are used up."""
    t = t or now()
    q = get_quiz(s, quiz_id)
    # Serialise starts per user (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).
    s.execute(select(User.id).where(User.id == user.id).with_for_update())
    terms = terms_for(s, q, user.id)  # the class's window, time limit and attempts, or the student's accommodation
    window = terms.window(t)
    attempts = user_attempts(s, user, quiz_id) if window == "open" else []
    for a in attempts:
        expire_if_due(s, a, t)  # an attempt whose time is up no longer counts as in progress
    refusal = start_refusal(terms, window, attempts)
    if refusal is not None:
        raise refusal
    number = len(attempts) + 1
    attempt = Attempt(user_id=user.id, quiz_id=q.id, number=number, state=AttemptState.OPEN, started_at=t,
                      expires_at=terms.deadline(t), max_score=0.0)
    s.add(attempt)
    try:
        s.flush()
    except IntegrityError:
        raise ServiceError(409, "another attempt was started at the same moment; reload the page") from None
    total, rows = 0.0, []
    for slot, (cur, points) in enumerate(draw_items(s, q, secret, user.id, number)):
        if points is None:
            item = cached_item(cur.item_id, cur.version) or bank_item(s.get(ItemVersion, cur.item_version_id))
            points = item.model.points
        rows.append({"attempt_id": attempt.id, "slot": slot, "item_version_id": cur.item_version_id,
                     "seed": question_seed(secret, user.id, q.id, number, cur.item_id), "points": float(points)})
        total += float(points)
    s.execute(insert(AttemptQuestion), rows)  # one executemany, not the unit of work's 20 objects
    s.execute(delete(StartPlan).where(StartPlan.user_id == user.id, StartPlan.quiz_id == q.id,
                                      StartPlan.number == number))  # planned ahead (services/plans.py): spent
    attempt.max_score = total
    s.flush()
    return attempt
