"""The start's fast lane (web/quickstart.py, services/quickstart.py): what it answers is what the full
path answers, with the same draw, seeds, deadline and headers; anything uncommon goes to Flask."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quizengine.models import Attempt, User
from quizengine.services import draw, warming
from quizengine.services.clock import now
from quizengine.services.principal import Principal
from quizengine.web import api

from .conftest import set_quiz

QUIZ = "module-04-prep"
START = f"/api/v1/quizzes/{QUIZ}/attempts"
KEY_FIELDS = {"answer", "correct", "correct_answer", "explanation", "explanation_html", "feedback", "mistake",
              "mistakes", "accepted", "buggy", "score"}


@pytest.fixture
def no_flask_start(monkeypatch):
    """Fail a start that reaches Flask's view: the fast lane must answer it."""
    def refuse(*args, **kwargs):
        raise AssertionError("the start went to the full path")

    monkeypatch.setattr(api, "start_attempt", refuse)


def warm(app, db, *names: str) -> None:
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, list(names))


def keys_in(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in keys_in(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in keys_in(v)}
    return set()


def full_path_draw(app, db, name: str) -> list[tuple[int, int, float]]:
    """The questions the full path would give the student's next attempt (its write rolled back)."""
    class Undo(Exception):
        pass

    out = []
    try:
        with db.write() as s:
            u = s.scalar(select(User).where(User.username == name))
            a = draw.start_attempt(s, Principal(u.id, u.role), QUIZ, app.config["SECRET_KEY"])
            out = [(aq.item_version_id, aq.seed, aq.points) for aq in a.questions]
            raise Undo
    except Undo:
        pass
    return out


def stored(db, attempt_id: int) -> list[tuple[int, int, float]]:
    with db.read() as s:
        return [(aq.item_version_id, aq.seed, aq.points) for aq in s.get(Attempt, attempt_id).questions]


def test_the_fast_start_is_the_attempt_the_full_path_shows(app, client, db, users, no_flask_start):
    users.add("ann")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    expected = full_path_draw(app, db, "ann")
    r = client.post(START, headers=head)
    assert r.status_code == 201, r.json
    view = r.json
    assert stored(db, view["attempt_id"]) == expected and len(expected) == 20
    shown = client.get(f"/api/v1/attempts/{view['attempt_id']}", headers=head)
    assert view == shown.json
    same = {"Content-Type", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
            "Referrer-Policy", "Cache-Control", "Strict-Transport-Security", "Vary", "Set-Cookie"}
    assert {k: v for k, v in r.headers if k in same} == {k: v for k, v in shown.headers if k in same}
    assert not keys_in(view["questions"]) & KEY_FIELDS
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        item_ids = {aq.item_version.item_id for aq in a.questions}
        assert a.max_score == sum(p for _, _, p in expected)
    assert not any(f'"{i}"' in r.get_data(as_text=True) for i in item_ids)  # an item id could give the answer away


def test_a_second_attempt_draws_as_the_full_path_does(app, client, db, users, no_flask_start):
    users.add("ann")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    first = client.post(START, headers=head).json
    assert client.post(f"/api/v1/attempts/{first['attempt_id']}/submit", headers=head).status_code == 200
    warm(app, db, "ann")  # attempt 2's questions (items of attempt 1 go last)
    expected = full_path_draw(app, db, "ann")
    second = client.post(START, headers=head)
    assert second.status_code == 201 and second.json["number"] == 2
    assert stored(db, second.json["attempt_id"]) == expected
    assert second.json == client.get(f"/api/v1/attempts/{second.json['attempt_id']}", headers=head).json


def test_a_timed_start_with_an_accommodation_gets_the_students_deadline(app, client, db, users, no_flask_start):
    set_quiz(db, time_limit_s=600)
    users.add("teacher", "instructor")
    users.add("ann")
    teacher = users.token(client, "teacher")
    assert client.put(f"/api/v1/quizzes/{QUIZ}/accommodations/ann", headers=teacher,
                      json={"time_multiplier": 1.5, "extra_minutes": 5}).status_code == 200
    head = users.token(client, "ann")
    warm(app, db, "ann")
    before = now()
    view = client.post(START, headers=head).json
    assert (view["time_limit_s"], view["time_note"]) == (1200, "extended")
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        assert (a.expires_at - a.started_at).total_seconds() == 1200
    assert view == client.get(f"/api/v1/attempts/{view['attempt_id']}", headers=head).json
    assert before.isoformat() <= view["started_at"]


def test_a_start_takes_the_groups_terms_under_the_students_own(app, client, db, users, no_flask_start):
    """The group's accommodation covers its members; a member's own settings win over the group's;
    a classmate's own accommodation is not theirs (one read of the group and accommodations on PostgreSQL)."""
    set_quiz(db, time_limit_s=600)
    users.add("teacher", "instructor")
    for name in ("ann", "bob", "cy"):
        users.add(name)
    teacher = users.token(client, "teacher")
    base = f"/api/v1/quizzes/{QUIZ}"
    assert client.put(f"{base}/accommodation-groups/slow", headers=teacher,
                      json={"time_multiplier": 2}).status_code == 200
    assert client.put(f"{base}/accommodations/ann", headers=teacher, json={"group": "slow"}).status_code == 200
    assert client.put(f"{base}/accommodations/bob", headers=teacher,
                      json={"group": "slow", "time_multiplier": 3}).status_code == 200
    assert client.put(f"{base}/accommodations/cy", headers=teacher, json={"extra_minutes": 1}).status_code == 200
    warm(app, db, "ann", "bob", "cy")
    got = {}
    for name in ("ann", "bob", "cy"):
        head = users.token(client, name)
        view = client.post(START, headers=head).json
        assert view == client.get(f"/api/v1/attempts/{view['attempt_id']}", headers=head).json
        got[name] = view["time_limit_s"]
    assert got == {"ann": 1200, "bob": 1800, "cy": 660}


@pytest.mark.parametrize("case, status", [
    # an attempt in progress: Flask says so
    ("in_progress", 409),
    # the quiz is closed, or its attempts are used up
    ("closed", 403),
    ("used_up", 403),
    # not a student, or a token ended by a logout everywhere
    ("instructor", 403),
    ("logged_out", 401),
    # no such quiz
    ("no_quiz", 404),
])
def test_what_the_lane_refuses_flask_answers(app, client, db, users, case, status):
    users.add("ann", "instructor" if case == "instructor" else "student")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    url = START
    if case == "in_progress":
        assert client.post(START, headers=head).status_code == 201
    elif case == "closed":
        set_quiz(db, closes_at=now().replace(year=2001), opens_at=None)
    elif case == "used_up":
        set_quiz(db, max_attempts=1)
        a = client.post(START, headers=head).json
        client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=head)
    elif case == "logged_out":
        with db.write() as s:
            s.scalar(select(User).where(User.username == "ann")).session_version += 1
    elif case == "no_quiz":
        url = "/api/v1/quizzes/no-such-quiz/attempts"
    with db.read() as s:
        count = len(list(s.scalars(select(Attempt))))
    r = client.post(url, headers=head)
    assert r.status_code == status, r.json
    assert "error" in r.json
    with db.read() as s:
        assert len(list(s.scalars(select(Attempt)))) == count


