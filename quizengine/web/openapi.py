"""The OpenAPI 3 document of /api/v1 (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from ..bank.types import ITEM_TYPES, RESPONSE_FORMATS
from ..constants import GRADE_FORMATS, VERSION

# The response format of each item type, from the registry (bank/types/).
FORMATS = "The response, by the question's type: " + "; ".join(f"{t}: {f}" for t, f in RESPONSE_FORMATS.items()) + "."


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {code: {"$ref": f"#/components/responses/E{code}"} for code in ("400", "401", "403", "404", "409", "413", "429")}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: ERRORS[c] for c in codes}


def openapi_document() -> dict[str, Any]:
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    question = {
        "type": "object", "required": ["id", "type", "prompt_html"],
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string", "enum": list(ITEM_TYPES)},
            "prompt_html": {"type": "string"}, "points": {"type": "number"},
            "choices": {"type": "array", "items": _ref("Option")}, "lefts": {"type": "array", "items": _ref("Option")},
            "rights": {"type": "array", "items": _ref("Option")}, "options": {"type": "array", "items": _ref("Option")},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "figures": {"type": "array", "description": "figures drawn from this variant (items that declare them; "
                        "one with when=after_submission only once feedback shows)", "items": {
                "type": "object", "required": ["kind", "svg", "alt", "details"], "properties": {
                    "id": {"type": "string"}, "kind": {"type": "string", "enum": ["network", "activation", "trajectory"]},
                    "when": {"type": "string", "enum": ["always", "after_submission"]},
                    "caption": {"type": ["string", "null"]}, "alt": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "string"}},
                    "svg": {"type": "string", "description": "sanitised SVG, safe to inline"}}}},
            "response": {"description": FORMATS}, "saved_at": nullable_time, "seq": {"type": ["integer", "null"]},
            "score": {"type": ["number", "null"]}, "max_score": {"type": "number"},
        },
    }
    attempt = {
        "type": "object", "required": ["attempt_id", "state", "expires_at", "questions"],
        "properties": {
            "attempt_id": {"type": "integer"}, "quiz_id": {"type": "string"}, "number": {"type": "integer"},
            "state": {"type": "string", "enum": ["open", "submitted", "expired"]},
            "started_at": {"type": "string", "format": "date-time"}, "expires_at": nullable_time,
            "submitted_at": nullable_time, "score": {"type": ["number", "null"]}, "max_score": {"type": "number"},
            "questions": {"type": "array", "items": _ref("Question")},
        },
    }
    result = {
        "type": "object", "required": ["score", "max_score", "questions"],
        "properties": {
            "attempt_id": {"type": "integer"}, "state": {"type": "string"}, "score": {"type": ["number", "null"]},
            "max_score": {"type": "number"}, "submitted_at": nullable_time,
            "questions": {"type": "array", "items": {
                "type": "object", "required": ["id", "score", "max_score", "feedback"],
                "properties": {"id": {"type": "string"}, "score": {"type": ["number", "null"]},
                               "max_score": {"type": "number"}, "feedback": {"type": "string"}}}},
        },
    }
    quiz = {
        "type": "object",
        "required": ["id", "title", "opens_at", "closes_at", "time_limit_s", "max_attempts", "attempts_used"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "opens_at": nullable_time, "closes_at": nullable_time,
            "time_limit_s": {"type": ["integer", "null"]}, "max_attempts": {"type": ["integer", "null"]},
            "attempts_used": {"type": "integer"},
            "accommodation": {"type": ["object", "null"], "description": "for a student with an accommodation: "
                              "closes_at, time_limit_s and max_attempts above are theirs; this says how they differ"},
        },
    }
    settings = {
        "time_multiplier": {"type": ["number", "null"], "minimum": 1, "maximum": 10,
                            "description": "the class's time limit x this (null: x1)"},
        "extra_minutes": {"type": ["number", "null"], "minimum": 0, "maximum": 10080, "description": "added minutes"},
        "extra_attempts": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
        "closes_at": {"type": ["string", "null"], "description": "an extended close date (the later of it and "
                      "the class's applies); without an offset, in the course's time zone"},
        "untimed": {"type": "boolean", "description": "no time limit (the close date still ends an attempt)"},
    }
    accommodation = {
        "type": "object", "required": ["username", "group", *settings],
        "properties": {
            "username": {"type": ["string", "null"], "description": "the student (null for a group's settings)"},
            "group": {"type": ["string", "null"], "description": "the student's accommodation group, or the group"},
            **{k: ({**v, "format": "date-time"} if k == "closes_at" else v) for k, v in settings.items()},
            "effective": {"type": "object", "description": "what applies to the student (own over group settings)",
                          "properties": {"time_limit_s": {"type": ["integer", "null"]},
                                         "max_attempts": {"type": ["integer", "null"]},
                                         "closes_at": nullable_time}},
        },
    }
    for field in ("time_multiplier", "extra_minutes", "extra_attempts"):  # bounds are for the request
        accommodation["properties"][field] = {"type": settings[field]["type"]}
    id_max = 2**31 - 1  # attempt ids are 32-bit database integers
    seq_max = 2**53 - 1  # seq is a 64-bit integer; JSON numbers are exact up to 2^53
    attempt_id = {"name": "attempt_id", "in": "path", "required": True,
                  "schema": {"type": "integer", "minimum": 0, "maximum": id_max}}
    quiz_id = {"name": "quiz_id", "in": "path", "required": True, "schema": {"type": "string"}}
    secured = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "quizengine API", "version": VERSION,
                 "description": "Take quizzes and export grades. Errors are JSON {\"error\": message}."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Option": {"type": "object", "required": ["id", "html"],
                           "properties": {"id": {"type": "string"}, "html": {"type": "string"}}},
                "Question": question, "Attempt": attempt, "Result": result, "Quiz": quiz,
                "Accommodation": accommodation,
            },
            "responses": {f"E{c}": _json(_ref("Error"), d) for c, d in [
                ("400", "bad input"), ("401", "missing, invalid or expired credentials"),
                ("403", "not allowed"), ("404", "not found"), ("409", "conflict with the attempt's state"),
                ("413", "request too large"), ("429", "too many login attempts: wait the Retry-After seconds")]},
        },
        "paths": {
            "/auth/token": {"post": {
                "summary": "Exchange a username and password for a bearer token",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}},
                "responses": {"200": _json({"type": "object", "required": ["token"], "properties": {
                    "token": {"type": "string"}, "expires_in": {"type": "integer"}}}, "a token"),
                    **_errors("400", "401", "413", "429")}}},
            "/quizzes": {"get": {"summary": "Quizzes with their windows and the attempts used", "security": secured,
                                 "responses": {"200": _json({"type": "array", "items": _ref("Quiz")}, "quizzes"),
                                               **_errors("401")}}},
            "/quizzes/{quiz_id}/attempts": {"post": {
                "summary": "Start an attempt (students)", "security": secured, "parameters": [quiz_id],
                "responses": {"201": _json(_ref("Attempt"), "the new attempt"),
                              **_errors("401", "403", "404", "409")}}},
            "/attempts/{attempt_id}": {"get": {
                "summary": "An attempt with its saved responses", "security": secured, "parameters": [attempt_id],
                "responses": {"200": _json(_ref("Attempt"), "the attempt"), **_errors("401", "404")}}},
            "/attempts/{attempt_id}/responses/{question_id}": {"put": {
                "summary": "Autosave one response; a lower seq than the stored one is refused (409)",
                "description": "Send the stored response's seq plus 1 (0 when none is stored). A higher seq is "
                               "saved; an equal seq with the same response is a repeat (200, nothing written); "
                               "a lower one, or an equal one with another response, is stale: 409 with the "
                               "stored answer. Without seq the save wins and gets the stored seq plus 1. "
                               "400 (never stored) for a response that doesn't fit the question: unknown or "
                               "repeated choice ids, an ordering that isn't a permutation, the wrong vector or "
                               "matrix shape, lone surrogates or control characters, numbers with more than 50 "
                               "digits or an exponent beyond 400. Numeric text that doesn't read as a number "
                               "is saved with a format_error note. 413 above 8 KiB of JSON.",
                "security": secured,
                "parameters": [attempt_id, {"name": "question_id", "in": "path", "required": True,
                                            "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["response"], "additionalProperties": False,
                    "properties": {"response": {"description": FORMATS}, "seq": {"type": ["integer", "null"], "minimum": 0,
                                                           "maximum": seq_max}}}}}},
                "responses": {"200": _json({"type": "object", "required": ["saved_at"], "properties": {
                    "saved_at": {"type": "string", "format": "date-time"}, "seq": {"type": "integer"},
                    "format_error": {"type": "string"}}}, "saved"),
                    **_errors("400", "401", "403", "404", "413"),
                    "409": _json({"type": "object", "required": ["error"], "properties": {
                        "error": {"type": "string"}, "seq": {"type": "integer"}, "response": {},
                        "saved_at": {"type": "string", "format": "date-time"}}},
                        "the attempt is closed, or the save is stale: then the stored answer's seq, "
                        "response and saved_at come with the error")}}},
            "/attempts/{attempt_id}/submit": {"post": {
                "summary": "Submit and grade; a second submit returns the same result", "security": secured,
                "parameters": [attempt_id],
                "responses": {"200": _json(_ref("Result"), "the graded attempt"), **_errors("401", "403", "404")}}},
            "/attempts/{attempt_id}/key": {"get": {
                "summary": "The answer key of an attempt (instructors)", "security": secured, "parameters": [attempt_id],
                "responses": {"200": _json({"type": "object", "required": ["questions"], "properties": {
                    "questions": {"type": "array", "items": {"type": "object", "required": ["id", "answer"],
                                                             "properties": {"id": {"type": "string"}, "answer": {}}}}}},
                    "the key"), **_errors("401", "403", "404")}}},
            "/quizzes/{quiz_id}/grades.csv": {"get": {
                "summary": "Grades as CSV (instructors)", "security": secured,
                "parameters": [quiz_id, {"name": "format", "in": "query", "required": False,
                                         "schema": {"type": "string", "enum": list(GRADE_FORMATS)}}],
                "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **_errors("400", "401", "403", "404")}}},
            **_accommodation_paths(secured, quiz_id, settings),
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3")}}},
        },
    }


def _accommodation_paths(secured: list[dict[str, Any]], quiz_id: dict[str, Any],
                         settings: dict[str, Any]) -> dict[str, Any]:
    """GET a quiz's accommodations; GET, PUT, DELETE one student's or one group's (instructors only)."""
    one = _json(_ref("Accommodation"), "the accommodation (all settings null or false: none)")
    username = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
    group = {"name": "group", "in": "path", "required": True, "schema": {"type": "string"}}

    def put(what: str, props: dict[str, Any]) -> dict[str, Any]:
        return {"summary": f"Set {what} (instructors); fields left out are none; every change is audited and "
                           "moves the deadline of the open attempts it touches", "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "properties": props}}}},
                "responses": {"200": one, **_errors("400", "401", "403", "404", "413")}}

    def get_delete(what: str) -> dict[str, Any]:
        return {"get": {"summary": f"{what} (instructors)", "security": secured,
                        "responses": {"200": one, **_errors("400", "401", "403", "404")}},
                "delete": {"summary": f"Remove {what.lower()} (instructors; audited)", "security": secured,
                           "responses": {"200": one, **_errors("400", "401", "403", "404")}}}

    student_props = {**settings, "group": {"type": ["string", "null"], "description":
                                           "the student's accommodation group for every quiz (null: none; "
                                           "left out: unchanged)"}}
    return {
        "/quizzes/{quiz_id}/accommodations": {"get": {
            "summary": "A quiz's accommodations: groups' settings, then every student with settings or a group "
                       "(instructors)", "security": secured, "parameters": [quiz_id],
            "responses": {"200": _json({"type": "array", "items": _ref("Accommodation")}, "accommodations"),
                          **_errors("401", "403", "404")}}},
        "/quizzes/{quiz_id}/accommodations/{username}": {
            "parameters": [quiz_id, username], **get_delete("A student's accommodation"),
            "put": put("a student's accommodation (and group)", student_props)},
        "/quizzes/{quiz_id}/accommodation-groups/{group}": {
            "parameters": [quiz_id, group], **get_delete("An accommodation group's settings"),
            "put": put("an accommodation group's settings", settings)},
    }
