"""A bounded, deterministic schemathesis run of /api/v1 against its own OpenAPI document.

Every operation of the document served at GET /api/v1/openapi.json is one test, run in-process
against the WSGI app (no network): schemathesis' coverage phase (a fixed set of boundary and
invalid values) and then MAX_EXAMPLES Hypothesis examples, valid and invalid, from a fixed seed,
derandomized. Requests carry a student's bearer token, or an instructor's on the instructor-only
operations. A real attempt is started first, and its id, its question ids and the quiz id are mixed
into the generated path parameters, so that attempt paths are sometimes valid and reach the views.

Each response must pass these checks (CONTRACT section 4): no 5xx, a status code documented for the
operation, a documented content type, and a body that validates against the documented schema. A
failure names the check and prints a curl command that reproduces the request.
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import jsonify
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from quizengine.web.openapi import openapi_document

QUIZ = "module-04-prep"
SEED = 20240604  # fixed: the same cases on every run and every machine
MAX_EXAMPLES = 25  # Hypothesis examples per operation, after the coverage phase's fixed cases
INSTRUCTOR_PATHS = ("/attempts/{attempt_id}/key", "/quizzes/{quiz_id}/grades.csv")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
})

# The document the app serves (the fixture below checks that it is this one), loaded at collection
# so that every operation becomes its own test item.
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)

# Filled per test by the `fuzz_accounts` fixture: bearer tokens and the ids of a real attempt.
REAL: dict = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Keep the generated path parameters, or swap in the real attempt, question and quiz ids."""
    if not path_parameters:
        return st.just(path_parameters)
    real = {k: v for k, v in REAL["ids"].items() if k in path_parameters}
    choices = [path_parameters, {**path_parameters, **real}]
    if "question_id" in path_parameters:
        choices += [{**path_parameters, **real, "question_id": q} for q in REAL["questions"][:3]]
    return st.sampled_from(choices)


@pytest.fixture
def fuzz_accounts(app, client, users):
    assert client.get("/api/v1/openapi.json").json == openapi_document()
    users.add("fuzz-student", "student")
    users.add("fuzz-teacher", "instructor")
    tokens = {"student": users.token(client, "fuzz-student")["Authorization"],
              "instructor": users.token(client, "fuzz-teacher")["Authorization"]}
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers={"Authorization": tokens["student"]})
    assert r.status_code == 201, r.json
    questions = [q["id"] for q in r.json["questions"]]
    REAL.update(tokens=tokens, questions=questions,
                ids={"attempt_id": r.json["attempt_id"], "question_id": questions[0], "quiz_id": QUIZ})
    yield
    REAL.clear()


# The app, accounts and attempt are made once per operation and shared by its examples, on purpose.
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_openapi_document(case, app, fuzz_accounts):
    role = "instructor" if case.operation.path in INSTRUCTOR_PATHS else "student"
    r = case.call_and_validate(app=app, headers={"Authorization": REAL["tokens"][role]}, checks=CHECKS)
    import collections, json as _j
    open("/tmp/stlog.txt", "a").write(_j.dumps([case.operation.label, case.meta.generation.mode.value if case.meta else None, case.path_parameters, r.status_code, str(r.content[:80])]) + "\n")


def test_the_checks_catch_a_500_an_undocumented_status_and_a_wrong_body(app, monkeypatch):
    """The checks above are not vacuous."""
    op = schema["/quizzes"]["GET"]
    for status, body in ((500, []), (418, []), (200, [{"id": 1}])):
        monkeypatch.setitem(app.view_functions, "api.quizzes", lambda s=status, b=body: (jsonify(b), s))
        with pytest.raises(FailureGroup):
            op.Case().call_and_validate(app=app, checks=CHECKS)
