"""The autosave's fast path: the common save (a student's own open attempt, a valid answer, a new
``seq``) in a few prepared statements on a DBAPI connection, without the ORM.

Statements are built with SQLAlchemy Core and compiled once per dialect (SQLite, PostgreSQL), and
their parameters pass through the column types' own bind and result processors, so the rows are
the ones ``services/saving.py`` writes. Anything else (a bad token, another user's attempt, a
closed attempt, a refused answer, a repeat or stale ``seq``, a first save that raced another)
returns None having written nothing: the caller then runs the full path, which gives the exact
error. Like the full path, the checks read without the write lock. The write is one statement that
writes the answer only while the attempt is open and its seq is new (an upsert), and touches the
attempt: on SQLite two statements in a transaction shared with the worker's other saves waiting at
that moment (services/groupcommit.py: one commit, one fsync, for all of them); on PostgreSQL one
statement (a CTE that locks the attempt's row, upserts, touches) in its own transaction, on the
connection the lookup used: two round trips in all. The answer is checked against the question's
save view (services/savecheck.py); a process without one reads it from the question's rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Dialect, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement

from ..bank.types import ResponseRefused, check_response, item_type
from ..db import Database, Disconnected
from ..models import Attempt, AttemptQuestion, AttemptState, ItemVersion, Response, Role, User, UserSession
from ..models_rendering import Rendering
from .attempts import check_value
from .banks import cached, cached_item, cached_variant, variant_of_item
from .clock import aware, now
from .errors import ServiceError
from .groupcommit import group_commit
from .renderings import RENDER_FORMAT
from .savecheck import keep, remember, save_view, seed_free
from .saving import ACTIVE_CAP_S

A, Q, R = Attempt.__table__.c, AttemptQuestion.__table__.c, Response.__table__.c


def _p(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


# Who, which attempt, which question: one indexed row, or none when the attempt is not the user's.
LOOKUP = (select(User.role, User.session_version, A.state, A.expires_at, A.last_activity_at, A.started_at,
                 Q.id, Q.seed, Q.item_version_id, ItemVersion.item_id, ItemVersion.version)
          .select_from(Attempt)
          .join(User, User.id == A.user_id)
          .join(AttemptQuestion, Q.attempt_id == A.id)
          .join(ItemVersion, ItemVersion.id == Q.item_version_id)
          .where(A.id == _p("p_aid", A.id), A.user_id == _p("p_uid", A.user_id), Q.slot == _p("p_slot", Q.slot)))
# The same for a browser session: only while its server-side row lives (a logout or a password
# change deletes it), read in the same indexed lookup.
PAGE_LOOKUP = LOOKUP.join(UserSession, (UserSession.user_id == A.user_id)
                          & (UserSession.id == _p("p_sid", UserSession.__table__.c.id)))
# What the student was shown of the question (the shared rendering cache): its ids and shapes, for a
# process that has not built the variant (services/savecheck.py).
SHOWN = select(Rendering.view).where(Rendering.item_version_id == _p("p_iv", Rendering.item_version_id),
                                     Rendering.seed == _p("p_seed", Rendering.seed),
                                     Rendering.format == _p("p_format", Rendering.format))
# The attempt is still open: its row, then the answer written only while it is.
OPEN = (A.id == _p("p_aid", A.id), A.state == _p("p_open", A.state),
        or_(A.expires_at.is_(None), A.expires_at > _p("p_t", A.expires_at)))
TOUCH = update(Attempt).where(*OPEN).values(last_activity_at=_p("p_t", A.last_activity_at))
# The answer's values, as one row (INSERT ... SELECT: the row exists only while the attempt is open).
ROW = [_p("p_qid", R.question_id), _p("p_value", R.value), _p("p_seq", R.seq), _p("p_t", R.saved_at),
       _p("p_t", R.first_saved_at), _p("p_spent", R.active_s)]
COLUMNS = ["question_id", "value", "seq", "saved_at", "first_saved_at", "active_s"]


def _upsert(insert_: Any, rows: Any) -> Any:
    """The first save inserts, a later one with a higher seq overwrites; a repeat or a stale seq writes nothing."""
    stmt = insert_(Response).from_select(COLUMNS, rows)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[R.question_id], where=R.seq < new.seq,
        set_={"value": new.value, "seq": new.seq, "saved_at": new.saved_at, "active_s": R.active_s + new.active_s})


# SQLite, in a write transaction (BEGIN IMMEDIATE: nothing interleaves): the answer if the attempt is
# open, then, when a row was written, the attempt's activity time.
SQLITE_SAVE = _upsert(sqlite.insert, select(*ROW).where(exists().where(*OPEN)))


def pg_save() -> Any:
    """PostgreSQL, one statement in its own transaction: lock the attempt's row while it is open (ordered
    with a concurrent submit, which writes that row first), write the answer, touch the attempt only
    when the answer was written; the count of touched attempts (1: saved, 0: nothing written). Built
    when first compiled: on SQLite the PostgreSQL dialect (about 4 MiB of code) is never imported."""
    from sqlalchemy.dialects import postgresql

    ok = select(A.id).where(*OPEN).with_for_update().cte("ok")
    saved = _upsert(postgresql.insert, select(*ROW).select_from(ok)).returning(R.id).cte("saved")
    touched = (update(Attempt).where(A.id == _p("p_aid", A.id), exists(select(saved.c.id)))
               .values(last_activity_at=_p("p_t", A.last_activity_at)).returning(A.id).cte("touched"))
    return select(func.count()).select_from(touched)


class Prepared:
    """A Core statement compiled for one dialect: its SQL text and how to turn values into DBAPI parameters."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = list(compiled.positiontup or []) if compiled.positional else None
        self.process = {name: p for name, b in compiled.binds.items()
                        if (p := b.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        self.result = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                       for c in getattr(stmt, "selected_columns", [])]

    def params(self, values: dict[str, Any]) -> Any:
        for name, p in self.process.items():
            if name in values:
                values[name] = p(values[name])
        return tuple(values[n] for n in self.order) if self.order is not None else values

    def run(self, conn: Any, **values: Any) -> Any:
        cur = conn.cursor()
        cur.execute(self.sql, self.params(values))
        return cur

    def first(self, conn: Any, **values: Any) -> tuple | None:
        cur = self.run(conn, **values)
        row = cur.fetchone()
        cur.close()
        if row is None:
            return None
        return tuple(v if p is None else p(v) for v, p in zip(row, self.result))


class Statements:
    def __init__(self, dialect: Dialect):
        self.lookup, self.page_lookup = Prepared(LOOKUP, dialect), Prepared(PAGE_LOOKUP, dialect)
        self.shown = Prepared(SHOWN, dialect)
        if dialect.name == "postgresql":
            self.save = Prepared(pg_save(), dialect)
        else:
            self.save, self.touch = Prepared(SQLITE_SAVE, dialect), Prepared(TOUCH, dialect)


_PREPARED: dict[tuple, Statements] = {}


def _statements(db: Database) -> Statements:
    """The statements compiled for the database's dialect (once per dialect and parameter style)."""
    dialect = db.engine.dialect
    key = (type(dialect), dialect.paramstyle)
    if key not in _PREPARED:
        _PREPARED[key] = Statements(dialect)
    return _PREPARED[key]


@dataclass(frozen=True)
class Saved:
    saved_at: datetime
    seq: int
    note: str | None


def quick_save(db: Database, user_id: int, session_version: int, attempt_id: int, slot: int, value: Any,
               seq: int, t: datetime | None = None, session_id: str | None = None) -> Saved | None:
    """Save a student's answer with ``seq`` if every check passes at once; None (nothing written) otherwise.

    ``session_version`` is the one the bearer token was issued with: a token ended by a logout or a
    password change no longer matches the user's row, read here, in every save. ``session_id``: a
    browser session's server-side row, which must still exist (read in the same lookup).
    """
    if value is None:
        return None
    t = t or now()
    st = _statements(db)
    if db.is_sqlite:  # the read alone (WAL: it waits for no writer); the write joins a group commit
        with db.raw_read_kept() as conn:
            row = _lookup(st, conn, attempt_id, user_id, slot, session_id)
        checked = _check(db, row, session_version, value, t, partial(_shown_kept, db, st))
        if checked is None:
            return None
        qid, spent, note = checked
        values = dict(p_aid=attempt_id, p_open=AttemptState.OPEN, p_qid=qid, p_seq=seq, p_value=value, p_t=t,
                      p_spent=spent)
        try:
            if not group_commit(db).run(partial(_write_sqlite, st, values)):
                return None
        except _Refused:
            return None
        return Saved(t, seq, note)
    # PostgreSQL: one connection, two statements, each its own transaction. The connection is not
    # pinged (a round trip on every checkout): one found dropped is discarded and the save runs once
    # more on a pinged one (safe: a write that did commit before the drop makes the second a repeat,
    # which writes nothing and goes to the full path, where an equal seq and value is answered as saved).
    try:
        return _save_pg(db, st, user_id, session_version, attempt_id, slot, value, seq, t, session_id, pinged=False)
    except Disconnected:
        return _save_pg(db, st, user_id, session_version, attempt_id, slot, value, seq, t, session_id, pinged=True)


def _save_pg(db: Database, st: Statements, user_id: int, session_version: int, attempt_id: int, slot: int,
             value: Any, seq: int, t: datetime, session_id: str | None, pinged: bool) -> Saved | None:
    with db.raw_autocommit(pinged=pinged) as conn:
        row = _lookup(st, conn, attempt_id, user_id, slot, session_id)
        checked = _check(db, row, session_version, value, t, partial(_shown, st, conn))
        if checked is None:
            return None
        qid, spent, note = checked
        saved = st.save.first(conn, p_aid=attempt_id, p_open=AttemptState.OPEN, p_qid=qid, p_seq=seq, p_value=value,
                              p_t=t, p_spent=spent)
    return Saved(t, seq, note) if saved is not None and saved[0] == 1 else None


def _lookup(st: Statements, conn: Any, attempt_id: int, user_id: int, slot: int, session_id: str | None) -> tuple | None:
    if session_id is None:
        return st.lookup.first(conn, p_aid=attempt_id, p_uid=user_id, p_slot=slot)
    return st.page_lookup.first(conn, p_aid=attempt_id, p_uid=user_id, p_slot=slot, p_sid=session_id)


def _shown(st: Statements, conn: Any, iv_id: int, seed: int) -> dict[str, Any] | None:
    """The question's stored rendering (what the student was shown), or None when it has none."""
    row = st.shown.first(conn, p_iv=iv_id, p_seed=seed, p_format=RENDER_FORMAT)
    return row[0] if row is not None else None


def _shown_kept(db: Database, st: Statements, iv_id: int, seed: int) -> dict[str, Any] | None:
    with db.raw_read_kept() as conn:
        return _shown(st, conn, iv_id, seed)


def _view_shown(shown: Callable[[int, int], dict[str, Any] | None], iv_id: int, item_id: str, item_version: str,
                seed: int) -> Any:
    """The save view from the question's rendering (a read, not a build), kept; None without one."""
    public = shown(iv_id, seed)
    if not isinstance(public, dict):
        return None
    try:
        view = item_type(public["type"]).view_from_public(public)
    except (KeyError, TypeError, ValueError):  # not a rendering this version reads: the variant is built
        return None
    item = cached_item(item_id, item_version)
    return keep(item_id, item_version, seed, view, static=item is not None and seed_free(item))


def _check(db: Database, row: tuple | None, session_version: int, value: Any, t: datetime,
           shown: Callable[[int, int], dict[str, Any] | None]) -> tuple | None:
    """(question id, seconds spent, format note) when the looked-up row allows the save, else None.
    ``shown(item version id, seed)``: the question's rendering, read when this process has no save view."""
    if row is None:
        return None
    role, version, state, expires_at, last_activity_at, started_at, qid, seed, iv_id, item_id, item_version = row
    if role != Role.STUDENT or version != session_version or state != AttemptState.OPEN or (
            expires_at is not None and aware(expires_at) <= t):
        return None
    try:
        check_value(value)
        view = save_view(item_id, item_version, seed)  # what the answer is checked against (services/savecheck.py)
        if view is None:
            view = _view_shown(shown, iv_id, item_id, item_version, seed)
        if view is None:
            variant = cached(item_id, item_version, seed)
            if variant is None:
                item = cached_item(item_id, item_version)
                if item is not None:  # the item is known: only its variant for this seed is built
                    variant = variant_of_item(item_id, item, seed)
                else:
                    with db.read() as s:
                        variant = cached_variant(s, iv_id, item_id, item_version, seed)
            view = remember(item_id, variant)
        note = check_response(view, value)
    except (ServiceError, ResponseRefused):
        return None
    since = aware(last_activity_at) or aware(started_at)
    return qid, min(max((t - since).total_seconds(), 0.0), ACTIVE_CAP_S), note


def _write_sqlite(st: Statements, values: dict[str, Any], conn: Any) -> bool:
    """In the group's transaction: the answer if the attempt is open and the seq new, then the attempt's
    activity time; False having written nothing otherwise."""
    if st.save.run(conn, **values).rowcount != 1:
        return False
    if st.touch.run(conn, p_aid=values["p_aid"], p_open=values["p_open"], p_t=values["p_t"]).rowcount != 1:
        raise _Refused  # (the attempt was open a statement ago, in the same transaction: never expected)
    return True


class _Refused(Exception):
    """Undo this save's writes (its savepoint): the save is not the common case after all."""
