"""Starts planned ahead (services/plans.py): the warmers keep each student's next attempt drawn, and a
start whose plan has the basis it computes now writes the plan's rows and answers with its stored
questions, drawing nothing and reading no view; any other plan is ignored, and the start draws (and
answers) exactly as the full path would."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from quizengine.models import User
from quizengine.models_rendering import StartPlan
from quizengine.services import plans, warming
from quizengine.services import quickstart as quick
from quizengine.services.clock import now

from .conftest import POSTGRES, set_quiz
from .test_quickstart import QUIZ, START, full_path_draw, no_flask_start, stored, warm  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("no_flask_start")


def plans_of(db) -> dict[tuple[str, int], StartPlan]:
    with db.read() as s:
        return {(p.quiz_id, p.number): p for p in s.scalars(select(StartPlan))}


@pytest.fixture
def draws(monkeypatch):
    """Count the fast lane's draws and view reads (a planned start makes neither)."""
    made = {"draw": 0, "views": 0}
    real_draw, real_views = quick.draw_items, quick._read_views

    def counted_draw(*args, **kwargs):
        made["draw"] += 1
        return real_draw(*args, **kwargs)

    def counted_views(*args, **kwargs):
        made["views"] += 1
        return real_views(*args, **kwargs)

    monkeypatch.setattr(quick, "draw_items", counted_draw)
    monkeypatch.setattr(quick, "_read_views", counted_views)
    return made


def test_a_planned_start_draws_nothing_and_is_the_attempt_the_full_path_gives(app, client, db, users, draws):
    users.add("ann")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    assert set(plans_of(db)) == {(QUIZ, 1)}
    expected = full_path_draw(app, db, "ann")
    r = client.post(START, headers=head)
    assert r.status_code == 201, r.json
    assert draws == {"draw": 0, "views": 0}
    assert stored(db, r.json["attempt_id"]) == expected and len(expected) == 20
    assert r.json == client.get(f"/api/v1/attempts/{r.json['attempt_id']}", headers=head).json
    assert r.get_data(as_text=True).endswith("}\n") and json.loads(r.get_data()) == r.json
    assert plans_of(db) == {}  # spent


def test_the_second_attempt_planned_with_the_first_as_drawn_is_used(app, client, db, users, draws):
    users.add("ann")
    head = users.token(client, "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"], ahead=2)
    assert set(plans_of(db)) == {(QUIZ, 1), (QUIZ, 2)}
    first = client.post(START, headers=head).json
    assert client.post(f"/api/v1/attempts/{first['attempt_id']}/submit", headers=head).status_code == 200
    expected = full_path_draw(app, db, "ann")  # items of attempt 1 go last
    second = client.post(START, headers=head)
    assert second.status_code == 201 and second.json["number"] == 2
    assert draws["draw"] == 0 and stored(db, second.json["attempt_id"]) == expected
    assert second.json == client.get(f"/api/v1/attempts/{second.json['attempt_id']}", headers=head).json


def test_a_plan_made_before_the_quiz_changed_is_not_used(app, client, db, users, draws):
    users.add("ann")
    head = users.token(client, "ann")
    warm(app, db, "ann")
    set_quiz(db, title="Module 04, renamed", updated_at=now() + timedelta(seconds=1))  # as a bank load stamps it
    expected = full_path_draw(app, db, "ann")
    r = client.post(START, headers=head)
    assert r.status_code == 201 and draws["draw"] == 1  # drawn again, not taken from the plan
    assert stored(db, r.json["attempt_id"]) == expected and r.json["quiz_title"] == "Module 04, renamed"
    assert plans_of(db) == {}  # the stale plan of that number went with the start


def test_a_plan_of_another_secret_or_items_met_is_not_used(app, client, db, users, draws):
    users.add("ann")
    users.add("bob")
    warm(app, db, "ann", "bob")
    secret = app.config["SECRET_KEY"]
    with db.read() as s:
        stamp = s.execute(quick.STAMP).one()
    planned = plans_of(db)[(QUIZ, 1)]
    assert planned.basis == plans.basis(stamp, {}, secret)
    assert plans.basis(stamp, {"act-relu": 1}, secret) != planned.basis  # items met before change the draw
    assert plans.basis(stamp, {}, secret + "x") != planned.basis  # so does the secret
    with db.read() as s:
        ids = {name: uid for name, uid in s.execute(select(User.username, User.id))}
    # a plan whose basis no longer matches (as after a rotated secret) is drawn around
    with db.write() as s:
        s.execute(update(StartPlan).where(StartPlan.user_id == ids["bob"]).values(basis=plans.basis(stamp, {}, "old")))
    head = users.token(client, "bob")
    expected = full_path_draw(app, db, "bob")
    r = client.post(START, headers=head)
    assert r.status_code == 201 and draws["draw"] == 1
    assert stored(db, r.json["attempt_id"]) == expected


def test_rewarming_keeps_valid_plans_and_replaces_stale_ones(app, db, users, monkeypatch):
    users.add("ann")
    warm(app, db, "ann")
    first = plans_of(db)[(QUIZ, 1)]
    written = []
    real = plans.settle
    monkeypatch.setattr(plans, "settle", lambda db_, specs: written.append(real(db_, specs)) or written[-1])
    warm(app, db, "ann")
    assert written == [0] and plans_of(db)[(QUIZ, 1)].created_at == first.created_at
    set_quiz(db, updated_at=now() + timedelta(seconds=1))
    warm(app, db, "ann")
    assert written == [0, 1] and plans_of(db)[(QUIZ, 1)].basis != first.basis


