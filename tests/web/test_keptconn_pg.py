"""The connections a process keeps in autocommit for PostgreSQL's fast save (quizengine/keptconn.py):
a save takes one without the pool's checkout, each statement is its own transaction, at most PG_KEPT
are kept (then the pool serves), one left in a transaction or broken is never handed out again, and a
forked child never uses its parent's. A dropped one is replaced on use (tests/web/test_quicksave_pg.py).

These run in `make test`'s PostgreSQL pass, on its cluster."""

from __future__ import annotations

from contextlib import ExitStack

import psycopg
import pytest
from sqlalchemy import event

from quizengine import keptconn
from quizengine.db import PG_KEPT, PG_POOL_OVERFLOW, PG_POOL_SIZE
from tests.web.conftest import POSTGRES
from tests.web.test_quicksave_pg import backends, pg_app, student  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's connections: the PostgreSQL pass runs these")


@pytest.fixture
def checkouts(pg_app) -> list[int]:
    """The pool's checkouts from now on."""
    seen: list[int] = []
    engine = pg_app.extensions["quizengine.db"].engine
    listener = lambda *a: seen.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    yield seen
    event.remove(engine, "checkout", listener)


def test_saves_reuse_a_kept_connection_without_the_pool(student, checkouts):
    client, db, h, aid, qid, url, flask = student
    for seq in (1, 2, 3):
        assert client.put(url, headers=h, json={"response": f"{seq}.5", "seq": seq}).status_code == 200
    assert flask.calls == 0
    assert len(checkouts) <= 1  # at most the first save's, which connected the kept one through the pool
    kept = db._autocommit
    assert kept._open == len(kept._idle) == 1 and kept._idle[0].autocommit
    only = kept._idle[0]
    with db.raw_autocommit(pinged=False) as conn:
        assert conn is only
        conn.execute("SELECT 1")
        assert conn.info.transaction_status.name == "IDLE"  # no BEGIN: the statement was its own transaction
    assert len(checkouts) <= 1


def test_at_most_pg_kept_then_the_pool(pg_app, checkouts):
    db = pg_app.extensions["quizengine.db"]
    assert PG_POOL_SIZE + PG_POOL_OVERFLOW + PG_KEPT == 20  # the connections a worker may open, as before
    assert keptconn._IDLE == psycopg.pq.TransactionStatus.IDLE
    with ExitStack() as held:
        conns = [held.enter_context(db.raw_autocommit(pinged=False)) for _ in range(PG_KEPT)]
        assert len({id(c) for c in conns}) == PG_KEPT and db._autocommit._open == PG_KEPT
        before = len(checkouts)
        extra = held.enter_context(db.raw_autocommit(pinged=False))  # all kept ones in use: the pool's
        assert len(checkouts) == before + 1 and extra not in conns
        assert extra.execute("SELECT 7").fetchone() == (7,)
    assert db._autocommit._open == len(db._autocommit._idle) == PG_KEPT
    assert not extra.autocommit  # the pool's connection went back in its usual mode


def test_a_connection_left_in_a_transaction_or_failed_is_not_kept(pg_app):
    db = pg_app.extensions["quizengine.db"]
    with db.raw_autocommit(pinged=False) as conn:
        conn.execute("BEGIN")  # a caller that left a transaction open
        left = conn
    assert left.closed and left not in db._autocommit._idle and db._autocommit._open == 0
    with pytest.raises(ZeroDivisionError):
        with db.raw_autocommit(pinged=False) as conn:
            conn.execute("SELECT 1")
            raise ZeroDivisionError  # a failure in the caller, the connection idle: kept
    assert db._autocommit._idle == [conn] and not conn.closed
    with pytest.raises(psycopg.errors.DivisionByZero):
        with db.raw_autocommit(pinged=False) as conn:
            conn.execute("SELECT 1/0")  # a statement the server refused: its own transaction ended
    assert db._autocommit._idle == [conn] and conn.execute("SELECT 2").fetchone() == (2,)


def test_a_forked_child_never_uses_its_parents_connections(pg_app, monkeypatch):
    db = pg_app.extensions["quizengine.db"]
    with db.raw_autocommit(pinged=False) as parents:
        pid = parents.info.backend_pid
    assert db._autocommit._idle == [parents]
    monkeypatch.setattr(keptconn.os, "getpid", lambda: -1)  # as in a child process after a fork
    with db.raw_autocommit(pinged=False) as childs:
        assert childs is not parents and childs.info.backend_pid != pid
    assert db._autocommit._idle == [childs] and not parents.closed  # the parent's left alone
    assert pid in backends(db.url)
    parents.close()  # (the parent's own, in this one process)
