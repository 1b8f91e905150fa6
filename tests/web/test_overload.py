"""Overload: a database that stays locked past its timeout answers 503 with Retry-After, never a 500.

The lock is real: another connection holds SQLite's write lock (BEGIN IMMEDIATE) or, on
PostgreSQL, an exclusive lock on the tables, while the app waits only 50 ms for it.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from quizengine import db as database_module
from quizengine.web.errors import BUSY_RETRY_S, database_busy

QUIZ = "module-04-prep"


@contextmanager
def lock_held(app, monkeypatch):
    """Another connection holds the write lock of the app's database; the app waits 50 ms at most."""
    database = app.extensions["quizengine.db"]
    if database.is_sqlite:
        monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 50)  # read by every new connection
        database.engine.dispose()
        other = sqlite3.connect(make_url(database.url).database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return

    def short_lock_timeout(dbapi_conn, record):  # type: ignore[no-untyped-def]
        with dbapi_conn.cursor() as cur:
            cur.execute("SET lock_timeout = '50ms'")
        dbapi_conn.commit()

    event.listen(database.engine, "connect", short_lock_timeout)
    database.engine.dispose()
    other = create_engine(database.url)
    try:
        with other.connect() as conn:
            conn.execute(text('LOCK TABLE "response", attempt, attempt_question IN ACCESS EXCLUSIVE MODE'))
            yield
            conn.rollback()
    finally:
        other.dispose()
        event.remove(database.engine, "connect", short_lock_timeout)


def start(client, users, name: str) -> tuple[dict, int, str, object]:
    """A student's token, open attempt, its first question and that question's correct answer."""
    users.add(name)
    h = users.token(client, name)
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    assert r.status_code == 201, r.json
    users.add(f"teacher-{name}", "instructor")
    key = client.get(f"/api/v1/attempts/{r.json['attempt_id']}/key", headers=users.token(client, f"teacher-{name}")).json
    first = key["questions"][0]
    return h, r.json["attempt_id"], first["id"], first["answer"]


def test_autosave_while_the_database_stays_locked_is_503_json_with_retry_after(app, client, users, monkeypatch):
    h, aid, qid, answer = start(client, users, "ann")
    with lock_held(app, monkeypatch):
        r = client.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, json={"response": answer, "seq": 1})
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(BUSY_RETRY_S)
    assert r.is_json and r.json["retry_after"] == BUSY_RETRY_S and "busy" in r.json["error"]
    # the client's retry, once the lock is free, is stored
    r = client.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, json={"response": answer, "seq": 1})
    assert r.status_code == 200, r.json
    stored = client.get(f"/api/v1/attempts/{aid}", headers=h).json
    assert next(q for q in stored["questions"] if q["id"] == qid)["response"] == answer


def test_page_autosave_while_locked_is_503_json(app, client, users, monkeypatch):
    _, aid, qid, answer = start(client, users, "bob")
    users.login(client, "bob")
    with lock_held(app, monkeypatch):
        r = client.post(f"/attempts/{aid}/autosave", json={"question": qid, "response": answer, "seq": 1})
    assert r.status_code == 503 and r.is_json
    assert r.headers["Retry-After"] == str(BUSY_RETRY_S)


def test_start_form_while_locked_is_a_503_page_and_works_after(app, client, users, monkeypatch):
    users.add("cat")
    users.login(client, "cat")
    with lock_held(app, monkeypatch):
        r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(BUSY_RETRY_S)
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "Busy: try again" in page and "try again in 2 s" in page
    r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302 and "/attempts/" in r.headers["Location"]


class FakePgError(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("error, busy", [
    # SQLite: the write lock held past the busy timeout
    (OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is busy")), True),
    # SQLite: broken, not busy
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: attempt")), False),
    (OperationalError("COMMIT", {}, sqlite3.OperationalError("disk I/O error")), False),
    # PostgreSQL: lock_not_available, query_canceled (lock or statement timeout), deadlock, too many connections
    (OperationalError("UPDATE", {}, FakePgError("55P03")), True),
    (OperationalError("UPDATE", {}, FakePgError("57014")), True),
    (OperationalError("UPDATE", {}, FakePgError("40P01")), True),
    (OperationalError("connect", {}, FakePgError("53300")), True),
    # PostgreSQL: the server is gone
    (OperationalError("connect", {}, FakePgError("08006")), False),
    # every pooled connection in use past the pool's timeout
    (PoolTimeout("QueuePool limit of size 5 overflow 5 reached"), True),
])
def test_which_database_errors_count_as_busy(error, busy):
    assert database_busy(error) is busy


def test_a_broken_database_is_still_a_500(app, client, users, monkeypatch):
    h, aid, qid, answer = start(client, users, "dan")

    def broken(*args, **kwargs):
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr("quizengine.web.api.save_response", broken)
    monkeypatch.setattr("quizengine.web.quicksave.quick_save", broken)  # the fast lane hands it to Flask
    r = client.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, json={"response": answer, "seq": 1})
    assert r.status_code == 500 and "Retry-After" not in r.headers
