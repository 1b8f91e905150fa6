"""The start's fast path (issue 14, part 3): the common start (a student with no attempt in progress
at the quiz, every question of the draw rendered ahead in the shared cache) as one read, one short
write of the attempt and its questions (one INSERT and one executemany, Core statements), and the
attempt's view built from the cached views, without reading the attempt back. When the warmers
planned the attempt ahead on the same basis (services/plans.py: the same pool, items met, secret and
format), the draw and the views are not needed either: the plan's rows are written and its questions'
JSON goes into the answer as stored (``quick_start_json``). On SQLite the write
joins the worker's group commit (services/groupcommit.py): the starts and saves that wait for the
write lock at the same moment share one transaction and one commit (one fsync), each in its own
savepoint, so a class starting together does not queue for an fsync each. On PostgreSQL the lane
reads and writes on one connection in autocommit, the attempt and its questions in one statement
(services/quickstart_pg.py): there a start's cost was its statements, not a commit's fsync.

The rules are the full path's: ``start_refusal`` on the student's terms (``terms_for``, read inside
the write transaction, as ``draw.start_attempt`` does), the same draw and seeds (``draw_items``,
``question_seed``), and the view ``views.attempt_view`` gives a fresh open attempt. Anything else
(no such quiz, a refusal, an attempt in progress or due, a question not rendered yet, a start that
raced another) returns None having written nothing: the caller then runs the full path, which gives
the exact answer (and renders what the cache lacks).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Dialect, and_, bindparam, delete, insert, or_, select

from ..db import Database
from ..models import Attempt, AttemptQuestion, AttemptState, Quiz, Role, User
from ..models_accommodation import Accommodation, AccommodationMember
from ..models_rendering import Rendering, StartPlan
from .clock import iso, now
from .draw import SEEN, STAMP, avoids_repeats, cached_pool, current_items, draw_items, pool_key, question_seed
from .errors import ServiceError
from .groupcommit import group_commit
from . import plans, quicksave, quickstart_pg
from .quizzes import start_refusal
from .renderings import RENDER_FORMAT
from .terms import Terms, terms_of

A, Q, AQ = Attempt.__table__.c, Quiz.__table__.c, AttemptQuestion.__table__.c
AC, M = Accommodation.__table__.c, AccommodationMember.__table__.c


def _p(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


USER = select(User.role, User.session_version).where(User.id == _p("p_uid", User.__table__.c.id))
QUIZ_COLUMNS = (Q.id, Q.title, Q.definition, Q.opens_at, Q.closes_at, Q.time_limit_s, Q.max_attempts)
QUIZ = select(*QUIZ_COLUMNS).where(Q.id == _p("p_quiz", Q.id))
MINE = select(A.number, A.state, A.expires_at).where(A.user_id == _p("p_uid", A.user_id),
                                                     A.quiz_id == _p("p_quiz", A.quiz_id)).order_by(A.number)
GROUP = select(M.group_name).where(M.user_id == _p("p_uid", M.user_id))
ACCOMMODATION_COLUMNS = (AC.user_id, AC.group_name, AC.time_multiplier, AC.extra_minutes, AC.extra_attempts,
                         AC.closes_at, AC.untimed)
ACCOMMODATIONS = select(*ACCOMMODATION_COLUMNS).where(
    AC.quiz_id == _p("p_quiz", AC.quiz_id),
    (AC.user_id == _p("p_uid", AC.user_id)) | (AC.group_name == _p("p_group", AC.group_name)))
NEW_ATTEMPT = insert(Attempt).values(
    user_id=_p("p_uid", A.user_id), quiz_id=_p("p_quiz", A.quiz_id), number=_p("p_number", A.number),
    state=_p("p_state", A.state), started_at=_p("p_t", A.started_at), expires_at=_p("p_expires", A.expires_at),
    max_score=_p("p_max", A.max_score)).returning(A.id)
P = StartPlan.__table__.c
THE_PLAN = (P.user_id == _p("p_uid", P.user_id)) & (P.quiz_id == _p("p_quiz", P.quiz_id)) & (P.number == _p("p_number", P.number))
PLAN = select(P.basis, P.rows, P.questions).where(THE_PLAN)
DROP_PLAN = delete(StartPlan).where(THE_PLAN)
NEW_QUESTION = insert(AttemptQuestion).values(
    attempt_id=_p("p_aid", AQ.attempt_id), slot=_p("p_slot", AQ.slot), item_version_id=_p("p_iv", AQ.item_version_id),
    seed=_p("p_seed", AQ.seed), points=_p("p_points", AQ.points))


class Prepared(quicksave.Prepared):
    """``quicksave.Prepared``, with no result processor for a column whose dialect needs none without
    knowing the column's database type (psycopg's floats: PostgreSQL's own types arrive as Python's)."""

    def __init__(self, stmt: Any, dialect: Dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = list(compiled.positiontup or []) if compiled.positional else None
        self.process = {name: p for name, b in compiled.binds.items()
                        if (p := b.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        self.result = [_result_processor(c.type, dialect) for c in getattr(stmt, "selected_columns", [])]


def _result_processor(type_: Any, dialect: Dialect) -> Any:
    try:
        return type_.dialect_impl(dialect).result_processor(dialect, None)
    except TypeError:  # psycopg's Numeric/Float asks for the column's type code, which only a cursor knows
        return None


def _views(n: int) -> Any:
    """The cached views of ``n`` (item version, seed) keys."""
    R = Rendering.__table__.c
    return select(R.item_version_id, R.seed, R.view).where(
        R.format == _p("p_format", R.format),
        or_(*[and_(R.item_version_id == _p(f"p_iv{k}", R.item_version_id), R.seed == _p(f"p_seed{k}", R.seed))
              for k in range(n)]))


class Statements:
    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self.user, self.quiz, self.mine = Prepared(USER, dialect), Prepared(QUIZ, dialect), Prepared(MINE, dialect)
        self.group, self.accommodations = Prepared(GROUP, dialect), Prepared(ACCOMMODATIONS, dialect)
        self.stamp, self.seen = Prepared(STAMP, dialect), Prepared(SEEN, dialect)
        self.new_attempt, self.new_question = Prepared(NEW_ATTEMPT, dialect), Prepared(NEW_QUESTION, dialect)
        self.plan, self.drop_plan = Prepared(PLAN, dialect), Prepared(DROP_PLAN, dialect)
        self.views: dict[int, Prepared] = {}

    def views_of(self, n: int) -> Prepared:
        if n not in self.views:
            self.views[n] = Prepared(_views(n), self.dialect)
        return self.views[n]


_PREPARED: dict[tuple, Statements] = {}


def _statements(db: Database) -> Statements:
    dialect = db.engine.dialect
    key = (type(dialect), dialect.paramstyle)
    if key not in _PREPARED:
        _PREPARED[key] = Statements(dialect)
    return _PREPARED[key]


def prepare(db: Database) -> None:
    """Compile the lane's statements now (``quizengine serve`` does it in the master, before the
    workers fork: otherwise each worker's first starts, a spike's, compile them and configure the
    ORM's mappers, about 0.2 s of its CPU)."""
    _statements(db).views_of(20)  # a quiz of 20 questions; other sizes are compiled when first met


