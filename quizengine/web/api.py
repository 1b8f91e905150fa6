"""The JSON API under /api/v1 (README, "JSON API"; OpenAPI at /api/v1/openapi.json), with signed,
expiring bearer tokens."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..constants import ID_MAX
from ..models import Role
from ..services import logins, views, warming
from ..services.attempts import check_seq, load_attempt
from ..services.clock import iso, now
from ..services.closing import expire_due, submit_graded
from ..services.draw import start_attempt
from ..services.errors import ServiceError
from ..services.gradebook import grades_csv
from ..services.quizzes import quiz_rows
from ..services.saving import save_response
from . import db, reading, writing
from .auth import check_login, throttled_message
from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(ServiceError):
    pass


@bp.url_value_preprocessor
def no_nul_in_paths(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """No id holds a NUL character, and PostgreSQL refuses to compare text with one: 404 here."""
    if values and any("\x00" in v for v in values.values() if isinstance(v, str)):
        raise ApiError(404, "not found")


def body() -> dict[str, Any]:
    """The request's JSON object, or 400 with a clear message."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested too deep for the JSON parser
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    return data


def authenticated(role: str | None = None) -> Callable:
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "send Authorization: Bearer TOKEN (POST /api/v1/auth/token gives one)")
            with reading() as s:
                try:
                    user = logins.user_for_token(s, current_app.config["SECRET_KEY"], token.strip(),
                                                 current_app.config["API_TOKEN_MAX_AGE"])
                except logins.TokenError as e:
                    raise ApiError(401, str(e)) from None
            if role is not None and user.role != role:
                raise ApiError(403, f"this endpoint is for {role}s")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped

    return decorate


def me() -> logins.TokenUser:
    """The user of this request (from the bearer token; no second database read)."""
    return g.api_user


@bp.post("/auth/token")
def token():
    data = body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "give username and password as strings")
    cfg = current_app.config
    result = check_login(username, password)
    if result.retry_after is not None:
        wait = result.retry_after
        return jsonify({"error": throttled_message(wait), "retry_after": wait.seconds}), 429, \
            {"Retry-After": str(wait.seconds)}
    if result.user is None:
        raise ApiError(401, "wrong username or password")
    warming.schedule(result.user.id)  # render the student's upcoming attempts before they start
    return jsonify({"token": logins.issue_token(cfg["SECRET_KEY"], result.user),
                    "expires_in": cfg["API_TOKEN_MAX_AGE"]})


@bp.get("/quizzes")
@authenticated()
def quizzes():
    with reading() as s:
        return jsonify(quiz_rows(s, me(), now()))


@bp.post("/quizzes/<quiz_id>/attempts")
@authenticated(Role.STUDENT)
def start(quiz_id: str):
    t = now()
    expire_due(db(), t, user_id=me().id)  # grade a finished attempt before taking the write lock
    with writing() as s:
        attempt_id = start_attempt(s, me(), quiz_id, current_app.config["SECRET_KEY"], t).id
    return jsonify(views.fresh_view(db(), me(), attempt_id, t)), 201


def _attempt_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > ID_MAX:
        raise ApiError(404, f"no attempt {value!r}")
    return int(value)


@bp.get("/attempts/<attempt_id>")
@authenticated()
def attempt(attempt_id: str):
    aid, t = _attempt_id(attempt_id), now()
    return jsonify(views.fresh_view(db(), me(), aid, t))


@bp.put("/attempts/<attempt_id>/responses/<question_id>")
@authenticated(Role.STUDENT)
def save(attempt_id: str, question_id: str):
    aid = _attempt_id(attempt_id)
    data = body()
    if "response" not in data:
        raise ApiError(400, "give the answer as {\"response\": ...}")
    seq = check_seq(data.get("seq"))
    unknown = set(data) - {"response", "seq"}
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    saved_at, stored_seq, note = save_response(db(), me(), aid, question_id, data["response"], seq)
    out = {"saved_at": iso(saved_at), "seq": stored_seq}
    if note:
        out["format_error"] = note
    return jsonify(out)


@bp.post("/attempts/<attempt_id>/submit")
@authenticated(Role.STUDENT)
def submit(attempt_id: str):
    aid, t = _attempt_id(attempt_id), now()
    graded = submit_graded(db(), me(), aid, t)
    warming.schedule(me().id, after_submit=True)  # the next attempt's questions, once submits pause
    with reading() as s:
        return jsonify(views.result_view(s, me(), aid, t, graded))


@bp.get("/attempts/<attempt_id>/key")
@authenticated(Role.INSTRUCTOR)
def key(attempt_id: str):
    with reading() as s:
        return jsonify(views.key_view(load_attempt(s, me(), _attempt_id(attempt_id))))


@bp.get("/quizzes/<quiz_id>/grades.csv")
@authenticated(Role.INSTRUCTOR)
def grades(quiz_id: str):
    fmt = request.args.get("format", "plain")
    expire_due(db())
    with reading() as s:
        text = grades_csv(s, quiz_id, fmt)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{quiz_id}-grades-{fmt}.csv"'})


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