def test_a_start_not_rendered_ahead_goes_to_flask_which_renders(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    calls = []
    real = api.start_attempt

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    api.start_attempt, saved = spy, api.start_attempt
    try:
        r = client.post(START, headers=head)
    finally:
        api.start_attempt = saved
    assert r.status_code == 201 and calls == [1]
    assert r.json == client.get(f"/api/v1/attempts/{r.json['attempt_id']}", headers=head).json


def test_the_page_start_takes_the_common_start_too(app, client, db, users, monkeypatch):
    from quizengine.web import student

    users.add("ann")
    warm(app, db, "ann")
    expected = full_path_draw(app, db, "ann")
    users.login(client, "ann")
    monkeypatch.setattr(student, "start_attempt", lambda *a, **k: pytest.fail("the page start went to the full path"))
    r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    assert stored(db, aid) == expected
    page = client.get(f"/attempts/{aid}")
    assert page.status_code == 200 and b"q20" in page.data
    monkeypatch.undo()
    again = client.post(f"/quizzes/{QUIZ}/start")  # in progress: the full path answers (and refuses)
    with db.read() as s:
        assert len(list(s.scalars(select(Attempt)))) == 1
    assert again.status_code in (302, 409)


def test_warming_two_attempts_ahead_renders_the_second_start_too(app, client, db, users, no_flask_start):
    users.add("ann")
    head = users.token(client, "ann")
    report = warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"], ahead=2)
    assert (report.questions, report.rendered) == (40, 40)
    first = client.post(START, headers=head).json  # the fast lane: every question rendered ahead
    assert client.post(f"/api/v1/attempts/{first['attempt_id']}/submit", headers=head).status_code == 200
    expected = full_path_draw(app, db, "ann")
    second = client.post(START, headers=head)  # the fast lane again: attempt 2 was rendered ahead as drawn now
    assert second.status_code == 201 and stored(db, second.json["attempt_id"]) == expected
    # the quiz allows 2 attempts: a third is not planned, and rerunning renders nothing
    again = warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"], ahead=3)
    assert (again.questions, again.rendered) == (20, 0)


def test_a_fresh_process_reads_the_pool_and_items_without_holding_two_connections(app, client, db, users,
                                                                                  no_flask_start, monkeypatch):
    from contextlib import contextmanager

    from quizengine.services import banks

    users.add("ann")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    expected = full_path_draw(app, db, "ann")
    draw._POOLS.clear()  # as a worker that has drawn nothing yet
    banks._ITEMS.clear()
    held = []
    raw_read, read = db.raw_read, db.read

    @contextmanager
    def tracked_raw_read():
        held.append(1)
        try:
            with raw_read() as conn:
                yield conn
        finally:
            held.pop()

    @contextmanager
    def checked_read():
        assert not held, "a session opened while a DBAPI connection is held (a spike would empty the pool)"
        with read() as s:
            yield s

    monkeypatch.setattr(db, "raw_read", tracked_raw_read)
    monkeypatch.setattr(db, "read", checked_read)
    r = client.post(START, headers=head)
    assert r.status_code == 201, r.json
    assert stored(db, r.json["attempt_id"]) == expected