def _all(p: Prepared, conn: Any, **values: Any) -> list[tuple]:
    """Every row of a prepared select, through the columns' result processors."""
    cur = p.run(conn, **values)
    rows = cur.fetchall()
    cur.close()
    return [tuple(v if f is None else f(v) for v, f in zip(row, p.result)) for row in rows]


def _quiz(st: Statements, conn: Any, quiz_id: str) -> Any:
    row = st.quiz.first(conn, p_quiz=quiz_id)
    return None if row is None else SimpleNamespace(**{c.name: v for c, v in zip(QUIZ_COLUMNS, row)})


def _attempts(st: Statements, conn: Any, user_id: int, quiz_id: str) -> list[Any]:
    return [SimpleNamespace(number=n, state=state, expires_at=e) for n, state, e in
            _all(st.mine, conn, p_uid=user_id, p_quiz=quiz_id)]


def _terms(st: Statements, conn: Any, q: Any, user_id: int) -> Terms:
    """``terms.terms_for``, read on a DBAPI connection."""
    group = st.group.first(conn, p_uid=user_id)
    group = None if group is None else group[0]
    rows = [SimpleNamespace(**{c.name: v for c, v in zip(ACCOMMODATION_COLUMNS, row)})
            for row in _all(st.accommodations, conn, p_quiz=q.id, p_uid=user_id, p_group=group)]
    return terms_of(q, rows, user_id, group)


