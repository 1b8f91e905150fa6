"""The fast start's write (services/quickstart.py): on SQLite the starts that wait for the write lock
together share one transaction and one commit (services/groupcommit.py), each kept or refused alone;
a slot without points takes the item's own, read from the cached view, so a fresh worker needs no
item loaded; the pool is read once for the starts that find a fresh worker."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from quizengine.models import Attempt, User
from quizengine.services import banks, draw
from quizengine.services import quickstart as quick
from tests.web.conftest import POSTGRES, hold_first_batch
from tests.web.test_quickstart import QUIZ, full_path_draw, stored, warm


@pytest.fixture
def crowd(app, db, users):
    """Three students, their next attempts rendered ahead: name -> (user id, session version)."""
    names = ("ann", "bob", "cy")
    for name in names:
        users.add(name)
    warm(app, db, *names)
    with db.read() as s:
        return {n: tuple(s.execute(select(User.id, User.session_version).where(User.username == n)).one())
                for n in names}


def run_together(gc, gate, starts) -> list:
    """Run the starts in threads: the first leads a batch held at the gate until the others queue behind it."""
    results: list = [None] * len(starts)

    def go(k):
        results[k] = starts[k]()

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(starts))]
    threads[0].start()
    while not gc._leading:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while len(gc._queue) < len(starts) - 1:
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    return results


@pytest.mark.skipif(POSTGRES, reason="the group commit is SQLite's (PostgreSQL commits each start in its own transaction)")
def test_starts_arriving_together_share_one_commit_and_each_is_the_full_paths_draw(app, db, crowd, monkeypatch):
    expected = {n: full_path_draw(app, db, n) for n in crowd}
    gc, gate, commits = hold_first_batch(monkeypatch, db)
    secret = app.config["SECRET_KEY"]
    views = run_together(gc, gate, [lambda uid=uid, sv=sv: quick.quick_start(db, secret, uid, sv, QUIZ)
                                    for uid, sv in crowd.values()])
    assert len(commits) == 2  # the leader's batch of one, then both starts that queued behind it, at once
    for name, view in zip(crowd, views):
        assert view is not None and view["number"] == 1
        assert stored(db, view["attempt_id"]) == expected[name]
        assert [(q["points"]) for q in view["questions"]] == [points for _, _, points in expected[name]]
    assert not gc._leading and not gc._queue


@pytest.mark.skipif(POSTGRES, reason="the group commit is SQLite's")
def test_a_start_refused_inside_a_shared_commit_leaves_the_others_written(app, db, crowd, monkeypatch):
    gc, gate, commits = hold_first_batch(monkeypatch, db)
    secret = app.config["SECRET_KEY"]
    (ann, ann_sv), (bob, bob_sv) = crowd["ann"], crowd["bob"]
    # ann presses Start twice: both plan attempt 1; the second finds it taken under the lock
    views = run_together(gc, gate, [lambda: quick.quick_start(db, secret, bob, bob_sv, QUIZ),
                                    lambda: quick.quick_start(db, secret, ann, ann_sv, QUIZ),
                                    lambda: quick.quick_start(db, secret, ann, ann_sv, QUIZ)])
    assert len(commits) == 2
    assert views[0] is not None and sum(v is not None for v in views[1:]) == 1  # one of ann's two: the other to Flask
    with db.read() as s:
        made = sorted((a.user_id, a.number) for a in s.scalars(select(Attempt)))
    assert made == sorted([(ann, 1), (bob, 1)])
    ann_view = next(v for v in views[1:] if v is not None)
    assert len(stored(db, ann_view["attempt_id"])) == len(ann_view["questions"]) == 20


def test_a_fresh_worker_starts_without_loading_a_bank_item(app, db, crowd, monkeypatch):
    uid, sv = crowd["ann"]
    expected = full_path_draw(app, db, "ann")
    draw._POOLS.clear()  # as a worker that has drawn nothing yet
    banks._ITEMS.clear()

    def no_item(*args, **kwargs):
        raise AssertionError("a bank item was loaded for the start")

    monkeypatch.setattr(banks, "bank_item", no_item)
    view = quick.quick_start(db, app.config["SECRET_KEY"], uid, sv, QUIZ)
    assert view is not None and stored(db, view["attempt_id"]) == expected
    assert sum(q["points"] for q in view["questions"]) == sum(points for _, _, points in expected)


def test_the_pool_is_read_once_for_the_starts_that_find_a_fresh_worker(app, db, crowd, monkeypatch):
    draw._POOLS.clear()  # as a worker that has drawn nothing yet
    reads, gate = [], threading.Event()
    real = draw.current_items

    def slow_read(s):
        reads.append(not draw._POOLS)  # True: this call reads the items
        gate.wait(5)  # the first read takes its time: the second start arrives meanwhile
        return real(s)

    class Tracked:  # the real lock, with the starts that asked for it counted
        def __init__(self):
            self.lock, self.asked = threading.Lock(), 0

        def __enter__(self):
            self.asked += 1
            self.lock.acquire()

        def __exit__(self, *exc):
            self.lock.release()

    tracked = Tracked()
    monkeypatch.setattr(quick, "current_items", slow_read)
    monkeypatch.setattr(quick, "_LOADING", tracked)
    threads = [threading.Thread(target=quick._Load().load, args=(db,)) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while tracked.asked < 2 and time.monotonic() < deadline:  # both asked; the first reads, held at the gate
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    assert tracked.asked == 2 and reads == [True, False]  # the second found the pool the first had read
    uid, sv = crowd["bob"]
    assert quick.quick_start(db, app.config["SECRET_KEY"], uid, sv, QUIZ) is not None
    assert reads == [True, False]  # a start that finds the pool reads nothing
