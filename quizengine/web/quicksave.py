"""The autosave's fast lane: ``PUT /api/v1/attempts/{id}/responses/q{n}`` with a bearer token, and
the attempt page's ``POST /attempts/{id}/autosave`` (web/pagesave.py), taken before Flask's request
machinery (README, "Performance").

A plain WSGI wrapper around the Flask app. It answers only the common save: no cookie, a JSON
object body with ``response`` and ``seq``, a valid token, the student's own open attempt, an answer
the question accepts, a new ``seq`` (services/quicksave.py). Anything else, or anything it does
not expect, goes to the Flask app unchanged (the body put back), which answers it as always, with
the exact JSON error; a save is never written twice, since a refused fast save writes nothing.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from typing import Any, Callable, Iterable

from flask import Flask
from werkzeug.exceptions import HTTPException

from ..constants import ID_MAX
from ..services import logins
from ..services.attempts import check_seq
from ..services.clock import iso
from ..services.errors import ServiceError
from ..services.quicksave import quick_save
from .headers import api_headers
from .pagesave import PAGE_PATH, page_lane

log = logging.getLogger(__name__)

PATH = re.compile(r"/api/v1/attempts/([0-9]{1,10})/responses/q([0-9]{1,6})\Z")
TOKENS = 8192  # bearer tokens whose signature was checked, kept with their expiry (a class's students)


class QuickSave:
    """WSGI middleware: the common autosave here, every other request to ``app``."""

    def __init__(self, flask_app: Flask, app: Callable[..., Iterable[bytes]]):
        self.app = app
        cfg = flask_app.config
        self.db = flask_app.extensions["quizengine.db"]
        self.secret, self.max_age = cfg["SECRET_KEY"], cfg["API_TOKEN_MAX_AGE"]
        self.max_body = cfg.get("MAX_CONTENT_LENGTH") or 64 * 1024
        self.headers = api_headers(cfg)  # as web/headers.py gives an API response without a session
        self.page = page_lane(flask_app)
        # token -> (user id, session version, expiry): a student's every save carries the same token;
        # its signature is checked once (the claims it signs never change), its expiry every time.
        self.tokens: dict[str, tuple[int, object, float]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "PUT" and "HTTP_COOKIE" not in environ:
            m = PATH.match(environ.get("PATH_INFO", ""))
            if m is not None:
                body = self.answer(environ, m)
                if body is not None:
                    start_response("200 OK", [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(body))), *self.headers])
                    return [body]
        elif environ.get("REQUEST_METHOD") == "POST" and self.page is not None:
            m = PAGE_PATH.match(environ.get("PATH_INFO", ""))
            if m is not None:
                page = self.page_answer(environ, int(m.group(1)))
                if page is not None:
                    body, session_headers = page
                    start_response("200 OK", [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(body))), *self.headers, *session_headers])
                    return [body]
        return self.app(environ, start_response)

    def body(self, environ: dict[str, Any]) -> bytes | None:
        """A JSON request's body (put back for Flask), or None when it is not a plain one."""
        length = environ.get("CONTENT_LENGTH", "")
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if (mimetype != "application/json" or not length.isdigit()
                or not 0 < int(length) <= self.max_body or "HTTP_TRANSFER_ENCODING" in environ):
            return None
        try:
            raw = environ["wsgi.input"].read(int(length))
        except (HTTPException, OSError, ValueError):  # e.g. the body never came (server.buffered: a 408)
            return None  # Flask reads it again and answers the error in its own style
        environ["wsgi.input"] = io.BytesIO(raw)  # for Flask, if it gets the request after all
        environ["CONTENT_LENGTH"] = str(len(raw))
        return raw

    def page_answer(self, environ: dict[str, Any], attempt_id: int) -> tuple[bytes, list] | None:
        if self.page is None or "HTTP_AUTHORIZATION" in environ:
            return None
        raw = self.body(environ)
        if raw is None:
            return None
        try:
            return self.page.answer(environ, raw, attempt_id)
        except Exception:  # noqa: BLE001 - Flask answers it (and logs what is still wrong); seq makes it safe to redo
            log.warning("quick page save fell back to the full path", exc_info=True)
            return None

    def answer(self, environ: dict[str, Any], m: re.Match) -> bytes | None:
        """The 200 body of a fast save, or None to leave the request to Flask (its body put back)."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        raw = self.body(environ)
        if raw is None:
            return None
        try:
            return self.save(raw, token.strip(), int(m.group(1)), int(m.group(2)) - 1)
        except Exception:  # noqa: BLE001 - Flask answers it (and logs what is still wrong); seq makes it safe to redo
            log.warning("quick save fell back to the full path", exc_info=True)
            return None

    def claims(self, token: str) -> tuple[int, object]:
        """The token's (user id, session version); TokenError when it is invalid or expired."""
        known = self.tokens.get(token)
        if known is None or time.time() > known[2]:
            known = logins.token_claims_until(self.secret, token, self.max_age)
            if len(self.tokens) >= TOKENS:
                self.tokens.clear()
            self.tokens[token] = known
        return known[0], known[1]

    def save(self, raw: bytes, token: str, attempt_id: int, slot: int) -> bytes | None:
        try:
            uid, sv = self.claims(token)
            data = json.loads(raw)
            if not isinstance(data, dict) or "response" not in data or not set(data) <= {"response", "seq"}:
                return None
            seq = check_seq(data.get("seq"))
        except (logins.TokenError, ValueError, RecursionError, ServiceError):
            return None
        if seq is None or attempt_id > ID_MAX:
            return None
        saved = quick_save(self.db, uid, sv, attempt_id, slot, data["response"], seq)
        if saved is None:
            return None
        if not saved.note:  # the common answer, as json.dumps writes it below (an ISO time needs no escape)
            return b'{"saved_at":"%s","seq":%d}\n' % (iso(saved.saved_at).encode(), saved.seq)
        out = {"format_error": saved.note, "saved_at": iso(saved.saved_at), "seq": saved.seq}
        return (json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n").encode()


def init_quicksave(app: Flask) -> None:
    """Put the fast lane in front of the app (outermost, so no other middleware runs for it)."""
    app.wsgi_app = QuickSave(app, app.wsgi_app)  # type: ignore[method-assign]
