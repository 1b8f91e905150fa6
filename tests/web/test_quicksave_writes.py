"""The fast save's write (services/quicksave.py, services/groupcommit.py) and its token check
(web/quicksave.py): saves that wait together share one transaction, each kept or undone alone; a
failed commit writes none of them and each is answered by the full path; a checked token is
trusted only until its expiry."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import select

from quizengine.models import Attempt, AttemptQuestion, Response, User
from quizengine.services import quicksave as quick
from quizengine.services.groupcommit import GroupCommit
from tests.web.conftest import POSTGRES, hold_first_batch
from tests.web.test_quicksave import QUIZ, flask_calls, stored  # noqa: F401  (flask_calls: a fixture)


@pytest.fixture
def crowd(client, users, db):
    """Three students, each with an open attempt: (user id, session version, attempt id, scalar numeric slots)."""
    out = []
    for name in ("ann", "bob", "cy"):
        users.add(name)
        a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=users.token(client, name)).json
        slots = [int(q["id"][1:]) - 1 for q in a["questions"] if q["type"] == "numeric" and not q["shape"]]
        with db.read() as s:
            uid, version = s.execute(select(User.id, User.session_version).where(User.username == name)).one()
        out.append((uid, version, a["attempt_id"], slots))
    return out


def saved_rows(db, attempt_id: int) -> dict[int, tuple]:
    with db.read() as s:
        return {slot: (value, seq) for slot, value, seq in s.execute(
            select(AttemptQuestion.slot, Response.value, Response.seq).join(Response)
            .where(AttemptQuestion.attempt_id == attempt_id))}


@pytest.mark.skipif(POSTGRES, reason="the group commit is SQLite's (PostgreSQL writes each save in one statement)")
def test_saves_arriving_together_share_one_commit_and_all_are_kept(db, crowd, monkeypatch):
    gc, gate, commits = hold_first_batch(monkeypatch, db)  # the first batch waits until every other save has queued behind it
    results: dict[tuple, object] = {}

    def save(uid, version, aid, slot, seq):
        results[(aid, slot)] = quick.quick_save(db, uid, version, aid, slot, str(seq), seq)

    jobs = [(uid, version, aid, slot, 10 + k) for uid, version, aid, slots in crowd for k, slot in enumerate(slots[:3])]
    threads = [threading.Thread(target=save, args=job) for job in jobs]
    threads[0].start()
    while not gc._leading:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while len(gc._queue) < len(jobs) - 1:  # all but the leader's own save wait in the queue
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    assert all(r is not None for r in results.values()) and len(results) == len(jobs)
    assert len(commits) == 2  # the leader's batch of one, then every save that queued behind it at once
    for uid, version, aid, slot, seq in jobs:
        assert saved_rows(db, aid)[slot] == (str(seq), seq)
    assert not gc._leading and not gc._queue


@pytest.mark.skipif(POSTGRES, reason="the group commit is SQLite's")
def test_one_failing_save_in_a_batch_is_undone_alone(db, crowd):
    (uid, version, aid, slots), *_ = crowd
    st = quick._statements(db)

    def good(slot, seq):
        return lambda conn: quick._write_sqlite(st, dict(p_aid=aid, p_open="open", p_qid=qid_of(db, aid, slot),
                                                         p_seq=seq, p_value=str(seq), p_t=quick.now(), p_spent=1.0),
                                                conn)

    def half_then_fail(conn):
        good(slots[1], 7)(conn)  # written, then undone with its savepoint
        raise RuntimeError("boom")

    gc = GroupCommit(db)
    gc._write([job := _job(good(slots[0], 5)), bad := _job(half_then_fail), last := _job(good(slots[2], 9))])
    out = [job.result, type(bad.error).__name__, last.result]
    assert out == [True, "RuntimeError", True]
    rows = saved_rows(db, aid)
    assert rows[slots[0]] == ("5", 5) and rows[slots[2]] == ("9", 9) and slots[1] not in rows


@pytest.mark.skipif(POSTGRES, reason="the group commit is SQLite's")
def test_a_failed_commit_writes_nothing_and_flask_answers_each_save(client, users, db, crowd, monkeypatch, flask_calls):
    users.add("dee")
    h = users.token(client, "dee")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    failed = []

    def full_disk(conn):
        failed.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("quizengine.db._commit", full_disk)
    before = flask_calls.calls
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", headers=h, json={"response": "4", "seq": 3})
    assert failed == [1] and flask_calls.calls == before + 1  # the fast write failed whole: the full path saved it
    assert r.status_code == 200 and tuple(stored(db, a["attempt_id"], qid)) == ("4", 3)


def test_a_checked_token_is_trusted_only_until_it_expires(app, client, users, db, monkeypatch, flask_calls):
    users.add("eve")
    h = users.token(client, "eve")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}"
    before = flask_calls.calls
    assert client.put(url, headers=h, json={"response": "1", "seq": 1}).status_code == 200
    assert flask_calls.calls == before and len(app.wsgi_app.tokens) == 1
    later = time.time() + app.config["API_TOKEN_MAX_AGE"] + 5
    monkeypatch.setattr(time, "time", lambda: later)  # (itsdangerous reads the same clock)
    r = client.put(url, headers=h, json={"response": "2", "seq": 2})
    assert r.status_code == 401 and flask_calls.calls == before + 1
    assert tuple(stored(db, a["attempt_id"], qid)) == ("1", 1)


def _job(work):
    from quizengine.services.groupcommit import _Job

    return _Job(work)


def qid_of(db, aid: int, slot: int) -> int:
    with db.read() as s:
        return s.execute(select(AttemptQuestion.id).where(AttemptQuestion.attempt_id == aid,
                                                          AttemptQuestion.slot == slot)).scalar_one()


def test_the_attempt_is_touched_only_by_a_save_that_was_written(db, crowd):
    (uid, version, aid, slots), *_ = crowd
    assert quick.quick_save(db, uid, version, aid, slots[0], "1", 4) is not None
    with db.read() as s:
        first = s.execute(select(Attempt.last_activity_at).where(Attempt.id == aid)).scalar()
    assert first is not None
    assert quick.quick_save(db, uid, version, aid, slots[0], "2", 4) is None  # a repeat: nothing written
    with db.read() as s:
        assert s.execute(select(Attempt.last_activity_at).where(Attempt.id == aid)).scalar() == first
    assert saved_rows(db, aid)[slots[0]] == ("1", 4)
