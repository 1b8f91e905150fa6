"""The autosave's fast path: the common save (a student's own open attempt, a valid answer, a new
``seq``) in a few prepared statements on a DBAPI connection, without the ORM.

Statements are built with SQLAlchemy Core and compiled once per dialect (SQLite, PostgreSQL), and
their parameters pass through the column types' own bind and result processors, so the rows are
the ones ``services/saving.py`` writes. Anything else (a bad token, another user's attempt, a
closed attempt, a refused answer, a repeat or stale ``seq``, a first save that raced another)
returns None having written nothing: the caller then runs the full path, which gives the exact
error. Like the full path, the checks read without the write lock and the write is one short
transaction of two or three statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, bindparam, insert, or_, select, update
from sqlalchemy.sql import ClauseElement

from ..bank.types import ResponseRefused, check_response
from ..db import Database
from ..models import Attempt, AttemptQuestion, AttemptState, ItemVersion, Response, Role, User, UserSession
from .attempts import check_value
from .banks import cached, cached_variant
from .clock import aware, now
from .errors import ServiceError
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
# The attempt is still open (ordered with a concurrent submit: the attempt's row is written first).
TOUCH = (update(Attempt)
         .where(A.id == _p("p_aid", A.id), A.state == _p("p_open", A.state),
                or_(A.expires_at.is_(None), A.expires_at > _p("p_t", A.expires_at)))
         .values(last_activity_at=_p("p_t", A.last_activity_at)))
SAVE = (update(Response)
        .where(R.question_id == _p("p_qid", R.question_id), R.seq < _p("p_seq", R.seq))
        .values(value=_p("p_value", R.value), saved_at=_p("p_t", R.saved_at),
                active_s=R.active_s + _p("p_spent", R.active_s), seq=_p("p_seq", R.seq)))
STORED = select(R.seq).where(R.question_id == _p("p_qid", R.question_id))
FIRST = insert(Response).values(question_id=_p("p_qid", R.question_id), value=_p("p_value", R.value),
                                seq=_p("p_seq", R.seq), saved_at=_p("p_t", R.saved_at),
                                first_saved_at=_p("p_t", R.first_saved_at), active_s=_p("p_spent", R.active_s))


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
        self.lookup, self.touch, self.save = Prepared(LOOKUP, dialect), Prepared(TOUCH, dialect), Prepared(SAVE, dialect)
        self.stored, self.first = Prepared(STORED, dialect), Prepared(FIRST, dialect)
        self.page_lookup = Prepared(PAGE_LOOKUP, dialect)


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
    with db.raw_read() as conn:
        if session_id is None:
            row = st.lookup.first(conn, p_aid=attempt_id, p_uid=user_id, p_slot=slot)
        else:
            row = st.page_lookup.first(conn, p_aid=attempt_id, p_uid=user_id, p_slot=slot, p_sid=session_id)
    if row is None:
        return None
    role, version, state, expires_at, last_activity_at, started_at, qid, seed, iv_id, item_id, item_version = row
    if role != Role.STUDENT or version != session_version or state != AttemptState.OPEN or (
            expires_at is not None and aware(expires_at) <= t):
        return None
    try:
        check_value(value)
        variant = cached(item_id, item_version, seed)
        if variant is None:
            with db.read() as s:
                variant = cached_variant(s, iv_id, item_id, item_version, seed)
        note = check_response(variant, value)
    except (ServiceError, ResponseRefused):
        return None
    since = aware(last_activity_at) or aware(started_at)
    spent = min(max((t - since).total_seconds(), 0.0), ACTIVE_CAP_S)
    integrity = db.engine.dialect.loaded_dbapi.IntegrityError
    try:
        with db.raw_write() as conn:
            if st.touch.run(conn, p_aid=attempt_id, p_open=AttemptState.OPEN, p_t=t).rowcount != 1:
                raise _Refused
            if st.save.run(conn, p_qid=qid, p_seq=seq, p_value=value, p_t=t, p_spent=spent).rowcount != 1:
                if st.stored.first(conn, p_qid=qid) is not None:
                    raise _Refused  # a repeat or a stale seq: the full path answers it
                st.first.run(conn, p_qid=qid, p_seq=seq, p_value=value, p_t=t, p_spent=spent)
    except (_Refused, integrity):
        return None
    return Saved(t, seq, note)


class _Refused(Exception):
    """Roll the write back: the save is not the common case after all."""
