"""The fast lane of the attempt page's own autosave: ``POST /attempts/<id>/autosave`` with the session
cookie and the CSRF header (static/attempt.js), answered before Flask's request machinery.

It takes only requests Flask would accept and answer with a plain 200, and answers them exactly
as Flask would: the session cookie read by the app's own session interface (its signing
serializer and lifetime), Flask-Login's session checks (the absolute lifetime of ``login_at``, the
basic session protection's identifier, the server-side session row, read in the save's one indexed
lookup), Flask-WTF's CSRF check (its secret, salt, time limit, headers and, on HTTPS, its referrer
check), and the refreshed session cookie Flask sets on every response of a permanent session
(written by the session interface's own ``save_session``). A session holding anything else (an
LTI launch's frame origins, flashed messages, a remember-me state) or anything unexpected goes to
Flask unchanged, which also gives every refusal its exact answer (Flask-WTF's 400 on a bad token).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from hashlib import sha512
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import same_origin
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.http import parse_cookie
from werkzeug.wrappers import Response as WerkzeugResponse
from werkzeug.wsgi import get_host

from ..constants import ID_MAX
from ..services.attempts import check_seq
from ..services.clock import iso
from ..services.errors import ServiceError
from ..services.quicksave import quick_save
from .lti import LtiSessionInterface

PAGE_PATH = re.compile(r"/attempts/([0-9]{1,10})/autosave\Z")
# The keys a logged-in page session holds (web/auth.py, Flask-Login, Flask-WTF); any other: Flask.
SESSION_KEYS = frozenset({"_user_id", "_fresh", "_id", "_permanent", "login_at", "csrf_token"})


def page_lane(app: Flask) -> "PageSave":
    return PageSave(app)


class PageSave:
    """Reads the app's settings at each request (tests and apps may change them after create_app)."""

    def __init__(self, app: Flask):
        self.app = app
        self.db = app.extensions["quizengine.db"]
        # A session without an LTI frame: the LTI interface's cookie is the plain one (web/lti.py),
        # and the plain interface's save_session needs no request context.
        self.saver = _Saver(self)
        self._serializers: dict[tuple, Any] = {}

    def serializer(self) -> Any:
        """The session interface's own signing serializer, made once per interface and keys."""
        iface, app = self.app.session_interface, self.app
        key = (id(iface), app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if key not in self._serializers:
            self._serializers = {key: iface.get_signing_serializer(app)}
        return self._serializers[key]

    def csrf_serializer(self, secret: Any) -> URLSafeTimedSerializer:
        """Flask-WTF's serializer of CSRF tokens (flask_wtf/csrf.py: its salt), made once per secret."""
        key = ("csrf", secret)
        if key not in self._serializers:
            self._serializers[key] = URLSafeTimedSerializer(secret, salt="wtf-csrf-token")
        return self._serializers[key]

    def usable(self) -> bool:
        """The app's settings are the ones this lane reproduces."""
        cfg, login = self.app.config, getattr(self.app, "login_manager", None)
        return (type(self.app.session_interface) in (SecureCookieSessionInterface, LtiSessionInterface)
                and bool(self.app.secret_key) and not cfg.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST")
                and login is not None and cfg.get("SESSION_PROTECTION", login.session_protection) == "basic")

    def session(self, environ: dict[str, Any]) -> SecureCookieSession | None:
        """The request's session as Flask opens it, or None if there is none to trust."""
        serializer = self.serializer()
        val = parse_cookie(environ.get("HTTP_COOKIE", "")).get(self.app.session_interface.get_cookie_name(self.app))
        if serializer is None or not val:
            return None
        try:
            max_age = int(self.app.permanent_session_lifetime.total_seconds())
            return SecureCookieSession(serializer.loads(val, max_age=max_age))
        except BadData:
            return None

    def csrf_ok(self, environ: dict[str, Any], sess: SecureCookieSession) -> bool:
        """Flask-WTF's check passes, or is off (flask_wtf/csrf.py: CSRFProtect.protect, validate_csrf).

        The token comes from its headers (a JSON body has no form field); the autosave is not exempt.
        """
        cfg = self.app.config
        if not cfg.get("WTF_CSRF_ENABLED", True) or not cfg.get("WTF_CSRF_CHECK_DEFAULT", True):
            return True
        if "POST" not in cfg.get("WTF_CSRF_METHODS", ()):
            return False  # not the settings Flask-WTF sets up: Flask decides
        headers = ["HTTP_" + h.upper().replace("-", "_") for h in cfg.get("WTF_CSRF_HEADERS", ())]
        token = next((environ[h] for h in headers if environ.get(h)), None)
        field = cfg.get("WTF_CSRF_FIELD_NAME") or "csrf_token"
        if not token or field not in sess:
            return False
        serializer = self.csrf_serializer(cfg.get("WTF_CSRF_SECRET_KEY") or self.app.secret_key)
        try:
            signed = serializer.loads(token, max_age=cfg.get("WTF_CSRF_TIME_LIMIT", 3600))
        except BadData:
            return False
        if not hmac.compare_digest(sess[field], signed):
            return False
        # Over HTTPS (or maybe, behind a proxy) Flask-WTF also wants a same-origin referrer.
        if cfg.get("WTF_CSRF_SSL_STRICT", True) and (environ.get("wsgi.url_scheme") == "https" or "HTTP_X_FORWARDED_PROTO" in environ):
            referrer = environ.get("HTTP_REFERER")
            return bool(referrer) and same_origin(referrer, f"https://{get_host(environ)}/")
        return True

    @staticmethod
    def identifier(environ: dict[str, Any]) -> str:
        """Flask-Login's session identifier (flask_login.utils._create_identifier) of this request."""
        address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
        if address is not None:
            address = address.encode("utf-8").split(b",")[0].strip()
        agent = environ.get("HTTP_USER_AGENT")
        if agent is not None:
            agent = agent.encode("utf-8")
        return sha512(f"{address}|{agent}".encode("utf8")).hexdigest()

    def answer(self, environ: dict[str, Any], raw: bytes, attempt_id: int) -> tuple[bytes, list] | None:
        """The 200 body and the session's headers of a fast page save, or None to leave it to Flask."""
        if not self.usable():
            return None
        sess = self.session(environ)
        if sess is None or not set(sess) <= SESSION_KEYS or sess.get("_permanent") is not True:
            return None
        if sess.get("_id") != self.identifier(environ) or not self.csrf_ok(environ, sess):
            return None
        login_at = sess.get("login_at", 0)
        lifetime = self.app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
        if not isinstance(login_at, (int, float)) or time.time() - login_at > lifetime:
            return None
        key = sess.get("_user_id")
        uid, version, sid = ((key if isinstance(key, str) else "").split(":") + ["", ""])[:3]
        if not (uid.isascii() and uid.isdigit()) or not sid or not (version.isascii() and version.isdigit()):
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("question"), str) or "response" not in data:
                return None
            seq = check_seq(data.get("seq"))
        except (ValueError, RecursionError, ServiceError):
            return None
        qid = data["question"]
        if seq is None or attempt_id > ID_MAX or not (qid[:1] == "q" and qid[1:].isascii() and qid[1:].isdigit()
                                                      and len(qid) < 8):
            return None
        if not set(data) <= {"question", "response", "seq"} or str(int(version)) != version:
            return None
        saved = quick_save(self.db, int(uid), int(version), attempt_id, int(qid[1:]) - 1, data["response"], seq,
                           session_id=sid)
        if saved is None:
            return None
        out: dict[str, Any] = {"saved_at": iso(saved.saved_at), "seq": saved.seq}
        if saved.note:
            out["format_error"] = saved.note
        body = (json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n").encode()
        # The cookie and Vary header Flask's end of request would add (a permanent session's refresh).
        response = WerkzeugResponse()
        self.saver.save_session(self.app, sess, response)
        return body, [(k, v) for k, v in response.headers.items() if k in ("Set-Cookie", "Vary")]


class _Saver(SecureCookieSessionInterface):
    """The plain cookie interface's save_session, signing with the lane's cached serializer."""

    def __init__(self, lane: PageSave):
        self.lane = lane

    def get_signing_serializer(self, app: Flask) -> Any:
        return self.lane.serializer()
