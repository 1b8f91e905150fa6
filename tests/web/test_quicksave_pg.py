"""The fast save on PostgreSQL (services/quicksave.py) takes its pooled connection without a ping
(a round trip on every save) and handles a dropped connection on use: the save runs once more on a
pinged connection. Every other checkout is still pinged (db.py), so the full path replaces a
dropped connection as before. Connections are dropped for real, with pg_terminate_backend.

These run in `make test`'s PostgreSQL pass, on its cluster (the SQLite pass started a cluster of its
own to run them a second time)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.web.conftest import POSTGRES
from tests.web.test_quicksave import QUIZ, Counting, stored


NAMES = itertools.count()


pytestmark = pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's connections: the PostgreSQL pass runs these")


@pytest.fixture
def pg_app(app):
    return app


@pytest.fixture
def pings(pg_app, monkeypatch) -> list[int]:
    """The pings sent (the dialect's do_ping, as the pool's checkout sends it)."""
    dialect = pg_app.extensions["quizengine.db"].engine.dialect
    sent: list[int] = []
    real = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: (sent.append(1), real(conn))[1])
    return sent


def backends(url: str) -> set[int]:
    """The server processes of the app's connections (every one but this check's own)."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        pids = set(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")))
    engine.dispose()
    return pids


def terminate(url: str) -> set[int]:
    """Drop every connection of the app, as a server restart or an idle timeout would."""
    pids = backends(url)
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        for pid in pids:
            assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    engine.dispose()
    return pids


@pytest.fixture
def student(pg_app):
    """A student's token, open attempt and the URL of a scalar numeric question; the lane's Flask counted."""
    client, db = pg_app.test_client(), pg_app.extensions["quizengine.db"]
    from tests.web.conftest import Accounts

    users, name = Accounts(pg_app), f"pg{next(NAMES)}"  # the module's tests share one database
    users.add(name)
    h = users.token(client, name)
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    lane = pg_app.wsgi_app
    lane.app = Counting(lane.app)
    return client, db, h, a["attempt_id"], qid, f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", lane.app


def test_the_fast_save_sends_no_ping_and_the_full_path_does(student, pings):
    client, db, h, aid, qid, url, flask = student
    assert client.put(url, headers=h, json={"response": "1.5", "seq": 1}).status_code == 200
    assert (flask.calls, len(pings)) == (0, 0)
    assert client.get(f"/api/v1/attempts/{aid}", headers=h).status_code == 200  # the ORM's checkouts
    assert flask.calls == 1 and len(pings) >= 1


def test_a_dropped_connection_is_replaced_and_the_save_kept(student):
    client, db, h, aid, qid, url, flask = student
    assert client.put(url, headers=h, json={"response": "1.5", "seq": 1}).status_code == 200
    dropped = terminate(db.url)
    assert dropped  # the pool held the connection the save used
    r = client.put(url, headers=h, json={"response": "2.5", "seq": 2})
    assert r.status_code == 200 and r.json["seq"] == 2
    assert flask.calls == 0  # answered by the lane: its second try, on a new connection (a fresh one needs no ping)
    assert tuple(stored(db, aid, qid)) == ("2.5", 2)
    assert not backends(db.url) & dropped  # the dead connection is gone from the pool
    # a stale tab's save is still refused after the reconnect (the full path's 409, nothing written)
    assert client.put(url, headers=h, json={"response": "0.5", "seq": 1}).status_code == 409
    assert tuple(stored(db, aid, qid)) == ("2.5", 2)


def test_the_full_path_still_replaces_a_dropped_connection(student):
    client, db, h, aid, qid, url, flask = student
    assert client.get(f"/api/v1/attempts/{aid}", headers=h).status_code == 200
    terminate(db.url)
    assert client.get(f"/api/v1/attempts/{aid}", headers=h).status_code == 200
