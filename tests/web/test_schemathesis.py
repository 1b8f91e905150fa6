"""A bounded, deterministic schemathesis run of /api/v1 against its own OpenAPI document.

Every operation of the document served at GET /api/v1/openapi.json is one test, run in-process
against the WSGI app (no network): schemathesis' coverage phase (a fixed set of boundary and
invalid values) and then MAX_EXAMPLES Hypothesis examples, valid and invalid, from a fixed seed,
derandomized. Requests carry a student's bearer token, or an instructor's on the instructor-only
operations. Real attempts exist (one submitted with some answers, one open) and their ids, their
question ids and the quiz id are mixed into the generated path parameters, so that attempt paths
are sometimes valid and reach the real views.

Each response must pass these checks (README, "JSON API"): no 5xx, a status code documented for the
operation, a documented content type and headers, and a body that validates against the documented
schema. A failure names the check and prints a curl command that reproduces the request.
"""

from __future__ import annotations

import jsonschema_rs
import pytest
import schemathesis
from flask import jsonify
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup

from quizengine.web.openapi import openapi_document

QUIZ = "module-04-prep"
SEED = 20240604  # fixed: the same cases on every run and every machine
MAX_EXAMPLES = 30  # Hypothesis examples per operation, after the coverage phase's fixed cases
INSTRUCTOR_PATHS = ("/attempts/{attempt_id}/key", "/quizzes/{quiz_id}/grades.csv", "/quizzes/{quiz_id}/accommodations",
                    "/quizzes/{quiz_id}/accommodations/{username}", "/quizzes/{quiz_id}/accommodation-groups/{group}")
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance]
CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
})

# The document the app serves (the fixture below checks that), loaded at collection so that every
# operation becomes its own test item.
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)

# Filled per test by the `accounts` fixture: bearer tokens and the ids of real attempts. Generation
# runs inside the test, after the fixture; the coverage phase's cases are fixed at collection.
REAL: dict = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Keep the generated path parameters, or swap in a real attempt, question or quiz id."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = [path_parameters]
    for attempt_id in REAL["attempts"]:
        real = {"attempt_id": attempt_id, "quiz_id": QUIZ}
        choices.append({**path_parameters, **{k: v for k, v in real.items() if k in path_parameters}})
    if "question_id" in path_parameters:
        choices += [{**c, "question_id": q} for c in choices[1:] for q in REAL["questions"][:3]]
    return st.sampled_from(choices)


@pytest.fixture
def accounts(app, client, users):
    assert client.get("/api/v1/openapi.json").json == openapi_document()
    for name, role in (("fuzz-student", "student"), ("fuzz-newcomer", "student"), ("fuzz-teacher", "instructor")):
        users.add(name, role)
    tokens = {name: users.token(client, name) for name in ("fuzz-student", "fuzz-newcomer", "fuzz-teacher")}
    student = tokens["fuzz-student"]
    first = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=student).json
    key = client.get(f"/api/v1/attempts/{first['attempt_id']}/key", headers=tokens["fuzz-teacher"]).json
    for q in key["questions"][:5]:
        r = client.put(f"/api/v1/attempts/{first['attempt_id']}/responses/{q['id']}", headers=student,
                       json={"response": q["answer"]})
        assert r.status_code == 200, r.json
    assert client.post(f"/api/v1/attempts/{first['attempt_id']}/submit", headers=student).status_code == 200
    second = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=student)
    assert second.status_code == 201, second.json
    REAL.update(tokens=tokens, attempts=[second.json["attempt_id"], first["attempt_id"]],
                questions=[q["id"] for q in second.json["questions"]])
    yield
    REAL.clear()


def token_for(path: str) -> dict[str, str]:
    if path in INSTRUCTOR_PATHS:
        return REAL["tokens"]["fuzz-teacher"]
    if path == "/quizzes/{quiz_id}/attempts":  # a student with attempts left and none in progress
        return REAL["tokens"]["fuzz-newcomer"]
    return REAL["tokens"]["fuzz-student"]


# The app, the accounts and the attempts are made once per operation and shared by its examples.
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_openapi_document(case, app, accounts):
    case.call_and_validate(app=app, headers=token_for(case.operation.path), checks=CHECKS)


def test_the_checks_catch_a_500_an_undocumented_status_and_a_wrong_body(app, monkeypatch):
    """The checks above are not vacuous."""
    op = schema["/quizzes"]["GET"]
    for status, body in ((500, []), (418, []), (200, [{"id": 1}])):
        monkeypatch.setitem(app.view_functions, "api.quizzes", lambda s=status, b=body: (jsonify(b), s))
        with pytest.raises(FailureGroup):
            op.Case().call_and_validate(app=app, checks=CHECKS)


