"""Instructor pages: quizzes and settings, gradebook and exports, attempt review with overrides,
item analysis, regrade, roster. Bank review and editing live in instructor_banks.py."""

from __future__ import annotations

import math
from datetime import datetime

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..models import Attempt, Quiz, User
from ..services import accounts, analysis, charts, scores
from ..services import attempts as svc
from ..services.gradebook import FORMATS, gradebook_rows, grades_csv, responses_csv
from . import db, int_arg, reading, writing
from .auth import instructor_required, user_record

bp = Blueprint("instructor", __name__, url_prefix="/instructor")


@bp.before_request
@instructor_required
def guard():
    """Every page of the area is for instructors only (403 for students)."""
    return None


@bp.get("/")
def home():
    with reading() as s:
        quizzes = list(s.scalars(select(Quiz).order_by(Quiz.id)))
    return render_template("instructor/home.html", quizzes=quizzes)


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/quizzes/<quiz_id>/gradebook")
def gradebook(quiz_id: str):
    svc.expire_due(db())
    with reading() as s:
        quiz, rows = gradebook_rows(s, quiz_id)
        attempts: dict[int, list[Attempt]] = {}
        for a in s.scalars(select(Attempt).where(Attempt.quiz_id == quiz_id).order_by(Attempt.number)):
            attempts.setdefault(a.user_id, []).append(a)
    return render_template("instructor/gradebook.html", quiz=quiz, rows=rows, attempts=attempts, formats=FORMATS)


@bp.get("/quizzes/<quiz_id>/grades.csv")
def grades(quiz_id: str):
    fmt = request.args.get("format", "plain")
    with reading() as s:
        return _csv(grades_csv(s, quiz_id, fmt), f"{quiz_id}-grades-{fmt}.csv")


@bp.get("/quizzes/<quiz_id>/responses.csv")
def responses(quiz_id: str):
    with reading() as s:
        return _csv(responses_csv(s, quiz_id), f"{quiz_id}-responses.csv")


@bp.route("/quizzes/<quiz_id>/settings", methods=["GET", "POST"])
def settings(quiz_id: str):
    error = None
    if request.method == "POST":
        try:
            with writing() as s:
                _apply_settings(s, quiz_id, request.form)
            flash("Settings saved.")
            return redirect(url_for("instructor.home"))
        except ValueError as e:
            error = str(e)
    with reading() as s:
        quiz = s.get(Quiz, quiz_id)
        if quiz is None:
            raise svc.ServiceError(404, f"no quiz {quiz_id!r}")
        repeat_free = svc.repeat_free_attempts(s, quiz)
    return render_template("instructor/settings.html", quiz=quiz, error=error,
                           repeat_free=repeat_free), 400 if error else 200


MAX_TIME_LIMIT_MIN = 7 * 24 * 60
MAX_ATTEMPTS = 100
YEARS = (2000, 2999)  # dates outside stay clear of datetime's ends after time-zone shifts and time limits


def _apply_settings(s, quiz_id: str, form) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    quiz = s.get(Quiz, quiz_id)
    if quiz is None:
        raise svc.ServiceError(404, f"no quiz {quiz_id!r}")
    tz = ZoneInfo(current_app.config["TIMEZONE"])

    def when(name: str) -> datetime | None:
        raw = form.get(name, "").strip()
        if not raw:
            return None
        try:
            d = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{name}: use a date and time like 2026-12-04T09:00") from None
        if not YEARS[0] <= d.year <= YEARS[1]:
            raise ValueError(f"{name}: give a year from {YEARS[0]} to {YEARS[1]}")
        return d if d.tzinfo else d.replace(tzinfo=tz)

    opens, closes = when("opens_at"), when("closes_at")
    if opens and closes and closes <= opens:
        raise ValueError("the closing time must come after the opening time")
    limit = form.get("time_limit_min", "").strip()
    attempts = form.get("max_attempts", "").strip()
    try:
        minutes = float(limit) if limit else None
        count = int(attempts) if attempts and len(attempts) <= 10 else None if not attempts else MAX_ATTEMPTS + 1
    except ValueError:
        raise ValueError("time limit and attempts are numbers (or empty for none)") from None
    if minutes is not None and not (math.isfinite(minutes) and 1 <= minutes * 60 <= MAX_TIME_LIMIT_MIN * 60):
        raise ValueError(f"the time limit is from 1 second (1/60) to {MAX_TIME_LIMIT_MIN} minutes (a week), "
                         "or empty for none")
    if count is not None and not 1 <= count <= MAX_ATTEMPTS:
        raise ValueError(f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}, or empty for no limit")
    quiz.time_limit_s = int(minutes * 60) if minutes is not None else None
    quiz.max_attempts = count
    quiz.opens_at, quiz.closes_at, quiz.dates_locked = opens, closes, True
    repeats = form.get("repeats")
    if repeats is not None:  # kept over bank reloads, as the dates are
        if repeats not in ("avoid", "allow"):
            raise ValueError("repeats: choose 'avoid' or 'allow'")
        quiz.definition = {**quiz.definition, "repeats": repeats}