_LOADING = threading.Lock()  # one start of a worker reads the pool for all (a gevent lock under serve)


class _Load(Exception):
    """The pool of current items, when this process does not hold it: read with a session once the
    DBAPI connection is given back (never a second connection while one is held: a pool of them
    would run dry under a spike). One start at a time reads it: the starts of a spike that find a
    fresh worker wait for that read instead of each making it again."""

    def load(self, db: Database) -> None:
        with _LOADING, db.read() as s:
            current_items(s)  # reads the stamp; the items only if no other start has read them meanwhile


def _plan(db: Database, st: Statements, conn: Any, secret: str, user_id: int, session_version: int | None,
          quiz_id: str) -> tuple[Any, int, list[dict[str, Any]], list[dict[str, Any]] | str, list[Any]] | None:
    """Read what the start needs: the quiz, the attempt's number, its questions' rows and their views
    (or, when the attempt was planned ahead on the same basis, the JSON of its questions)."""
    user = st.user.first(conn, p_uid=user_id)
    if user is None or user[0] != Role.STUDENT or (session_version is not None and user[1] != session_version):
        return None
    q = _quiz(st, conn, quiz_id)
    if q is None:
        return None
    attempts = _attempts(st, conn, user_id, quiz_id)
    if any(a.state == AttemptState.OPEN for a in attempts):
        return None  # in progress, or due: the full path grades it or refuses
    number = len(attempts) + 1
    seen = ({item_id: int(n) for item_id, n in _all(st.seen, conn, p_uid=user_id, p_quiz=quiz_id, p_number=number)}
            if avoids_repeats(q, number) else {})
    stamp = st.stamp.first(conn)
    planned = st.plan.first(conn, p_uid=user_id, p_quiz=quiz_id, p_number=number)
    if planned is not None and planned[0] == plans.basis(stamp, seen, secret):
        return q, number, plans.rows_of(planned[1]), planned[2], attempts  # drawn and rendered ahead
    try:
        pool = cached_pool(pool_key(str(db.engine.url), stamp))
        if pool is None:
            raise _Load
        drawn = draw_items(None, q, secret, user_id, number, items=pool, seen=seen)
    except ServiceError:
        return None
    rows = [{"slot": slot, "item_version_id": cur.item_version_id, "points": points,
             "seed": question_seed(secret, user_id, q.id, number, cur.item_id)} for slot, (cur, points) in enumerate(drawn)]
    keys = list(dict.fromkeys((r["item_version_id"], r["seed"]) for r in rows))
    cached = _read_views(st, conn, keys)
    views = [cached.get((r["item_version_id"], r["seed"])) for r in rows]
    if any(v is None for v in views):
        return None  # not rendered ahead: the full path renders and stores
    for r, view in zip(rows, views):  # a slot without points of its own: the item's, as its view (of that version) shows
        r["points"] = float(view["points"] if r["points"] is None else r["points"])
    return q, number, rows, views, attempts  # type: ignore[return-value]