@pytest.mark.parametrize("body", [
    {"response": None}, {"response": None, "seq": 3}, {"response": None, "seq": 3.0},
    {"response": None, "seq": None}, {"response": None, "seq": 2**31},
    {"response": None, "seq": 1_790_000_000_000},  # Date.now() in ms, as the attempt page sends it
    {"response": None, "seq": 2**53 - 1}, {"response": None, "seq": 2**53},
    {"response": None, "seq": -1}, {"response": None, "seq": 1.5},
    {"response": None, "seq": True}, {"response": None, "seq": "3"}, {"response": None, "other": 1}, {},
])
def test_autosave_accepts_exactly_the_documented_bodies(client, users, body):
    """What the document's request schema allows is what the view takes, and the rest is a 400."""
    documented = openapi_document()["paths"]["/attempts/{attempt_id}/responses/{question_id}"]["put"]
    valid = jsonschema_rs.validator_for(documented["requestBody"]["content"]["application/json"]["schema"])
    users.add("ann")
    h = users.token(client, "ann")
    attempt_id = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json["attempt_id"]
    r = client.put(f"/api/v1/attempts/{attempt_id}/responses/q1", headers=h, json=body)
    assert r.status_code == (200 if valid.is_valid(body) else 400), r.json


DEEP = "[" * 5000 + "]" * 5000  # deeper than the JSON parser's recursion limit


def nested(value, depth: int):
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("who,method,url,kw,status", [
    pytest.param("student", "get", "/attempts/%C2%B2", {}, 404, id="superscript-digit-id"),  # "²".isdigit()
    pytest.param("student", "get", "/attempts/2147483648", {}, 404, id="id-beyond-int32"),  # PostgreSQL INTEGER
    pytest.param("student", "post", "/attempts/99999999999999/submit", {}, 404, id="submit-huge-id"),
    pytest.param("teacher", "get", "/attempts/99999999999999/key", {}, 404, id="key-huge-id"),
    pytest.param("student", "put", "/attempts/99999999999999/responses/q1", {"json": {"response": None}}, 404,
                 id="save-huge-id"),
    pytest.param("student", "post", "/quizzes/%00/attempts", {}, 404, id="nul-quiz-id"),  # PostgreSQL text
    pytest.param("teacher", "get", "/quizzes/a%00b/grades.csv", {}, 404, id="nul-quiz-id-grades"),
    pytest.param(None, "post", "/auth/token", {"json": {"username": "a\x00b", "password": "x"}}, 401,
                 id="nul-username"),
    pytest.param(None, "post", "/auth/token", {"json": {"username": "a" * 400, "password": "x"}}, 401,
                 id="username-longer-than-its-column"),
    pytest.param(None, "post", "/auth/token", {"data": '{"username": ' + DEEP + "}"}, 400, id="token-deep-json"),
    pytest.param("student", "put", "/attempts/{aid}/responses/q1", {"data": '{"response": ' + DEEP + "}"}, 400,
                 id="save-deep-json"),
    pytest.param("student", "put", "/attempts/{aid}/responses/q6", {"json": {"response": nested(1, 33)}}, 400,
                 id="response-nested-33-deep"),
    pytest.param("student", "put", "/attempts/{aid}/responses/q6", {"json": {"response": 10**400}}, 400,
                 id="integer-beyond-float64"),
    pytest.param("student", "put", "/attempts/{aid}/responses/q6", {"json": {"response": [1, -10**400]}}, 400,
                 id="integer-beyond-float64-in-a-list"),
    pytest.param("student", "put", "/attempts/{aid}/responses/q6", {"json": {"response": 1, "seq": 2**53}}, 400,
                 id="seq-beyond-2-to-53"),
])
def test_hostile_input_gets_a_json_4xx(client, users, who, method, url, kw, status):
    """Inputs that gave a 500 (found by the run above on PostgreSQL, or by probing around what it found)."""
    users.add("fuzz-student", "student")
    users.add("fuzz-teacher", "instructor")
    headers = {"student": users.token(client, "fuzz-student"), "teacher": users.token(client, "fuzz-teacher"),
               None: {}}[who]
    aid = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=headers).json["attempt_id"] \
        if who == "student" else None
    if "data" in kw:
        headers = {**headers, "Content-Type": "application/json"}
    r = getattr(client, method)("/api/v1" + url.format(aid=aid), headers=headers, **kw)
    assert (r.status_code, r.is_json) == (status, True), r.data[:200]
    assert "error" in r.json