def test_a_plan_holds_no_answer_key_and_the_views_of_its_draw(app, db, users):
    users.add("ann")
    warm(app, db, "ann")
    p = plans_of(db)[(QUIZ, 1)]
    questions, rows = json.loads(p.questions), plans.rows_of(p.rows)
    assert [q["id"] for q in questions] == [f"q{r['slot'] + 1}" for r in rows] and len(rows) == 20
    assert [q["points"] for q in questions] == [r["points"] for r in rows]
    assert all(q["response"] is None and q["seq"] is None for q in questions)
    assert not {"answer", "correct_answer", "explanation", "explanation_html", "mistakes"} & {
        k for q in questions for k in q}


def test_the_page_start_uses_the_plan_too(app, client, db, users, draws):
    users.add("ann")
    warm(app, db, "ann")
    expected = full_path_draw(app, db, "ann")
    users.login(client, "ann")
    r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302 and draws["draw"] == 0
    assert stored(db, int(r.headers["Location"].rsplit("/", 1)[1])) == expected


def test_a_workers_warmer_draws_no_attempt_planned_on_its_basis(app, db, users, monkeypatch):
    for name in ("ann", "bob"):
        users.add(name)
    warm(app, db, "ann")  # ann's attempt planned; bob's not
    with db.read() as s:
        ids = {name: uid for name, uid in s.execute(select(User.username, User.id))}
    drawn = []
    real = warming.draw_items
    monkeypatch.setattr(warming, "draw_items", lambda s, q, secret, uid, *a, **k: drawn.append(uid) or real(
        s, q, secret, uid, *a, **k))
    assert warming.warm_students(db, app.config["SECRET_KEY"], [ids["ann"], ids["bob"]]) == 20  # bob's rendered
    assert drawn == [ids["bob"]] and set(plans_of(db)) == {(QUIZ, 1)}
    with db.read() as s:
        assert {p.user_id for p in s.scalars(select(StartPlan))} == {ids["ann"], ids["bob"]}
    drawn.clear()
    set_quiz(db, updated_at=now() + timedelta(seconds=1))  # every plan of another basis now: both drawn again
    assert warming.warm_students(db, app.config["SECRET_KEY"], [ids["ann"], ids["bob"]]) == 0
    assert sorted(drawn) == sorted(ids.values())


@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's planned start reads in one statement; SQLite's in several")
def test_a_planned_start_on_postgresql_reads_in_one_statement(app, client, db, users, monkeypatch):
    users.add("ann")
    head = users.token(client, "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"], ahead=2)
    expected = full_path_draw(app, db, "ann")
    monkeypatch.setattr(quick, "_plan", lambda *a, **k: pytest.fail("the planned start read as an unplanned one"))
    r = client.post(START, headers=head)
    assert r.status_code == 201 and stored(db, r.json["attempt_id"]) == expected
    assert r.json == client.get(f"/api/v1/attempts/{r.json['attempt_id']}", headers=head).json
    monkeypatch.undo()
    set_quiz(db, updated_at=now() + timedelta(seconds=1))
    assert client.post(f"/api/v1/attempts/{r.json['attempt_id']}/submit", headers=head).status_code == 200
    expected = full_path_draw(app, db, "ann")
    drawn = []
    real = quick._plan
    monkeypatch.setattr(quick, "_plan", lambda *a, **k: drawn.append(1) or real(*a, **k))
    second = client.post(START, headers=head)  # attempt 2's plan is of another basis now: drawn by _plan
    assert second.status_code == 201 and second.json["number"] == 2 and drawn == [1]
    assert stored(db, second.json["attempt_id"]) == expected


def test_loading_the_banks_prunes_the_plans_no_start_can_use(app, db, users):
    for name in ("ann", "bob"):
        users.add(name)
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann", "bob"], ahead=2)
    secret = app.config["SECRET_KEY"]
    assert plans.prune(db, secret) == 0 and len(plans_of_all(db)) == 4  # all of this basis, items met or not
    assert plans.prune(db, secret + "-rotated") == 4 and plans_of_all(db) == []  # another secret: none usable
    warm(app, db, "ann", "bob")
    set_quiz(db, updated_at=now() + timedelta(seconds=1))  # a bank load that changed the quiz
    assert plans.prune(db, secret) == 2 and plans_of_all(db) == []


def plans_of_all(db) -> list[tuple[int, str, int]]:
    with db.read() as s:
        return list(s.execute(select(StartPlan.user_id, StartPlan.quiz_id, StartPlan.number)))


def test_load_banks_keeps_the_plans_of_unchanged_banks_and_drops_stale_ones(app, db, users, monkeypatch, runner):
    from quizengine.cli import main

    users.add("ann")
    warm(app, db, "ann")
    for name in ("DATABASE_URL", "SECRET_KEY", "INSTANCE", "BANKS"):
        monkeypatch.setenv(f"QUIZENGINE_{name}", str(app.config[name]))
    result = runner.invoke(main, ["load-banks"])  # as every `serve` start does
    assert result.exit_code == 0, result.output
    assert "start plans" not in result.stderr and len(plans_of_all(db)) == 1
    set_quiz(db, updated_at=now() + timedelta(seconds=1))  # the quiz changed since the plan was made
    result = runner.invoke(main, ["load-banks"])
    assert result.exit_code == 0 and "start plans: dropped 1 drawn from earlier banks or quizzes" in result.stderr
    assert plans_of_all(db) == []
