"""The background warmer after logins (services/warming.py): students queued together are planned in
one read, and that plan is what each student's own would be: an attempt in progress as drawn, the
next attempt when one is left, nothing for one who used every attempt or an instructor."""

from __future__ import annotations

import threading
import time

from sqlalchemy import delete, select

from quizengine.models import Attempt, AttemptQuestion, Quiz
from quizengine.models_rendering import Rendering
from quizengine.services import warming
from tests.web.test_rendering_cache import QUIZ, start, user_id


def questions_of(db, attempt_id: int) -> list[tuple[int, int]]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(select(AttemptQuestion.item_version_id, AttemptQuestion.seed)
                                            .where(AttemptQuestion.attempt_id == attempt_id))]


def class_of_four(app, client, db, users) -> dict[str, int]:
    """ann: nothing yet; bob: an attempt in progress; cal: both attempts used; dan: one submitted; tom:
    an instructor. The rendering cache is emptied afterwards."""
    for name in ("ann", "bob", "cal", "dan"):
        users.add(name)
    users.add("tom", role="instructor")
    heads = {name: users.token(client, name) for name in ("bob", "cal", "dan")}
    start(client, heads["bob"])
    for name, times in (("cal", 2), ("dan", 1)):
        for _ in range(times):
            a = start(client, heads[name])
            assert client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=heads[name]).status_code == 200
    with db.write() as s:
        s.execute(delete(Rendering))
    return {name: user_id(db, name) for name in ("ann", "bob", "cal", "dan", "tom")}


def recording(calls: list[list[tuple[int, int]]], done: threading.Event | None = None, want: int = 0):
    def render(items, keys):
        calls.append(list(keys))
        if done is not None and sum(map(len, calls)) >= want:
            done.set()
        return warming.render_keys(items, keys)

    return render


def test_students_planned_together_get_what_each_would_alone(app, client, db, users):
    ids = class_of_four(app, client, db, users)
    secret = app.config["SECRET_KEY"]
    with db.read() as s:
        q = s.get(Quiz, QUIZ)
        alone = {name: warming.upcoming(s, q, secret, uid) for name, uid in ids.items() if name != "tom"}
        bob_going = s.scalar(select(Attempt.id).where(Attempt.user_id == ids["bob"], Attempt.state == "open"))
        dan_first = s.scalar(select(Attempt.id).where(Attempt.user_id == ids["dan"]))
    assert sorted(alone["bob"]) == sorted(questions_of(db, bob_going))  # the attempt in progress, as drawn
    assert alone["cal"] == []  # max_attempts: 2, both used
    assert len(alone["ann"]) == len(alone["dan"]) == 20
    assert not {iv for iv, _ in alone["dan"]} & {iv for iv, _ in questions_of(db, dan_first)}  # repeats: avoid

    calls: list[list[tuple[int, int]]] = []
    rendered = warming.warm_students(db, secret, list(ids.values()), render=recording(calls))
    expected = set(alone["ann"]) | set(alone["bob"]) | set(alone["dan"])
    assert rendered == len(expected) == 60
    assert {k for call in calls for k in call} == expected
    assert warming.warm_students(db, secret, list(ids.values()), render=recording(calls)) == 0  # all rendered now
    assert warming.warm_student(db, secret, ids["tom"]) == 0


def test_the_background_warmer_plans_queued_students_in_one_batch(app, client, db, users):
    ids = class_of_four(app, client, db, users)
    calls: list[list[tuple[int, int]]] = []
    done, stop = threading.Event(), threading.Event()
    now = time.monotonic()  # queued by logins before the warmer wakes: one batch
    warming._QUEUE.extend([(ids["ann"], False, now), (ids["dan"], False, now), (ids["cal"], False, now)])
    warming._WAKE.set()
    errors: list[BaseException] = []
    t = threading.Thread(target=warming.run_warmer, args=(db, app.config["SECRET_KEY"], recording(calls, done, 40),
                                                        stop, errors.append, 0.0))
    t.start()
    try:
        assert done.wait(60), errors
    finally:
        stop.set()
        warming._WAKE.set()
        t.join(10)
    assert not errors and not warming._QUEUE
    assert len(calls) == 1 and len(calls[0]) == 40  # ann's and dan's next attempts, rendered in one batch
    with db.read() as s:
        assert set(calls[0]) == {tuple(r) for r in s.execute(select(Rendering.item_version_id, Rendering.seed))}


def test_a_pools_order_is_the_hmac_of_the_whole_message():
    """The draw's ranks (the prefix hashed once) are HMAC-SHA256 of the full message, as before."""
    import hashlib
    import hmac

    from quizengine.services.draw import _hmac_int, _hmac_ints

    names = ["act-relu-1", "vocab-epoch", "", "ü-item"]
    for secret in ("s3cret", "k" * 100):  # a key longer than SHA-256's block is hashed first
        ranks = _hmac_ints(secret, ("draw", 17, QUIZ, 2, 5), names)
        for item_id, rank in zip(names, ranks):
            msg = "\x1f".join(["draw", "17", QUIZ, "2", "5", item_id]).encode()
            expected = int.from_bytes(hmac.new(secret.encode(), msg, hashlib.sha256).digest()[:8], "big")
            assert rank == expected == _hmac_int(secret, "draw", 17, QUIZ, 2, 5, item_id)
