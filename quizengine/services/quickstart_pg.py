"""The start's fast lane on PostgreSQL (services/quickstart.py): its statements in PostgreSQL's own
SQL, each the same text whatever the quiz's size (psycopg prepares a statement on a connection once
it has run it a few times: PostgreSQL then neither parses nor plans it again).

On PostgreSQL a start's CPU was mostly statements: the app's driver and PostgreSQL's backend each
pay per statement and per round trip (SQLite pays per row, in this process). So the lane reads on
one connection in autocommit (no BEGIN, COMMIT nor ROLLBACK round trips), reads the 20 cached
views by a join on two arrays (not 20 ORed conditions), the student's group and accommodations in
one statement, and writes the attempt and its questions in one statement (an INSERT of the attempt
whose id the INSERT of the questions takes from arrays, and the attempt's plan deleted: services/plans.py),
atomic as any statement: either all or nothing. PostgreSQL locks rows, not the database, so there is no write lock to read the terms again
under; the unique attempt number still refuses a start that raced another (IntegrityError).
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from ..models import AttemptState

VIEWS = ("SELECT r.item_version_id, r.seed, r.view FROM rendering AS r "
         "JOIN unnest(%(ivs)s::integer[], %(seeds)s::integer[]) AS k(iv, seed) "
         "ON r.item_version_id = k.iv AND r.seed = k.seed WHERE r.format = %(format)s")

# The student's group (the first column; NULL when none) and the accommodations of the quiz for the
# student or that group: always at least one row, the accommodation's columns NULL when none applies.
TERMS = ("SELECT m.group_name, a.user_id, a.group_name, a.time_multiplier, a.extra_minutes, a.extra_attempts, "
         "a.closes_at, a.untimed "
         "FROM (SELECT %(uid)s::integer AS uid) AS u "
         "LEFT JOIN accommodation_member AS m ON m.user_id = u.uid "
         "LEFT JOIN accommodation AS a ON a.quiz_id = %(quiz)s "
         "AND (a.user_id = u.uid OR a.group_name = m.group_name)")
TERMS_COLUMNS = ("user_id", "group_name", "time_multiplier", "extra_minutes", "extra_attempts", "closes_at",
                 "untimed")

START = ("WITH a AS (INSERT INTO attempt (user_id, quiz_id, number, state, started_at, expires_at, max_score) "
         "VALUES (%(uid)s, %(quiz)s, %(number)s, %(state)s, %(t)s, %(expires)s, %(max)s) RETURNING id), "
         "q AS (INSERT INTO attempt_question (attempt_id, slot, item_version_id, seed, points) "
         "SELECT a.id, k.slot, k.iv, k.seed, k.points FROM a, "
         "unnest(%(slots)s::integer[], %(ivs)s::integer[], %(seeds)s::integer[], %(points)s::float8[]) "
         "AS k(slot, iv, seed, points)), "
         "d AS (DELETE FROM start_plan WHERE user_id = %(uid)s AND quiz_id = %(quiz)s AND number = %(number)s) "
         "SELECT id FROM a")


# A planned start's reads in one statement (services/plans.py): the user's role and session version,
# the quiz, the student's attempts at it, the pool's stamp (draw.STAMP), the items met in them
# (draw.SEEN for the next number: every attempt made) and the plan of the next attempt, if any. No
# row: no such user or quiz (the full path answers).
PLANNED = ("SELECT u.role, u.session_version, q.id, q.title, q.definition, q.opens_at, q.closes_at, "
           "q.time_limit_s, q.max_attempts, att.states, st.n, st.total, "
           "(SELECT max(updated_at) FROM quiz), met.items, met.latest, p.basis, p.rows, p.questions "
           'FROM "user" AS u JOIN quiz AS q ON q.id = %(quiz)s '
           "CROSS JOIN LATERAL (SELECT array_agg(a.state ORDER BY a.number) AS states, count(*) AS made "
           "FROM attempt AS a WHERE a.user_id = u.id AND a.quiz_id = q.id) AS att "
           "CROSS JOIN (SELECT count(item_id) AS n, coalesce(sum(item_version_id), 0) AS total "
           "FROM current_item) AS st "
           "CROSS JOIN LATERAL (SELECT array_agg(k.item_id) AS items, array_agg(k.latest) AS latest FROM "
           "(SELECT iv.item_id, max(a.number) AS latest FROM attempt AS a "
           "JOIN attempt_question AS aq ON aq.attempt_id = a.id "
           "JOIN item_version AS iv ON iv.id = aq.item_version_id "
           "WHERE a.user_id = u.id AND a.quiz_id = q.id GROUP BY iv.item_id) AS k) AS met "
           "LEFT JOIN start_plan AS p ON p.user_id = u.id AND p.quiz_id = q.id AND p.number = att.made + 1 "
           "WHERE u.id = %(uid)s")
QUIZ_FIELDS = ("id", "title", "definition", "opens_at", "closes_at", "time_limit_s", "max_attempts")


def read_planned(conn: Any, user_id: int, quiz_id: str) -> dict[str, Any] | None:
    """``PLANNED``'s row by name (the quiz's columns under "quiz"), or None."""
    cur = conn.cursor()
    cur.execute(PLANNED, {"uid": user_id, "quiz": quiz_id})
    row = cur.fetchone()
    cur.close()
    if row is None:
        return None
    role, version, *rest = row
    quiz, (states, n, total, loaded, items, latest, basis, rows, questions) = rest[:7], rest[7:]
    attempts = [SimpleNamespace(number=k + 1, state=AttemptState(state)) for k, state in enumerate(states or [])]
    return {"role": role, "session_version": version, "quiz": SimpleNamespace(**dict(zip(QUIZ_FIELDS, quiz))),
            "attempts": attempts, "stamp": (n, total, loaded), "seen": dict(zip(items or [], latest or [])),
            "basis": basis, "rows": rows, "questions": questions}


def read_views(conn: Any, render_format: int, keys: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """The cached views of these (item version, seed) keys, by key (the missing ones absent)."""
    cur = conn.cursor()
    cur.execute(VIEWS, {"ivs": [k[0] for k in keys], "seeds": [k[1] for k in keys], "format": render_format})
    out = {(iv, seed): view for iv, seed, view in cur.fetchall()}
    cur.close()
    return out


def read_terms(conn: Any, user_id: int, quiz_id: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The student's group, and the accommodations of the quiz that name the student or that group."""
    cur = conn.cursor()
    cur.execute(TERMS, {"uid": user_id, "quiz": quiz_id})
    rows = cur.fetchall()
    cur.close()
    group = rows[0][0] if rows else None
    return group, [dict(zip(TERMS_COLUMNS, row[1:])) for row in rows if row[2] is not None or row[1] is not None]


def write_start(conn: Any, user_id: int, quiz_id: str, number: int, t: datetime, expires_at: datetime | None,
                rows: list[dict[str, Any]]) -> int:
    """Insert the attempt and its questions in one statement (autocommit: its own transaction); its id."""
    cur = conn.cursor()
    cur.execute(START, {
        "uid": user_id, "quiz": quiz_id, "number": number, "state": AttemptState.OPEN.value, "t": t,
        "expires": expires_at, "max": sum(r["points"] for r in rows),
        "slots": [r["slot"] for r in rows], "ivs": [r["item_version_id"] for r in rows],
        "seeds": [r["seed"] for r in rows], "points": [float(r["points"]) for r in rows]})
    attempt_id = cur.fetchone()[0]
    cur.close()
    return attempt_id
