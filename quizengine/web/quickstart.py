"""The start's fast lane: ``POST /api/v1/quizzes/{quiz_id}/attempts`` with a bearer token, taken
before Flask's request machinery (README, "Performance"), as web/quicksave.py does for autosaves.

It answers only the common start (services/quickstart.py): no cookie, a valid token, a student with
no attempt in progress at the quiz, every question rendered ahead. Anything else goes to the Flask
app unchanged, which answers it as always (the exact JSON error, or a start that renders); a start
is never made twice, since a refused fast start writes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable

from flask import Flask

from ..services import logins
from ..services.quickstart import prepare, quick_start_json
from .headers import api_headers

log = logging.getLogger(__name__)

PATH = re.compile(r"/api/v1/quizzes/([A-Za-z0-9_.-]{1,200})/attempts\Z")


class QuickStart:
    """WSGI middleware: the common API start here, every other request to ``app``."""

    def __init__(self, flask_app: Flask, app: Callable[..., Iterable[bytes]]):
        self.app = app
        cfg = flask_app.config
        self.db = flask_app.extensions["quizengine.db"]
        self.secret, self.max_age = cfg["SECRET_KEY"], cfg["API_TOKEN_MAX_AGE"]
        self.headers = [*api_headers(cfg), ("Vary", "Cookie")]  # as Flask's answer has it (the session is looked at)
        prepare(self.db)  # in the process that builds the app (serve's master: shared with the workers it forks)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and "HTTP_COOKIE" not in environ:
            m = PATH.match(environ.get("PATH_INFO", ""))
            if m is not None:
                body = self.answer(environ, m.group(1))
                if body is not None:
                    start_response("201 CREATED", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(body))), *self.headers])
                    return [body]
        return self.app(environ, start_response)

    def answer(self, environ: dict[str, Any], quiz_id: str) -> bytes | None:
        """The 201 body of a fast start, or None to leave the request to Flask."""
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            uid, sv = logins.token_claims(self.secret, token.strip(), self.max_age)
        except logins.TokenError:
            return None
        try:
            return quick_start_json(self.db, self.secret, uid, sv, quiz_id)
        except Exception:  # noqa: BLE001 - Flask answers it (and logs what is still wrong); nothing was written
            log.warning("quick start fell back to the full path", exc_info=True)
            return None


def init_quickstart(app: Flask) -> None:
    """Put the fast lane in front of the app."""
    app.wsgi_app = QuickStart(app, app.wsgi_app)  # type: ignore[method-assign]
