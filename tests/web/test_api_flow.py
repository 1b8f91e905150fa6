"""The student flow through the JSON API, and the attempt rules of the server."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from quizengine.bank.params import plain
from quizengine.models import Attempt
from quizengine.services.attempts import question_id
from quizengine.services.closing import expire_due

from .conftest import set_quiz

QUIZ = "module-04-prep"


def start(client, headers, quiz=QUIZ):
    return client.post(f"/api/v1/quizzes/{quiz}/attempts", headers=headers)


def key_of(client, users, attempt_id):
    users.add("teacher", "instructor")
    r = client.get(f"/api/v1/attempts/{attempt_id}/key", headers=users.token(client, "teacher"))
    assert r.status_code == 200
    return {q["id"]: q["answer"] for q in r.json["questions"]}


def test_token_and_quiz_list(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    r = client.get("/api/v1/quizzes", headers=h)
    assert r.status_code == 200
    (quiz,) = [q for q in r.json if q["id"] == QUIZ]
    assert quiz == {**quiz, "opens_at": None, "closes_at": None, "time_limit_s": None, "max_attempts": 2,
                    "attempts_used": 0}
    assert client.post("/api/v1/auth/token", json={"username": "ann", "password": "nope-nope"}).status_code == 401


def test_full_attempt_scores_exactly_from_the_key(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    r = start(client, h)
    assert r.status_code == 201
    a = r.json
    assert len(a["questions"]) == 20 and a["expires_at"] is None
    key = key_of(client, users, a["attempt_id"])
    ids = [q["id"] for q in a["questions"]]
    # answer the first 12 right, leave the rest unanswered
    for i, qid in enumerate(ids[:12]):
        r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", headers=h,
                       json={"response": key[qid], "seq": i + 1})
        assert r.status_code == 200, r.json
        assert "saved_at" in r.json
    got = client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).json
    assert got["state"] == "open"
    assert [q["response"] for q in got["questions"][:12]] == [key[q] for q in ids[:12]]
    r = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h)
    assert r.status_code == 200
    points = {q["id"]: q["max_score"] for q in r.json["questions"]}
    assert r.json["score"] == pytest.approx(sum(points[q] for q in ids[:12]))
    assert r.json["max_score"] == pytest.approx(sum(points.values()))
    by_id = {q["id"]: q for q in r.json["questions"]}
    assert all(by_id[q]["score"] == by_id[q]["max_score"] for q in ids[:12])
    assert all(by_id[q]["score"] == 0 for q in ids[12:])
    # a second submit returns the same result and changes nothing
    again = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h)
    assert again.json == r.json


def test_wrong_answers_score_zero_and_buggy_ones_are_named(client, users, app):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    with app.extensions["quizengine.db"].read() as s:
        attempt = s.get(Attempt, a["attempt_id"])
        from quizengine.services.banks import variant_of

        named = None
        for aq in attempt.questions:
            v = variant_of(aq.item_version, aq.seed)
            if v.type == "numeric" and v.buggy:
                named = (question_id(aq), next(iter(v.buggy.items())))
                break
    assert named, "module-04-prep draws at least one numeric item with a buggy-calculator mistake"
    qid, (mistake, value) = named
    client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", headers=h, json={"response": plain(value)})
    res = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h).json
    q = next(q for q in res["questions"] if q["id"] == qid)
    assert q["score"] == 0 and q["mistake"] == mistake and "what you get if you" in q["feedback"]


def test_stale_seq_is_refused_and_equal_seq_is_idempotent(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    url = f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}"
    assert client.put(url, headers=h, json={"response": "1", "seq": 5}).status_code == 200
    assert client.put(url, headers=h, json={"response": "1", "seq": 5}).status_code == 200
    assert client.put(url, headers=h, json={"response": "2", "seq": 6}).status_code == 200
    r = client.put(url, headers=h, json={"response": "3", "seq": 4})
    assert r.status_code == 409 and "stale" in r.json["error"]
    got = client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).json
    assert next(q for q in got["questions"] if q["id"] == qid)["response"] == "2"


def test_max_attempts_then_403(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    for _ in range(2):
        a = start(client, h).json
        client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h)
    r = start(client, h)
    assert r.status_code == 403 and "attempts are used" in r.json["error"]


def test_one_open_attempt_at_a_time(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    assert start(client, h).status_code == 201
    assert start(client, h).status_code == 409


@pytest.mark.parametrize("opens,closes,message", [
    (timedelta(hours=1), None, "not open yet"),
    (None, timedelta(hours=-1), "closed"),
])
def test_window_is_enforced(client, users, db, opens, closes, message):
    t = datetime.now(timezone.utc)
    set_quiz(db, opens_at=t + opens if opens else None, closes_at=t + closes if closes else None)
    users.add("ann")
    r = start(client, users.token(client, "ann"))
    assert r.status_code == 403 and message in r.json["error"]


def test_time_limit_expiry_submits_what_was_saved(client, users, db, app):
    set_quiz(db, time_limit_s=600)
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    assert a["expires_at"] is not None
    key = key_of(client, users, a["attempt_id"])
    first = a["questions"][0]["id"]
    client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{first}", headers=h, json={"response": key[first]})
    # time passes: the sweeper submits it without the student coming back
    later = datetime.now(timezone.utc) + timedelta(seconds=601)
    assert expire_due(db, later) == 1
    with db.read() as s:
        att = s.get(Attempt, a["attempt_id"])
        assert att.state == "expired" and att.score == pytest.approx(att.questions[0].points)
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{first}", headers=h, json={"response": "x"})
    assert r.status_code == 409
    assert client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).json["state"] == "expired"


def test_close_time_caps_the_attempt(client, users, db):
    closes = datetime.now(timezone.utc) + timedelta(minutes=5)
    set_quiz(db, time_limit_s=3600, closes_at=closes)
    users.add("ann")
    a = start(client, users.token(client, "ann")).json
    assert datetime.fromisoformat(a["expires_at"]) == closes


@pytest.mark.parametrize("policy,expected", [("best", 2.0), ("last", 1.0), ("mean", 1.5)])
def test_score_policy_in_the_csv(client, users, db, policy, expected):
    set_quiz(db, score_policy=policy)
    users.add("ann", full_name="Ann A", student_id="S1")
    users.add("bob")
    h = users.token(client, "ann")
    scores = []
    for n_right in (2, 1):
        a = start(client, h).json
        # only 1-point questions, so the score is the count of right answers
        one_point = [q["id"] for q in a["questions"] if q["points"] == 1.0][:n_right]
        key = key_of_attempt(client, users, a["attempt_id"])
        for qid in one_point:
            client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", headers=h, json={"response": key[qid]})
        scores.append(client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h).json["score"])
    assert scores == [2.0, 1.0]
    teacher = users.token(client, "teacher")
    r = client.get(f"/api/v1/quizzes/{QUIZ}/grades.csv", headers=teacher)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["username"] for row in rows] == ["ann", "bob"]
    ann, bob = rows
    assert float(ann["score"]) == expected and ann["attempts"] == "2" and ann["full_name"] == "Ann A"
    assert ann["percent"] == f"{100 * expected / float(ann['max_score']):.2f}"
    assert bob["score"] == "" and bob["attempts"] == "0"


def key_of_attempt(client, users, attempt_id):
    with_teacher = users.app.extensions["quizengine.db"]
    from quizengine.models import User

    with with_teacher.read() as s:
        exists = s.query(User).filter_by(username="teacher").count()
    if not exists:
        users.add("teacher", "instructor")
    r = client.get(f"/api/v1/attempts/{attempt_id}/key", headers=users.token(client, "teacher"))
    return {q["id"]: q["answer"] for q in r.json["questions"]}


def test_students_cannot_see_each_others_attempts_or_instructor_endpoints(client, users):
    users.add("ann")
    users.add("bob")
    ha, hb = users.token(client, "ann"), users.token(client, "bob")
    a = start(client, ha).json
    aid, qid = a["attempt_id"], next(q["id"] for q in a["questions"] if q["type"] == "numeric")
    assert client.get(f"/api/v1/attempts/{aid}", headers=hb).status_code == 404
    assert client.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=hb, json={"response": 1}).status_code == 404
    assert client.post(f"/api/v1/attempts/{aid}/submit", headers=hb).status_code == 404
    assert client.get(f"/api/v1/attempts/{aid}/key", headers=ha).status_code == 403
    assert client.get(f"/api/v1/quizzes/{QUIZ}/grades.csv", headers=ha).status_code == 403


def test_no_key_in_any_response_before_submission(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h)
    key = key_of(client, users, a.json["attempt_id"])
    bodies = [a.get_data(as_text=True), client.get(f"/api/v1/attempts/{a.json['attempt_id']}", headers=h).get_data(as_text=True)]
    for body in bodies:
        data = json.loads(body)
        for q in data["questions"]:
            assert not {"answer", "correct", "correct_answer", "explanation_html", "mistake", "feedback"} & set(q)
            for c in q.get("choices", []):
                assert set(c) == {"id", "text", "html"}
        assert '"correct' not in body and "explanation" not in body
    from .test_security import given_inputs, key_values_visible

    own = {q["id"]: json.dumps(q) for q in a.json["questions"]}
    key_questions = client.get(f"/api/v1/attempts/{a.json['attempt_id']}/key",
                               headers=users.token(client, "teacher")).json["questions"]
    assert key_values_visible(key, bodies, own, given_inputs(key_questions)) == []


def test_concurrent_submits_grade_once(client, users, app):
    users.add("ann")
    h = users.token(client, "ann")
    aid = start(client, h).json["attempt_id"]
    results, errors = [], []

    def submit():
        try:
            with app.test_client() as c:
                results.append(c.post(f"/api/v1/attempts/{aid}/submit", headers=h))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(r.status_code == 200 for r in results)
    assert len({json.dumps(r.json, sort_keys=True) for r in results}) == 1
    with app.extensions["quizengine.db"].read() as s:
        assert s.get(Attempt, aid).state == "submitted"


def test_concurrent_starts_cannot_exceed_max_attempts(client, users, app, db):
    set_quiz(db, max_attempts=1)
    users.add("ann")
    h = users.token(client, "ann")
    codes = []

    def go():
        with app.test_client() as c:
            codes.append(c.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes).count(201) == 1 and all(c in (201, 403, 409) for c in codes)
    with db.read() as s:
        assert s.query(Attempt).count() == 1


@pytest.mark.parametrize("body,status,message", [
    ("not json", 400, "JSON object"),
    ("[1, 2]", 400, "JSON object"),
    ('{"seq": 1}', 400, "response"),
    ('{"response": "x", "seq": "one"}', 400, "seq"),
    ('{"response": "x", "seq": -1}', 400, "seq"),
    ('{"response": "x", "extra": 1}', 400, "unknown fields"),
    ('{"response": NaN}', None, None),  # per item type: see below
])
def test_malformed_save_requests(client, users, body, status, message):
    users.add("ann")
    h = {**users.token(client, "ann"), "Content-Type": "application/json"}
    a = start(client, h).json
    numeric = next(q for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{numeric['id']}", headers=h, data=body)
    if status is None:
        assert r.status_code == 400 and "numeric response" in r.json["error"]
    else:
        assert r.status_code == status and message in r.json["error"]


def test_unknown_question_attempt_and_wrong_type(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    aid = a["attempt_id"]
    assert client.put(f"/api/v1/attempts/{aid}/responses/nope", headers=h, json={"response": 1}).status_code == 404
    assert client.get("/api/v1/attempts/999999", headers=h).status_code == 404
    assert client.get("/api/v1/attempts/abc", headers=h).status_code == 404
    choice = next(q for q in a["questions"] if q["type"] == "single_choice")
    r = client.put(f"/api/v1/attempts/{aid}/responses/{choice['id']}", headers=h, json={"response": {"a": 1}})
    assert r.status_code == 400 and "choice id" in r.json["error"]


def test_numeric_format_error_is_saved_and_reported(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    numeric = next(q for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{numeric['id']}", headers=h, json={"response": "1,5"})
    assert r.status_code == 200 and "decimal separator" in r.json["format_error"]


def test_oversized_body_is_413_json(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric")
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}", headers=h,
                   json={"response": "x" * 100_000})
    assert r.status_code == 413 and r.is_json and "too large" in r.json["error"]


def test_openapi_document(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.json["openapi"].startswith("3.")
    paths = r.json["paths"]
    for p in ["/auth/token", "/quizzes", "/quizzes/{quiz_id}/attempts", "/attempts/{attempt_id}",
              "/attempts/{attempt_id}/responses/{question_id}", "/attempts/{attempt_id}/submit",
              "/attempts/{attempt_id}/key", "/quizzes/{quiz_id}/grades.csv"]:
        assert p in paths


def test_api_errors_are_json_never_html(client, users):
    for method, url in [("get", "/api/v1/nope"), ("delete", "/api/v1/quizzes"), ("get", "/api/v1/quizzes")]:
        r = getattr(client, method)(url)
        assert r.is_json and "error" in r.json and r.status_code in (401, 404, 405)
