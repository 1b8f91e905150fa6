"""A bounded, deterministic schemathesis run of /api/v1 against its own OpenAPI document.

Every operation of GET /api/v1/openapi.json is exercised in-process through the WSGI app (no
network): schemathesis' coverage phase (fixed boundary and invalid values, positive and negative)
and then a fixed number of Hypothesis examples per operation, from a fixed seed, derandomized.
Requests carry a student's bearer token, or an instructor's on the instructor-only operations; a
real attempt is started first and its id, its question ids and the quiz id are mixed into the
generated path parameters, so that attempt paths are sometimes valid and reach the real views.

Each response must pass these checks (CONTRACT section 4): no 5xx, the status code documented for
the operation, the documented content type, and a body that validates against the documented
schema. A failure names the check and gives a curl command that reproduces the request.
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask, jsonify
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

QUIZ = "module-04-prep"
SEED = 20240604  # fixed: the same cases on every run and every machine
MAX_EXAMPLES = 25  # Hypothesis examples per operation, after the coverage phase's fixed cases
INSTRUCTOR_PATHS = ("/attempts/{attempt_id}/key", "/quizzes/{quiz_id}/grades.csv")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = {
    "seed": SEED,
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
}
HYPOTHESIS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                      print_blob=False, suppress_health_check=[HealthCheck.too_slow])


def load_schema(app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app,
                                          config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture
def api_schema(app, client, users):
    users.add("fuzz-student", "student")
    users.add("fuzz-teacher", "instructor")
    tokens = {"student": users.token(client, "fuzz-student")["Authorization"],
              "instructor": users.token(client, "fuzz-teacher")["Authorization"]}
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers={"Authorization": tokens["student"]})
    assert r.status_code == 201, r.json
    real = {"attempt_id": r.json["attempt_id"], "question_id": [q["id"] for q in r.json["questions"]],
            "quiz_id": QUIZ}

    schema = load_schema(app)

    @schema.auth()
    class ByRole:
        """A student's token, or an instructor's on the instructor-only operations."""

        def get(self, case, ctx):
            return tokens["instructor" if ctx.operation.path in INSTRUCTOR_PATHS else "student"]

        def set(self, case, data, ctx):
            case.headers = {**(case.headers or {}), "Authorization": data}

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Keep the generated values, or swap in the real attempt, question and quiz ids."""
        if not path_parameters:
            return st.just(path_parameters)
        swapped = dict(path_parameters)
        for name, value in real.items():
            if name in swapped:
                swapped[name] = value
        choices = [path_parameters, swapped]
        if "question_id" in swapped:
            choices += [{**swapped, "question_id": q} for q in real["question_id"][:3]]
        return st.sampled_from(choices)

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@HYPOTHESIS
def test_api_conforms_to_its_openapi_document(case):
    case.call_and_validate(checks=CHECKS)


def test_the_run_can_fail(app, monkeypatch):
    """The checks above catch a 500 and an undocumented status: they are not vacuous."""
    schema = load_schema(app)
    op = schema["/quizzes"]["GET"]
    for status in (500, 418):
        monkeypatch.setitem(app.view_functions, "api.quizzes", lambda status=status: (jsonify([]), status))
        with pytest.raises(FailureGroup):
            op.Case().call_and_validate(checks=CHECKS)
    monkeypatch.setitem(app.view_functions, "api.quizzes", lambda: jsonify([{"id": 1}]))
    with pytest.raises(FailureGroup):
        op.Case().call_and_validate(checks=CHECKS)