@bp.get("/attempts/<int:attempt_id>")
def review(attempt_id: int):
    with reading() as s:
        a = svc.load_attempt(s, user_record(s), attempt_id)
        view = svc.attempt_view(s, a, svc.now(), instructor=True)
        key = svc.key_view(a)
        student = a.user
        trail = scores.audit(s, attempt_id)
        overrides = {svc.question_id(q): q.override_score for q in a.questions}
    info = {q["id"]: q for q in key["questions"]}
    return render_template("instructor/review.html", a=view, info=info, student=student, trail=trail,
                           overrides=overrides)


@bp.post("/attempts/<int:attempt_id>/override")
def override(attempt_id: int):
    raw = request.form.get("score", "").strip()
    try:
        value = None if raw == "" else float(raw)
    except ValueError:
        raise svc.ServiceError(400, f"the score {raw!r} is not a number") from None
    if svc.NOT_TEXT.search(request.form.get("reason", "")):  # NUL: PostgreSQL refuses it, SQLite would keep it
        raise svc.ServiceError(400, "the reason contains a control character: remove it and try again")
    with writing() as s:
        scores.override(s, attempt_id, request.form.get("question", ""), value, request.form.get("reason", ""),
                        user_record(s))
    flash("Score changed; the change is in the audit trail.")
    return redirect(url_for("instructor.review", attempt_id=attempt_id))


@bp.get("/quizzes/<quiz_id>/analysis")
def item_analysis(quiz_id: str):
    which = "all" if request.args.get("attempts") == "all" else "first"
    with reading() as s:
        stats = analysis.analyse(s, quiz_id, which)
    hist = charts.histogram(stats.totals)
    points = [(i.item_id, i.facility, i.discrimination) for i in stats.items
              if i.facility is not None and i.discrimination is not None]
    return render_template("instructor/analysis.html", stats=stats, which=which, histogram=hist,
                           scatter=charts.scatter(points), label=analysis.mistake_label)


@bp.route("/regrade/<item_id>", methods=["GET", "POST"])
def regrade(item_id: str):
    version_id = int_arg("version")
    rows = []
    if request.method == "POST" and version_id is not None:
        rows = scores.apply(db(), item_id, version_id, request.form.get("reason", ""), current_user)
        flash(f"Regraded {len(rows)} questions ({sum(r.changed for r in rows)} scores changed).")
    with reading() as s:
        versions = scores.versions(s, item_id)
        if not versions:
            raise svc.ServiceError(404, f"no item {item_id!r}")
        if version_id is not None and request.method != "POST":
            rows = scores.preview(s, item_id, version_id)
        view = [{"attempt_id": r.attempt_id, "student": r.student, "old_version": r.old_version,
                 "old": r.old_score, "new": r.new_score, "changed": r.changed, "overridden": r.overridden} for r in rows]
        choices = [(v.id, v.version, v.created_at) for v in versions]
    return render_template("instructor/regrade.html", item_id=item_id, versions=choices, version_id=version_id,
                           rows=view, applied=request.method == "POST")


ROSTER_HASH_BUDGET_S = 40.0  # hashing a roster's passwords must end well before the worker's 60 s timeout


@bp.route("/roster", methods=["GET", "POST"])
def roster():
    generated, error = [], None
    if request.method == "POST":
        upload = request.files.get("roster")
        text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("text", "")
        try:
            done = accounts.import_roster(db(), text, current_app.config["PASSWORD_METHOD"], ROSTER_HASH_BUDGET_S)
            generated = done.generated
            flash(f"Roster imported: {done.students} students.")
        except accounts.AccountError as e:
            error = str(e)
    with reading() as s:
        students = list(s.scalars(select(User).where(User.role == "student").order_by(User.username)))
    return render_template("instructor/roster.html", students=students, generated=generated, error=error), \
        400 if error else 200


@bp.post("/roster/<int:user_id>/reset")
def reset_password(user_id: int):
    password = accounts.generate_password()
    hashed = accounts.hash_password(password, current_app.config["PASSWORD_METHOD"])  # outside the write lock
    with writing() as s:
        user = s.get(User, user_id)
        if user is None or user.role != "student":
            raise svc.ServiceError(404, f"no student {user_id}")
        accounts.set_password(s, user, hashed)
        name = user.username
    with reading() as s:
        students = list(s.scalars(select(User).where(User.role == "student").order_by(User.username)))
    # In this page's body only (sent with no-store), never in a flash message: those travel in the
    # session cookie, which is signed but readable.
    return render_template("instructor/roster.html", students=students, generated=[], error=None,
                           reset=(name, password))
