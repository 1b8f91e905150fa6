"""The shared rendering cache (services/renderings.py) and rendering ahead (services/warming.py):
what it serves is what rendering now gives, a bank edit is never served stale, no answer key is in
it, and a start stays one attempt however many requests race."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from quizengine.bank import figures, render
from quizengine.bank.variant import make_variant
from quizengine.db import SQLITE_CACHE_KIB
from quizengine.cli import main
from quizengine.bank.catalog import load_catalog
from quizengine.models import Attempt, AttemptQuestion, CurrentItem, ItemVersion, Quiz, User
from quizengine.models_rendering import Rendering
from quizengine.services import banks, renderings, warming
from quizengine.services.clock import now
from tests.web.conftest import BANKS, POSTGRES, set_quiz

QUIZ = "module-04-prep"
# What a student must not see before submission, at any depth of a stored view.
KEY_FIELDS = {"answer", "correct", "correct_answer", "explanation", "explanation_html", "feedback", "mistake",
              "mistakes", "accepted", "buggy", "score"}


def forget_process_caches() -> None:
    banks._VARIANTS.clear()
    figures._CACHE.clear()
    render.markdown_to_html.cache_clear()


def user_id(db, name: str) -> int:
    with db.read() as s:
        return s.scalar(select(User.id).where(User.username == name))


def start(client, head) -> dict:
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=head)
    assert r.status_code == 201, r.json
    return r.json


def keys_in(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in keys_in(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in keys_in(v)}
    return set()


def test_served_from_the_cache_equals_rendered_now(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    first = start(client, head)  # rendered in the request, then stored
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Rendering)) == len(first["questions"]) == 20
    forget_process_caches()
    cached = client.get(f"/api/v1/attempts/{first['attempt_id']}", headers=head).json
    with db.write() as s:
        s.execute(delete(Rendering))
    forget_process_caches()
    fresh = client.get(f"/api/v1/attempts/{first['attempt_id']}", headers=head).json
    assert cached == fresh == first
    with db.read() as s:  # rendered again and stored again
        assert s.scalar(select(func.count()).select_from(Rendering)) == 20


def test_rendered_ahead_is_what_the_start_serves(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    report = warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    assert (report.students, report.questions, report.rendered) == (1, 20, 20)
    with db.read() as s:
        stored = {(r.item_version_id, r.seed): r.view for r in s.scalars(
            select(Rendering).where(Rendering.format == renderings.RENDER_FORMAT))}
    view = start(client, head)
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        keys = [(aq.item_version_id, aq.seed) for aq in a.questions]
        # the start drew exactly what was rendered ahead, and rendering it now gives the same view
        assert set(keys) == set(stored)
        for aq in a.questions:
            assert renderings.render(make_variant(banks.bank_item(aq.item_version), aq.seed)) == \
                stored[(aq.item_version_id, aq.seed)]
    assert warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"]).rendered == 0  # in progress: cached


def test_a_bank_edit_is_never_served_stale(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    with db.write() as s:  # an edit of one of the items the student will draw: a new version
        uid = s.scalar(select(User.id).where(User.username == "ann"))
        q = s.get(Quiz, QUIZ)
        old_id, _ = warming.upcoming(s, q, app.config["SECRET_KEY"], uid)[0]
        old = s.get(ItemVersion, old_id)
        data = dict(old.data, prompt="Edited after the warm: **new wording**.")
        new = ItemVersion(item_id=old.item_id, version="edited-0001", topic=old.topic, type=old.type, data=data,
                          bank_source=old.bank_source, created_at=now())
        s.add(new)
        s.flush()
        s.scalar(select(CurrentItem).where(CurrentItem.item_id == old.item_id)).item_version_id = new.id
    try:
        view = start(client, head)
        prompts = [q["prompt_html"] for q in view["questions"]]
        assert sum("Edited after the warm" in p for p in prompts) == 1
        with db.read() as s:
            a = s.get(Attempt, view["attempt_id"])
            assert new.id in {aq.item_version_id for aq in a.questions}
            assert old_id not in {aq.item_version_id for aq in a.questions}
    finally:  # PostgreSQL keeps the item tables across tests: put the bank back as it was
        with db.write() as s:
            s.execute(delete(AttemptQuestion).where(AttemptQuestion.item_version_id == new.id))
            s.execute(delete(Rendering).where(Rendering.item_version_id == new.id))
            s.scalar(select(CurrentItem).where(CurrentItem.item_id == old.item_id)).item_version_id = old_id
            s.execute(delete(ItemVersion).where(ItemVersion.id == new.id))


def test_a_new_render_format_ignores_old_rows(app, client, db, users, monkeypatch):
    users.add("ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    with db.read() as s:
        keys = [(r.item_version_id, r.seed) for r in s.scalars(select(Rendering))]
        assert len(renderings.lookup(s, keys)) == 20
        monkeypatch.setattr(renderings, "RENDER_FORMAT", renderings.RENDER_FORMAT + 1)
        assert renderings.lookup(s, keys) == {} and renderings.stored(s, keys) == set()


def test_rows_of_an_earlier_format_are_pruned_when_the_banks_load(app, client, db, users, monkeypatch, runner):
    users.add("ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    with db.read() as s:  # the views and figures (the grading keys have a format of their own)
        before = s.scalar(select(func.count()).select_from(Rendering).where(Rendering.format != renderings.KEY_FORMAT))
    assert before >= 20
    assert renderings.prune(db) == 0  # nothing of an earlier format yet
    monkeypatch.setattr(renderings, "RENDER_FORMAT", renderings.RENDER_FORMAT + 1)  # a new renderer
    monkeypatch.setattr(renderings, "BATCH", 1)  # several batches
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])  # rows in the new format beside the old
    for name in ("DATABASE_URL", "SECRET_KEY", "INSTANCE", "BANKS"):
        monkeypatch.setenv(f"QUIZENGINE_{name}", str(app.config[name]))
    result = runner.invoke(main, ["load-banks"])
    assert result.exit_code == 0, result.output
    assert f"rendering cache: dropped {before} rows of an earlier format" in result.stderr
    with db.read() as s:
        formats = set(s.scalars(select(Rendering.format)))
        assert formats <= {renderings.RENDER_FORMAT, -renderings.RENDER_FORMAT, renderings.KEY_FORMAT}
        assert {renderings.RENDER_FORMAT, renderings.KEY_FORMAT} <= formats
        keys = [(r.item_version_id, r.seed) for r in s.scalars(select(Rendering))]
        assert len(renderings.lookup(s, keys)) == 20
        kept = s.scalar(select(func.count()).select_from(Rendering).where(Rendering.format == renderings.KEY_FORMAT))
    assert kept >= 5
    monkeypatch.setattr(renderings, "KEY_FORMAT", renderings.KEY_FORMAT + 1)  # a new grading key
    assert renderings.prune(db) == kept


def test_no_answer_key_in_the_cache(app, client, db, users):
    for name in ("ann", "bob", "cy"):
        users.add(name)
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ)
    with db.read() as s:
        views = list(s.scalars(select(Rendering.view).where(Rendering.format == renderings.RENDER_FORMAT)))
    assert len(views) == 60
    for view in views:
        assert not keys_in(view) & KEY_FIELDS, view["id"]
    # a figure that would give the key away (an optimizer's path) is not drawn before submission
    item = load_catalog([BANKS]).items["opt-quad-gd-3-steps"]
    assert renderings.render(make_variant(item, 7))["figures"] == []


def test_warm_skips_students_who_may_not_start(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    for _ in range(2):  # max_attempts: 2
        a = start(client, head)
        assert client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=head).status_code == 200
    assert warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"]).questions == 0


def test_warm_student_renders_only_open_quizzes(app, client, db, users):
    users.add("ann")
    set_quiz(db, opens_at=now() + timedelta(days=1))
    assert warming.warm_student(db, app.config["SECRET_KEY"], user_id(db, "ann")) == 0
    set_quiz(db, opens_at=None)
    assert warming.warm_student(db, app.config["SECRET_KEY"], user_id(db, "ann")) == 20


def test_concurrent_starts_of_one_student_make_one_attempt(app, db, users):
    users.add("ann")
    head = users.token(app.test_client(), "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def go() -> None:
        c = app.test_client()
        barrier.wait()
        codes.append(c.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=head).status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 409, 409, 409]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 1


def test_warm_command_shows_progress_and_reruns_cheaply(app, users, runner, monkeypatch):
    for name in ("ann", "bob"):
        users.add(name)
    monkeypatch.setenv("QUIZENGINE_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("QUIZENGINE_SECRET_KEY", app.config["SECRET_KEY"])
    monkeypatch.setenv("QUIZENGINE_INSTANCE", app.config["INSTANCE"])
    r = runner.invoke(main, ["warm", QUIZ])
    assert r.exit_code == 0, r.output
    assert "rendered 40/40 questions" in r.stderr
    assert (f"{QUIZ}: 2 students, 40 questions in their next attempts, 40 rendered now (0 were cached); "
            "2 attempts planned now") in r.stdout
    r = runner.invoke(main, ["warm", QUIZ, "--student", "ann"])
    assert r.exit_code == 0 and "1 students, 20 questions in their next attempts, 0 rendered now" in r.stdout
    assert "; 0 attempts planned now" in r.stdout  # planned already, on the same basis
    r = runner.invoke(main, ["warm", "no-such-quiz"])
    assert r.exit_code == 2 and "no-such-quiz" in r.stderr


def test_warm_student_renders_nothing_for_an_instructor(app, db, users):
    users.add("tom", role="instructor")
    assert warming.warm_student(db, app.config["SECRET_KEY"], user_id(db, "tom")) == 0


def test_solutions_rendered_ahead_are_served_only_with_feedback(app, client, db, users):
    users.add("ann")
    head = users.token(client, "ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ, ["ann"])
    view = start(client, head)
    assert not keys_in(view) & KEY_FIELDS  # the open attempt: no solution, no key
    with db.write() as s:  # a marker in every stored solution shows where the result's come from
        for r in s.scalars(select(Rendering).where(Rendering.format == renderings.RENDER_FORMAT)):
            assert r.solution_html  # rendered ahead with the view
            r.solution_html = "<p>stored solution</p>" + r.solution_html
    result = client.post(f"/api/v1/attempts/{view['attempt_id']}/submit", headers=head).json
    assert all(q["explanation_html"].startswith("<p>stored solution</p>") for q in result["questions"])
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        for q, aq in zip(result["questions"], a.questions):
            rendered_now = make_variant(banks.bank_item(aq.item_version), aq.seed).explanation_html
            assert q["explanation_html"] == "<p>stored solution</p>" + rendered_now


def test_results_draw_no_plot_when_rendered_ahead(app, client, db, users, monkeypatch):
    # a student whose attempt holds a plot shown only after submission (an optimizer's path)
    names = [f"s{i}" for i in range(12)]
    for name in names:
        users.add(name)
    warming.warm_quiz(db, app.config["SECRET_KEY"], QUIZ)

    def later(iv_id: int) -> bool:
        with db.read() as s:
            return any(f.get("when") == "after_submission" for f in s.get(ItemVersion, iv_id).data.get("figures", []))

    name = keys = None
    for name in names:
        with db.read() as s:
            keys = warming.upcoming(s, s.get(Quiz, QUIZ), app.config["SECRET_KEY"], user_id(db, name))
        if any(later(iv) for iv, _ in keys):
            break
    else:
        raise AssertionError("no student drew an item with an after-submission figure")
    with db.read() as s:  # rendered ahead into rows of their own, apart from the views a start reads
        after = renderings.figures_after(s, keys)
        assert set(after) == {k for k in keys if later(k[0])}
        assert all(f["when"] == "after_submission" for figs in after.values() for f in figs)
    head = users.token(client, name)
    view = start(client, head)
    assert all(f["when"] == "always" for q in view["questions"] for f in q.get("figures", []))
    assert client.post(f"/api/v1/attempts/{view['attempt_id']}/submit", headers=head).status_code == 200
    forget_process_caches()

    def boom(*args, **kwargs):
        raise AssertionError("a plot was drawn for the results")

    monkeypatch.setattr(figures.drawer, "svg", boom)
    result = client.get(f"/api/v1/attempts/{view['attempt_id']}", headers=head).json
    monkeypatch.undo()
    with db.read() as s:
        a = s.get(Attempt, view["attempt_id"])
        for q, aq in zip(result["questions"], a.questions):  # the same figures, in the item's order, as drawn now
            v = make_variant(banks.bank_item(aq.item_version), aq.seed)
            assert q.get("figures", []) == [f.data() for f in figures.build(v)]
    assert any(f["when"] == "after_submission" for q in result["questions"] for f in q.get("figures", []))


@pytest.mark.skipif(POSTGRES, reason="SQLite's page cache; PostgreSQL keeps its own")
def test_sqlite_connections_keep_a_small_page_cache(db):
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
