"""Login and logout pages, Flask-Login sessions with an absolute lifetime, role checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user

from ..models import Role, User
from ..services import accounts, logins, sessions, warming
from ..services.clock import now
from ..services.principal import Principal
from . import db, reading, writing

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


@dataclass
class LoggedIn:
    """The user of a session, detached from the database."""

    id: int
    username: str
    full_name: str
    role: str
    session_version: int
    sid: str = ""  # the server-side session (user_session row); deleting the row ends the session
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}:{self.sid}"

    @property
    def is_instructor(self) -> bool:
        return self.role == Role.INSTRUCTOR

    @classmethod
    def of(cls, u: User, sid: str = "") -> "LoggedIn":
        return cls(u.id, u.username, u.full_name, u.role, u.session_version, sid)


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load(user_key: str) -> LoggedIn | None:
        uid, version, sid = (user_key.split(":") + ["", ""])[:3]
        lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
        if time.time() - session.get("login_at", 0) > lifetime:  # absolute, not sliding
            return None
        if not (uid.isascii() and uid.isdigit()) or not sid:
            return None
        with reading() as s:  # one indexed lookup: the user joined to the live session row
            u = sessions.session_user(s, int(uid), sid)
        if u is None or str(u.session_version) != version:
            return None
        return LoggedIn(u.id, u.username, u.full_name, u.role, u.session_version, sid)


def principal() -> Principal:
    """Who this request's session speaks for, as the services take it."""
    return Principal(current_user.id, current_user.role)


def role_required(role: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role != role:
                abort(403, f"this page is for {role}s")
            return view(*args, **kwargs)

        return wrapped

    return decorate


student_required = role_required(Role.STUDENT)
instructor_required = role_required(Role.INSTRUCTOR)


def client_address() -> str:
    """The client's address (real behind QUIZENGINE_TRUSTED_PROXIES proxies: ProxyFix rewrites it)."""
    return request.remote_addr or "unknown"


def login_throttle() -> logins.Throttle:
    """The login throttle of the settings, with this worker's bucket of password checks."""
    cfg = current_app.config
    rate, burst = cfg["LOGINS_PER_SECOND"], cfg["LOGIN_BURST"]
    bucket = current_app.extensions.get("quizengine.login_bucket")
    if rate and (bucket is None or (bucket.rate, bucket.burst) != (rate, burst)):
        bucket = current_app.extensions["quizengine.login_bucket"] = logins.TokenBucket(rate, burst)
    return logins.Throttle.of(cfg, bucket if rate else None)


def check_login(username: str, password: str, new_session: bool = False) -> logins.LoginResult:
    """A login from this request's address under the throttle; an outdated hash is replaced."""
    return logins.login(db(), username, password, client_address(), login_throttle(), new_session=new_session,
                        method=current_app.config["PASSWORD_METHOD"])


def throttled_message(wait: logins.Wait) -> str:
    """Why a login must wait, with the limit it met and how long."""
    cfg, n = current_app.config, wait.seconds
    why = {"failures": f"after {cfg['LOGIN_FREE_FAILURES']} wrong passwords for this username from this address, "
                       "each further one doubles the wait",
           "address": f"at most {cfg['LOGINS_PER_ADDRESS']} logins per minute from one address",
           "server": f"the server checks at most {cfg['LOGINS_PER_SECOND']} passwords per second per worker"}[wait.limit]
    return f"Too many login attempts ({why}); try again in {n} second{'s' if n != 1 else ''}."


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method in ("GET", "HEAD"):
        return render_template("auth/login.html")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    result = check_login(username, password, new_session=True)
    if result.retry_after is not None:
        return render_template("auth/login.html", username=username, error=throttled_message(result.retry_after)), \
            429, {"Retry-After": str(result.retry_after.seconds)}
    if result.user is None:
        return render_template("auth/login.html", username=username, error="Wrong username or password."), 401
    who = LoggedIn.of(result.user, result.session_id or "")
    session.clear()  # a new session on login: nothing from before survives (session fixation)
    session.permanent = True
    session["login_at"] = time.time()
    login_user(who)
    warming.schedule(result.user.id)  # render the student's upcoming attempts before they start
    return redirect(url_for("instructor.home" if who.is_instructor else "student.dashboard"))


@bp.route("/logout", methods=["POST"])
def logout():
    sid = getattr(current_user, "sid", "")
    if sid:  # end the session on the server: the old cookie, replayed, opens nothing
        with writing() as s:
            sessions.close_session(s, sid)
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("instructor.home" if current_user.is_instructor else "student.dashboard"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change one's own password; every other session and every API token ends."""
    if request.method in ("GET", "HEAD"):
        return render_template("auth/password.html")
    current, new, again = (request.form.get(k, "") for k in ("current", "new", "again"))
    error = None
    try:
        accounts.check_password(new)
    except accounts.AccountError as e:
        error = f"New {e}."
    if error is None and new != again:
        error = "The two new passwords differ."
    if error is not None:
        return render_template("auth/password.html", error=error), 400
    result = check_login(current_user.username, current)
    if result.retry_after is not None:
        return render_template("auth/password.html", error=throttled_message(result.retry_after)), \
            429, {"Retry-After": str(result.retry_after.seconds)}
    if result.user is None:
        return render_template("auth/password.html", error="The current password is wrong."), 401
    hashed = accounts.hash_password(new, current_app.config["PASSWORD_METHOD"])  # outside the write lock
    with writing() as s:
        user, sid = logins.change_password(s, current_user.id, hashed, now())
        who = LoggedIn.of(user, sid)
    login_user(who)  # this session goes on with the new version; the others have ended
    flash("Password changed; your other sessions have ended.")
    return redirect(url_for("auth.index"))
