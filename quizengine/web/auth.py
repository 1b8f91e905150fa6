"""Login and logout pages, Flask-Login sessions with an absolute lifetime, role checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user

from ..models import User
from ..services import accounts
from . import db, reading

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
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    @classmethod
    def of(cls, u: User) -> "LoggedIn":
        return cls(u.id, u.username, u.full_name, u.role, u.session_version)


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load(user_key: str) -> LoggedIn | None:
        uid, _, version = user_key.partition(":")
        lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
        if time.time() - session.get("login_at", 0) > lifetime:  # absolute, not sliding
            return None
        with reading() as s:
            u = s.get(User, int(uid)) if uid.isdigit() else None
            if u is None or str(u.session_version) != version:
                return None
            return LoggedIn.of(u)


def user_record(s) -> User:
    """The logged-in user's row in this session."""
    return s.get(User, current_user.id)


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


student_required = role_required("student")
instructor_required = role_required("instructor")


def client_address() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    cfg = current_app.config
    result = accounts.login(db(), username, password, client_address(),
                            {"user": cfg["LOGIN_LIMIT_USER"], "address": cfg["LOGIN_LIMIT_ADDRESS"]}, cfg["LOGIN_WINDOW"])
    if result.locked is not None:
        minutes = max(1, round(result.locked.total_seconds() / 60))
        return render_template("auth/login.html", username=username,
                               error=f"Too many failed logins. Try again in {minutes} minutes."), 429
    if result.user is None:
        return render_template("auth/login.html", username=username, error="Wrong username or password."), 401
    who = LoggedIn.of(result.user)
    session.clear()  # a new session on login: nothing from before survives (session fixation)
    session.permanent = True
    session["login_at"] = time.time()
    login_user(who)
    return redirect(url_for("instructor.home" if who.is_instructor else "student.dashboard"))


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("instructor.home" if current_user.is_instructor else "student.dashboard"))
