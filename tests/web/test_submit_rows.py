"""The submit path reads the attempt as rows (services/attempt_rows), not ORM objects (issue 14):
what it grades, stores and answers must be what the ORM path (the attempt page's view, the
in-transaction grading of ``expire_if_due``) gives for the same attempt, field for field; and the
background warmer renders a submitter's next attempt only once this worker's submits pause."""

from __future__ import annotations

import numpy as np
import pytest

from sqlalchemy import delete, select

from quizengine.bank.catalog import load_catalog
from quizengine.models import User
from quizengine.models_rendering import Rendering
from quizengine.services import warming
from quizengine.services.attempts import read_attempt
from quizengine.services.banks import variant_of
from quizengine.services.renderings import RENDER_FORMAT
from quizengine.services.grades import grade_question

from .conftest import BANKS, set_quiz
from .test_api_flow import start
from .test_multipart import slipped_chain


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def _slipped(answer):
    """A wrong answer of the key's shape where one is easy to make (numbers off by 10% and 0.5)."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return answer * 1.1 + 0.5
    if isinstance(answer, list) and answer and all(isinstance(x, (int, float)) for x in np.ravel(answer)):
        return (np.asarray(answer, dtype=float) * 1.1 + 0.5).tolist()
    return answer


def _answer(client, users, catalog, h, a) -> None:
    """Answer an attempt: right, then slipped, in turn; the last two questions unanswered; a chain
    with a slip in its first part and the rest right for it (ECF)."""
    aid = a["attempt_id"]
    with users.app.extensions["quizengine.db"].read() as s:
        if s.scalar(select(User.id).where(User.username == "teacher")) is None:
            users.add("teacher", "instructor")
    key = {q["id"]: q for q in client.get(f"/api/v1/attempts/{aid}/key",
                                          headers=users.token(client, "teacher")).json["questions"]}
    ids = [q["id"] for q in a["questions"]]
    kinds = {q["id"]: q["type"] for q in a["questions"]}
    for i, qid in enumerate(ids[:-2]):
        value = key[qid]["answer"] if i % 2 == 0 else _slipped(key[qid]["answer"])
        if kinds[qid] == "multipart":
            value = slipped_chain(catalog, key[qid])
        r = client.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, json={"response": value, "seq": 1})
        assert r.status_code == 200, r.json


@pytest.mark.parametrize("feedback", ["after_submission", "never"])
def test_submit_answers_what_the_orm_path_shows_and_stores_what_it_grades(client, users, db, catalog, feedback):
    set_quiz(db, feedback=feedback)
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    aid = a["attempt_id"]
    ids = [q["id"] for q in a["questions"]]
    _answer(client, users, catalog, h, a)
    r = client.post(f"/api/v1/attempts/{aid}/submit", headers=h)
    assert r.status_code == 200, r.json
    result = r.json

    # The scores stored are those the ORM-loaded grading gives for each stored response.
    with db.read() as s:
        att = read_attempt(s, aid)
        for aq in att.questions:
            score, graded = grade_question(variant_of(aq.item_version, aq.seed), aq.points,
                                           aq.response.value if aq.response is not None else None)
            assert (aq.score, aq.result) == (score, graded)
        assert att.score == pytest.approx(sum(aq.score for aq in att.questions))
        assert result["score"] == att.score and result["max_score"] == att.max_score
    assert sum(q["score"] for q in result["questions"]) == pytest.approx(result["score"])
    assert [q["score"] > 0 for q in result["questions"][-2:]] == [False, False]

    # Each question of the result is what the attempt's own view (the ORM path) shows for it.
    view = client.get(f"/api/v1/attempts/{aid}", headers=h).json
    assert [q["id"] for q in result["questions"]] == [q["id"] for q in view["questions"]] == ids
    for got, shown in zip(result["questions"], view["questions"]):
        if feedback == "after_submission":
            assert {k: shown[k] for k in got} == got
            assert {"correct_answer", "explanation_html", "accepted"} <= set(got)
        else:
            assert got == {"id": shown["id"], "score": shown["score"], "max_score": shown["max_score"],
                           "feedback": ""}
    if feedback == "after_submission":
        chain = [q for q, a_q in zip(result["questions"], a["questions"]) if a_q["type"] == "multipart"]
        assert chain and all(q["part_results"] for q in chain)
        assert any(p["ecf"] for q in chain for p in q["part_results"])  # the slip's error carried forward
    assert client.post(f"/api/v1/attempts/{aid}/submit", headers=h).json == result  # idempotent


def test_submit_results_use_what_was_rendered_ahead_and_equal_those_rendered_now(client, users, db, app, catalog,
                                                                                 monkeypatch):
    """The submit reads each explanation and a chain's part prompts as rendered ahead (the rendering
    cache) instead of rendering them; its results are what the attempt page renders from nothing."""
    from quizengine.bank import render
    from quizengine.bank.types import multipart_review

    set_quiz(db, feedback="after_submission")
    users.add("ann")
    warming.warm_quiz(db, app.config["SECRET_KEY"], "module-04-prep", ["ann"])  # views and worked solutions
    h = users.token(client, "ann")
    a = start(client, h).json
    aid = a["attempt_id"]
    _answer(client, users, catalog, h, a)
    with db.read() as s:
        cached = s.execute(select(Rendering.solution_html, Rendering.view).where(Rendering.format == RENDER_FORMAT)).all()
    assert len(cached) == 20 and all(r.solution_html for r in cached)
    rendered: list[str] = []  # what the submit renders with Markdown for a chain's rows
    real = multipart_review.markdown_to_html
    monkeypatch.setattr(multipart_review, "markdown_to_html", lambda text: rendered.append(text) or real(text))
    result = client.post(f"/api/v1/attempts/{aid}/submit", headers=h).json
    chain = [q for q in result["questions"] if "part_results" in q]
    assert chain and all(p["prompt_html"] for q in chain for p in q["part_results"])
    prompts = {p["prompt_html"] for q in chain for p in q["part_results"]}
    assert not {render.markdown_to_html(t) for t in rendered} & prompts  # the part prompts came from the cache

    with db.write() as s:  # nothing rendered ahead any more, nor in this process
        s.execute(delete(Rendering))
    render.markdown_to_html.cache_clear()
    view = client.get(f"/api/v1/attempts/{aid}", headers=h).json
    assert [q["id"] for q in view["questions"]] == [q["id"] for q in result["questions"]]
    for got, shown in zip(result["questions"], view["questions"]):
        assert {k: shown[k] for k in got} == got


def test_a_student_may_not_submit_another_students_attempt(client, users):
    users.add("ann")
    users.add("bob")
    aid = start(client, users.token(client, "ann")).json["attempt_id"]
    r = client.post(f"/api/v1/attempts/{aid}/submit", headers=users.token(client, "bob"))
    assert r.status_code == 404 and "error" in r.json
    assert client.post("/api/v1/attempts/99999/submit", headers=users.token(client, "bob")).status_code == 404


@pytest.fixture
def warmer_queue(monkeypatch):
    """The warmer's queue as a running warmer has it, emptied before and after."""
    warming._QUEUE.clear()
    monkeypatch.setattr(warming, "_LAST_SUBMIT", [float("-inf")])
    monkeypatch.setattr(warming, "_LAST_LOGIN", [float("-inf")])
    warming._RUNNING.set()
    yield
    warming._RUNNING.clear()
    warming._QUEUE.clear()


