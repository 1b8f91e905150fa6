"""Rendering ahead of the start: the questions each student's next attempt will draw are rendered
into the shared cache (services/renderings.py) before the student presses Start, and the draw is
kept as the attempt's plan (services/plans.py), so that a start is a read and a few inserts (issue 14).

Two ways in: ``quizengine warm QUIZ`` (an instructor or the deploy runs it before a quiz opens,
with progress shown), and, under ``quizengine serve``, a background warmer in each worker that
renders a student's upcoming attempts after they log in or submit (``schedule``).
Rendering runs outside any transaction; each batch is stored in its own short write, so a crash
mid-way loses nothing already stored, and a rerun renders only what is missing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from ..bank.loader import BankItem
from ..bank.variant import make_variant
from ..db import Database
from ..models import Attempt, AttemptQuestion, AttemptState, ItemVersion, Quiz, Role, User
from . import plans, renderings
from .banks import bank_item
from .clock import now
from .draw import avoids_repeats, draw_items, question_seed, seen_items
from .errors import ServiceError
from .plans import Planner
from .quizzes import get_quiz
from .renderings import Key
from .terms import Terms, terms_by_user, terms_for

CHUNK = 60  # questions rendered and stored per batch (about 3 students' attempts)
IN_BATCH = 500  # students per IN (...) of a plan's reads
# The background warmer: a login wakes it; it waits GATHER_S for the class's other logins, then plans
# up to BATCH students in one read (a few queries for all, then a draw each), not a read per student.
# A plan holds the worker's event loop (about 2 ms a student): batches of 20 keep that to tens of ms.
BATCH = 20
GATHER_S = 0.5


@dataclass
class WarmReport:
    students: int
    questions: int  # the upcoming attempts' questions
    rendered: int  # of them, those the cache lacked (rendered now)
    planned: int = 0  # attempts whose plan (services/plans.py) was missing or stale, kept now


def upcoming(s: Session, q: Quiz, secret: str, user_id: int, ahead: int = 1, planner: Planner | None = None) -> list[Key]:
    """The (item version, seed) of each question of the student's next ``ahead`` attempts: the one in
    progress, if any, then those they would start next (as far as their attempts allow); [] when none.

    An attempt after the next is drawn as if the ones before it were taken as drawn now (their items
    then count as met: ``repeats: avoid``), which is what the start will draw."""
    attempts = list(s.scalars(select(Attempt).where(Attempt.user_id == user_id, Attempt.quiz_id == q.id)
                              .order_by(Attempt.number)))
    going = [a for a in attempts if a.state == AttemptState.OPEN]
    keys = [(aq.item_version_id, aq.seed) for aq in going[-1].questions] if going else []
    number = len(attempts) + 1
    last = number + ahead - (1 if going else 0)  # the attempts to plan: number .. last - 1
    terms = terms_for(s, q, user_id) if last > number else None
    if terms is not None and terms.max_attempts is not None:
        last = min(last, terms.max_attempts + 1)
    seen = seen_items(s, q.id, user_id, number) if last > number else {}
    for n in range(number, last):
        met = seen if avoids_repeats(q, n) else {}
        try:
            drawn = draw_items(s, q, secret, user_id, n, seen=met)
        except ServiceError:  # a pool too small: the start will say so
            break
        keys += _keys(secret, user_id, q.id, n, met, drawn, planner)
        seen.update({c.item_id: n for c, _ in drawn})
    return keys


def _keys(secret: str, user_id: int, quiz_id: str, number: int, seen: dict[str, int], drawn: list[tuple[Any, Any]],
          planner: Planner | None) -> list[Key]:
    """The (item version, seed) of each drawn question; the draw kept as a plan when ``planner`` is given."""
    seeded = [(c.item_version_id, question_seed(secret, user_id, quiz_id, number, c.item_id), points)
              for c, points in drawn]
    if planner is not None:
        planner.add(user_id, quiz_id, number, seen, seeded)
    return [(iv, seed) for iv, seed, _ in seeded]


def upcoming_of(s: Session, q: Quiz, secret: str, terms: dict[int, Terms], planner: Planner | None = None) -> list[Key]:
    """``upcoming`` for many students at once, each with their terms of the quiz: their attempts in
    two reads for all, then a draw for each one who may start an attempt (unless ``planner`` finds
    the attempt planned ahead on the basis it would be drawn on: its keys are the plan's)."""
    ids, keys = list(terms), []
    for k in range(0, len(ids), IN_BATCH):
        part = ids[k:k + IN_BATCH]
        made: dict[int, int] = {}  # user -> attempts made
        going: dict[int, int] = {}  # user -> the attempt in progress
        for aid, uid, state in s.execute(select(Attempt.id, Attempt.user_id, Attempt.state).where(
                Attempt.quiz_id == q.id, Attempt.user_id.in_(part)).order_by(Attempt.user_id, Attempt.number)):
            made[uid] = made.get(uid, 0) + 1
            if state == AttemptState.OPEN:
                going[uid] = aid
        questions: dict[int, list[Key]] = {}
        if going:
            for aid, iv, seed in s.execute(select(AttemptQuestion.attempt_id, AttemptQuestion.item_version_id,
                                                  AttemptQuestion.seed)
                                           .where(AttemptQuestion.attempt_id.in_(list(going.values())))
                                           .order_by(AttemptQuestion.attempt_id, AttemptQuestion.slot)):
                questions.setdefault(aid, []).append((iv, seed))
        ready = planner.ready(s, q.id, {u: made.get(u, 0) + 1 for u in part if u not in going}) if planner else {}
        for uid in part:
            if uid in going:
                keys += questions.get(going[uid], [])
                continue
            limit, number = terms[uid].max_attempts, made.get(uid, 0) + 1
            if limit is not None and number > limit:
                continue
            if uid in ready:  # planned on this basis (no item met before): drawn and rendered already
                keys += ready[uid]
                continue
            if number > 1 and avoids_repeats(q, number):  # drawn around the items met before, as the start draws it
                keys += upcoming(s, q, secret, uid, planner=planner)
                continue
            try:
                drawn = draw_items(s, q, secret, uid, number, seen={})
            except ServiceError:  # a pool too small: the start will say so
                continue
            keys += _keys(secret, uid, q.id, number, {}, drawn, planner)
    return keys


def render_keys(items: dict[int, BankItem], keys: Iterable[Key]) -> tuple[
        dict[Key, dict[str, Any]], dict[Key, str | None], dict[Key, list[dict[str, Any]]], dict[Key, dict[str, Any]]]:
    """Render each key's public view, its explanation with the worked solution, its figures shown
    after the submit (the results then draw nothing) and its grading key (the submit then builds
    nothing); no database: safe in a worker's compute thread."""
    views, solutions, after, graded = {}, {}, {}, {}
    for iv, seed in keys:
        v = make_variant(items[iv], seed)
        views[(iv, seed)], solutions[(iv, seed)] = renderings.render(v), v.explanation_html
        figs = renderings.after_figures(v)
        if figs is not None:
            after[(iv, seed)] = figs
        key = v.kind.key_of(v)
        if key is not None:
            graded[(iv, seed)] = key
    return views, solutions, after, graded


def _missing(db: Database, plan: Callable[[Session], list[Key]]) -> tuple[int, list[Key], dict[int, BankItem]]:
    """The planned keys, those the cache lacks, and the items to render them from (one read)."""
    with db.read() as s:
        keys = plan(s)
        have = renderings.stored(s, keys)
        todo = [k for k in dict.fromkeys(keys) if k not in have]
        ids = {iv for iv, _ in todo}
        items = {iv.id: bank_item(iv) for iv in s.scalars(
            select(ItemVersion).where(ItemVersion.id.in_(ids)).options(undefer(ItemVersion.data)))} if ids else {}
    return len(keys), todo, items


def fill(db: Database, todo: list[Key], items: dict[int, BankItem], render: Callable = render_keys,
         progress: Callable[[int, int], None] | None = None) -> int:
    """Render the keys in batches, outside any transaction, each batch stored in its own short write."""
    for k in range(0, len(todo), CHUNK):
        renderings.store(db, *render(items, todo[k:k + CHUNK]))
        if progress is not None:
            progress(min(k + CHUNK, len(todo)), len(todo))
    return len(todo)


def warm_quiz(db: Database, secret: str, quiz_id: str, usernames: list[str] | None = None,
              progress: Callable[[int, int], None] | None = None, ahead: int = 1) -> WarmReport:
    """Render the next ``ahead`` attempts of every student on the roster (or of ``usernames``) at a quiz."""
    people: list[int] = []
    planners: list[Planner] = []

    def plan(s: Session) -> list[Key]:
        q = get_quiz(s, quiz_id)
        stmt = select(User.id).where(User.role == Role.STUDENT)
        if usernames is not None:
            stmt = stmt.where(User.username.in_(usernames))
        people.extend(s.scalars(stmt.order_by(User.username)))
        planners.append(planner := Planner(s, secret))
        return [key for uid in people for key in upcoming(s, q, secret, uid, ahead, planner)]

    total, todo, items = _missing(db, plan)
    rendered = fill(db, todo, items, progress=progress)
    return WarmReport(len(people), total, rendered, plans.settle(db, planners[0].specs))


def warm_students(db: Database, secret: str, user_ids: list[int], t: datetime | None = None,
                  render: Callable = render_keys) -> int:
    """Render the upcoming attempts of these students at every quiz open to them now, planned in one
    read for all of them (a few queries and a draw each); the number of questions rendered. When
    everything is rendered already (``quizengine warm`` ran), that read is all it costs."""
    t = t or now()
    planners: list[Planner] = []

    def plan(s: Session) -> list[Key]:
        students = [u for k in range(0, len(user_ids), IN_BATCH) for u in s.scalars(
            select(User.id).where(User.id.in_(user_ids[k:k + IN_BATCH]), User.role == Role.STUDENT))]
        if not students:
            return []
        planners.append(planner := Planner(s, secret))
        keys: list[Key] = []
        for q in s.scalars(select(Quiz).order_by(Quiz.id)):
            terms = terms_by_user(s, q, students)
            keys += upcoming_of(s, q, secret, {u: x for u, x in terms.items() if x.window(t) == "open"}, planner)
        return keys

    _, todo, items = _missing(db, plan)
    rendered = fill(db, todo, items, render=render)
    if planners:
        plans.settle(db, planners[0].specs)
    return rendered


def warm_student(db: Database, secret: str, user_id: int, t: datetime | None = None,
                 render: Callable = render_keys) -> int:
    """Render a student's upcoming attempt at every quiz open to them now; the number rendered."""
    return warm_students(db, secret, [user_id], t, render)


# ---------------------------------------------------------------- the background warmer of a worker

_QUEUE: deque[tuple[int, bool, float]] = deque()  # (user id, after a submit, when queued)
_WAKE = threading.Event()
_RUNNING = threading.Event()
_LAST_SUBMIT = [float("-inf")]  # time.monotonic() of the latest submit this worker queued
QUIET_S = 3.0  # a next attempt queued by a submit waits until this worker's submits pause this long,
PATIENCE_S = 60.0  # or this long at most: rendering it then would compete with a class's submits
_LAST_LOGIN = [float("-inf")]  # time.monotonic() of the latest login this worker queued
LOGIN_QUIET_S = 1.0  # one queued by a login waits until this worker's logins pause this long,
LOGIN_PATIENCE_S = 60.0  # or this long at most: planning it then would compete with a class's logins


def schedule(user_id: int, after_submit: bool = False) -> None:
    """Ask this process's warmer (if one runs: ``quizengine serve``) to render the student's next attempts.

    After a login once this worker's logins pause (a class logging in together is served first; its
    starts follow); ``after_submit``, once this worker's submits pause (a class submitting together is
    served first; reading the results comes before a next attempt)."""
    if not _RUNNING.is_set():
        return
    t = time.monotonic()
    (_LAST_SUBMIT if after_submit else _LAST_LOGIN)[0] = t
    queued = next((e for e in _QUEUE if e[0] == user_id), None)
    if queued is not None and (after_submit or not queued[1]):
        return
    if queued is not None:
        _QUEUE.remove(queued)  # queued after a submit, now a login: at once
    _QUEUE.append((user_id, after_submit, t))
    _WAKE.set()


def next_due(t: float) -> int | None:
    """Take the next student to warm at ``t`` (time.monotonic): the first queued by a login once logins
    paused LOGIN_QUIET_S or it waited LOGIN_PATIENCE_S, else the first queued by a submit once submits
    paused QUIET_S or it waited PATIENCE_S; None: wait."""
    entry = next((e for e in _QUEUE if not e[1]), None)
    if entry is not None and t - _LAST_LOGIN[0] < LOGIN_QUIET_S and t - entry[2] < LOGIN_PATIENCE_S:
        entry = None  # a class logging in: each plan would hold the event loop its logins need
    if entry is None:
        entry = next((e for e in _QUEUE if e[1]), None)
        if entry is not None and t - _LAST_SUBMIT[0] < QUIET_S and t - entry[2] < PATIENCE_S:
            entry = None
    if entry is None:
        return None
    _QUEUE.remove(entry)
    return entry[0]


def run_warmer(db: Database, secret: str, render: Callable, stop: threading.Event,
               on_error: Callable[[BaseException], None], gather: float = GATHER_S) -> None:
    """Warm the students ``schedule`` queues until ``stop`` is set: after a wake, it waits ``gather``
    seconds for more (a class logs in together), then plans up to BATCH of them in one read."""
    _RUNNING.set()
    try:
        while not stop.is_set():
            _WAKE.wait(1.0)
            _WAKE.clear()
            if gather and any(not e[1] for e in _QUEUE):
                stop.wait(gather)  # a class logs in together: plan the logins of the next moment in one batch
            while not stop.is_set():
                batch: list[int] = []
                while len(batch) < BATCH and (user_id := next_due(time.monotonic())) is not None:
                    batch.append(user_id)
                if not batch:
                    break
                try:
                    warm_students(db, secret, batch, render=render)
                except Exception as e:  # noqa: BLE001 - a failed warm costs only speed: the start renders
                    on_error(e)
    finally:
        _RUNNING.clear()