def _read_views(st: Statements, conn: Any, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    if st.dialect.name == "postgresql":
        return quickstart_pg.read_views(conn, RENDER_FORMAT, keys)
    params = {"p_format": RENDER_FORMAT}
    for k, (iv, seed) in enumerate(keys):
        params[f"p_iv{k}"], params[f"p_seed{k}"] = iv, seed
    return {(iv, seed): view for iv, seed, view in _all(st.views_of(len(keys)), conn, **params)}


def quick_start(db: Database, secret: str, user_id: int, session_version: int | None, quiz_id: str,
                t: datetime | None = None) -> dict[str, Any] | None:
    """Start the student's next attempt if it is the common case; its view (as ``attempt_view`` gives
    it), or None having written nothing.

    ``session_version``: the one a bearer token was issued with (a token ended by a logout or a
    password change no longer matches); None when the caller checked the session itself.
    """
    started = _start(db, secret, user_id, session_version, quiz_id, t or now())
    if started is None:
        return None
    view, questions = started
    view["questions"] = json.loads(questions) if isinstance(questions, str) else questions
    return view


def quick_start_json(db: Database, secret: str, user_id: int, session_version: int | None, quiz_id: str,
                     t: datetime | None = None) -> bytes | None:
    """``quick_start``'s view as the API's answer (compact JSON, a newline), or None having written
    nothing; a planned attempt's questions go into it as stored, never parsed."""
    started = _start(db, secret, user_id, session_version, quiz_id, t or now())
    if started is None:
        return None
    view, questions = started
    if not isinstance(questions, str):
        questions = plans.questions_json(questions)
    head = json.dumps(view, separators=(",", ":"))  # "questions":null, which no string in it can hold unescaped
    return (head.replace('"questions":null', '"questions":' + questions, 1) + "\n").encode()


def _start(db: Database, secret: str, user_id: int, session_version: int | None, quiz_id: str,
           t: datetime) -> tuple[dict[str, Any], list[dict[str, Any]] | str] | None:
    """The start: its view with "questions" None, and the questions (a list, or their JSON when planned)."""
    st = _statements(db)
    if not db.is_sqlite:
        return _quick_start_pg(db, st, secret, user_id, session_version, quiz_id, t)
    for _ in range(2):  # the pool read at most once
        try:
            with db.raw_read() as conn:
                plan = _plan(db, st, conn, secret, user_id, session_version, quiz_id)
            break
        except _Load as need:
            need.load(db)
    else:
        return None
    if plan is None:
        return None
    _, number, rows, views, _ = plan
    integrity = db.engine.dialect.loaded_dbapi.IntegrityError
    write = partial(_write, st, user_id, quiz_id, number, rows, t)
    try:  # with the starts (and saves) of this worker waiting at this moment: one commit, one fsync
        attempt_id, q, terms, expires_at = group_commit(db).run(write)
    except (_Refused, integrity):  # IntegrityError: another start took this number at the same moment
        return None
    return _started(attempt_id, q, number, t, expires_at, terms, rows, views)


def _quick_start_pg(db: Database, st: Statements, secret: str, user_id: int, session_version: int | None,
                    quiz_id: str, t: datetime) -> tuple[dict[str, Any], list[dict[str, Any]] | str] | None:
    """``quick_start`` on PostgreSQL (services/quickstart_pg.py): the reads, the terms and the one
    statement that writes the attempt and its questions, on one connection in autocommit."""
    integrity = db.engine.dialect.loaded_dbapi.IntegrityError
    for _ in range(2):  # the pool read at most once
        try:
            with db.raw_autocommit() as conn:
                plan = _planned_pg(conn, secret, user_id, session_version, quiz_id)
                if plan is None:
                    plan = _plan(db, st, conn, secret, user_id, session_version, quiz_id)
                if not plan:
                    return None
                q, number, rows, views, attempts = plan
                group, found = quickstart_pg.read_terms(conn, user_id, q.id)
                terms = terms_of(q, [SimpleNamespace(**row) for row in found], user_id, group)
                if start_refusal(terms, terms.window(t), attempts) is not None:
                    return None  # the full path says why
                expires_at = terms.deadline(t)
                try:
                    attempt_id = quickstart_pg.write_start(conn, user_id, q.id, number, t, expires_at, rows)
                except integrity:  # another start took this number at the same moment
                    return None
            return _started(attempt_id, q, number, t, expires_at, terms, rows, views)
        except _Load as need:
            need.load(db)
    return None


def _planned_pg(conn: Any, secret: str, user_id: int, session_version: int | None, quiz_id: str) -> Any:
    """``_plan`` in one statement when the attempt was planned on the basis computed now (PostgreSQL: a
    round trip and a plan per statement); None when it was not (then ``_plan`` draws), False for a
    start that is not the common case."""
    found = quickstart_pg.read_planned(conn, user_id, quiz_id)
    if found is None or found["basis"] is None:
        return None
    if found["role"] != Role.STUDENT or (session_version is not None and found["session_version"] != session_version):
        return False
    q, attempts = found["quiz"], found["attempts"]
    if any(a.state == AttemptState.OPEN for a in attempts):
        return False  # in progress, or due: the full path grades it or refuses
    number = len(attempts) + 1
    seen = found["seen"] if avoids_repeats(q, number) else {}
    if found["basis"] != plans.basis(found["stamp"], seen, secret):
        return None
    return q, number, plans.rows_of(found["rows"]), found["questions"], attempts


def _write(st: Statements, user_id: int, quiz_id: str, number: int, rows: list[dict[str, Any]], t: datetime,
           conn: Any) -> tuple[int, Any, Terms, datetime | None]:
    """The attempt and its questions, in the caller's write transaction; _Refused when the start is no
    longer the common case (the quiz's window and time limit and the student's terms and attempts are
    read again under the lock)."""
    q = _quiz(st, conn, quiz_id)
    if q is None:
        raise _Refused
    terms = _terms(st, conn, q, user_id)
    attempts = _attempts(st, conn, user_id, quiz_id)
    if len(attempts) + 1 != number or start_refusal(terms, terms.window(t), attempts) is not None:
        raise _Refused  # changed since the read, or refused: the full path says why
    expires_at = terms.deadline(t)
    cur = st.new_attempt.run(conn, p_uid=user_id, p_quiz=quiz_id, p_number=number, p_state=AttemptState.OPEN,
                             p_t=t, p_expires=expires_at, p_max=sum(r["points"] for r in rows))
    attempt_id = cur.fetchone()[0]
    cur.close()
    cur = conn.cursor()
    cur.executemany(st.new_question.sql, [st.new_question.params(
        {"p_aid": attempt_id, "p_slot": r["slot"], "p_iv": r["item_version_id"], "p_seed": r["seed"],
         "p_points": r["points"]}) for r in rows])
    cur.close()
    st.drop_plan.run(conn, p_uid=user_id, p_quiz=quiz_id, p_number=number).close()  # used, or of another basis
    return attempt_id, q, terms, expires_at


def _started(attempt_id: int, q: Quiz, number: int, t: datetime, expires_at: datetime | None, terms: Any,
             rows: list[dict[str, Any]], views: list[dict[str, Any]] | str) -> tuple[dict[str, Any], Any]:
    """The view of an attempt just started (``views.attempt_view``'s, field for field) with "questions"
    None, and its questions: built from the cached views, or the planned JSON as it is."""
    head = {"attempt_id": attempt_id, "quiz_id": q.id, "quiz_title": q.title, "number": number,
            "state": AttemptState.OPEN, "started_at": iso(t), "expires_at": iso(expires_at), "submitted_at": None,
            "questions": None, "time_limit_s": terms.time_limit_s, "time_note": terms.time_note}
    return head, views if isinstance(views, str) else plans.fresh_questions(rows, views)


class _Refused(Exception):
    """Roll the write back: the start is not the common case after all."""