def test_warmer_takes_logins_at_once_and_submits_once_they_pause(warmer_queue, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(warming.time, "monotonic", lambda: clock[0])
    warming.schedule(1, after_submit=True)
    clock[0] += 1
    warming.schedule(2, after_submit=True)
    warming.schedule(3)  # a login
    assert warming.next_due(clock[0]) is None  # logins still arriving
    clock[0] += warming.LOGIN_QUIET_S
    assert warming.next_due(clock[0]) == 3  # they paused
    assert warming.next_due(clock[0]) is None  # submits still arriving
    clock[0] -= warming.LOGIN_QUIET_S  # the last submit's time
    assert warming.next_due(clock[0] + warming.QUIET_S - 0.01) is None
    assert warming.next_due(clock[0] + warming.QUIET_S) == 1  # they paused: oldest first
    assert warming.next_due(clock[0] + warming.QUIET_S) == 2
    assert warming.next_due(clock[0] + warming.QUIET_S) is None


def test_warmer_waits_for_a_pause_at_most_its_patience(warmer_queue, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(warming.time, "monotonic", lambda: clock[0])
    warming.schedule(1, after_submit=True)
    for _ in range(int(warming.PATIENCE_S)):  # a submit every second: never a pause
        clock[0] += 1
        warming.schedule(2, after_submit=True)
        assert warming.next_due(clock[0]) in (None, 1)
        if not any(e[0] == 1 for e in warming._QUEUE):
            break
    assert clock[0] - 1000.0 == pytest.approx(warming.PATIENCE_S)
    assert warming.next_due(clock[0]) is None  # the second one waited less than that


def test_a_login_takes_a_submitters_queued_warm_at_once(warmer_queue, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(warming.time, "monotonic", lambda: clock[0])
    warming.schedule(1, after_submit=True)
    warming.schedule(1, after_submit=True)  # queued once
    assert len(warming._QUEUE) == 1 and warming.next_due(clock[0]) is None
    warming.schedule(1)  # then they log in again: their start may come soon
    assert len(warming._QUEUE) == 1 and warming.next_due(clock[0] + warming.LOGIN_QUIET_S) == 1


def test_the_results_page_reads_with_a_few_queries_however_many_questions(client, users, db, catalog):
    """The item versions of an attempt's 20 questions are read in one query, not one each (they were
    read into the session but dropped again by its weak identity map, then lazily loaded per question)."""
    from sqlalchemy import event

    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    _answer(client, users, catalog, h, a)
    assert client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h).status_code == 200
    users.login(client, "ann")
    selects: list[str] = []

    def log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(db.engine, "before_cursor_execute", log)
    try:
        page = client.get(f"/attempts/{a['attempt_id']}/result")
    finally:
        event.remove(db.engine, "before_cursor_execute", log)
    assert page.status_code == 200 and len(a["questions"]) == 20
    assert sum("FROM item_version" in q for q in selects) == 1, selects
    assert len(selects) < 20, selects
