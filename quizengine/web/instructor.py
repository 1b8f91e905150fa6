"""Instructor pages: quizzes and settings, gradebook and exports, attempt review with overrides,
item analysis, regrade, roster. Bank review and editing live in instructor_banks.py."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import accounts, analysis, charts, downloads, quizzes, scores, views
from ..services.attempts import NOT_TEXT
from ..services.clock import now
from ..services.closing import expire_due
from ..services.draw import repeat_free_attempts
from ..services.errors import ServiceError
from ..services.gradebook import FORMATS, gradebook_rows, grades_csv, responses_csv, summary
from . import db, int_arg, reading, writing
from .auth import instructor_required, principal

bp = Blueprint("instructor", __name__, url_prefix="/instructor")


@bp.before_request
@instructor_required
def guard():
    """Every page of the area is for instructors only (403 for students)."""
    return None


@bp.get("/")
def home():
    with reading() as s:
        rows = quizzes.all_quizzes(s)
    return render_template("instructor/home.html", quizzes=rows)


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/quizzes/<quiz_id>/gradebook")
def gradebook(quiz_id: str):
    expire_due(db())
    with reading() as s:
        quiz, rows = gradebook_rows(s, quiz_id)
        attempts = quizzes.attempts_by_user(s, quiz_id)
    figures = summary(rows)
    chart = charts.histogram(figures.percents, title=f"Scores of the {figures.graded} students with a graded attempt",
                             ylabel="students")
    return render_template("instructor/gradebook.html", quiz=quiz, rows=rows, attempts=attempts, formats=FORMATS,
                           figures=figures, histogram=chart)


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
    tz, problems = current_app.config["TIMEZONE"], {}
    if request.method == "POST":
        try:
            with writing() as s:
                quizzes.apply_settings(s, quiz_id, request.form, tz)
            flash("Settings saved.")
            return redirect(url_for("instructor.home"))
        except quizzes.SettingsError as e:
            problems = e.problems
    with reading() as s:
        quiz = quizzes.get_quiz(s, quiz_id)
        repeat_free = repeat_free_attempts(s, quiz)
        values = quizzes.settings_form(quiz, tz)
    if problems:  # what was typed stays in the form
        values.update({k: request.form.get(k, "") for k in values if k in request.form})
    return render_template("instructor/settings.html", quiz=quiz, problems=problems, values=values, timezone=tz,
                           repeat_free=repeat_free), 400 if problems else 200


@bp.get("/attempts/<int:attempt_id>")
def review(attempt_id: int):
    with reading() as s:
        r = views.review(s, principal(), attempt_id, now())
    return render_template("instructor/review.html", a=r.view, info=r.key, student=r.student, trail=r.trail,
                           overrides=r.overrides)


@bp.post("/attempts/<int:attempt_id>/override")
def override(attempt_id: int):
    raw = request.form.get("score", "").strip()
    try:
        value = None if raw == "" else float(raw)
    except ValueError:
        raise ServiceError(400, f"the score {raw!r} is not a number") from None
    if NOT_TEXT.search(request.form.get("reason", "")):  # NUL: PostgreSQL refuses it, SQLite would keep it
        raise ServiceError(400, "the reason contains a control character: remove it and try again")
    with writing() as s:
        scores.override(s, attempt_id, request.form.get("question", ""), value, request.form.get("reason", ""),
                        principal())
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
                           scatter=charts.scatter(points), label=analysis.mistake_label, min_n=analysis.MIN_FLAG_N)


@bp.route("/regrade/<item_id>", methods=["GET", "POST"])
def regrade(item_id: str):
    """Choose a version (the newest by default), see before / after, give a reason, confirm the counts, apply."""
    version_id, reason, problem = int_arg("version"), request.form.get("reason", ""), None
    with reading() as s:
        choices = scores.version_choices(s, item_id)
    step = "preview" if version_id is not None else "choose"
    if request.method == "POST" and version_id is not None:
        try:
            reason = scores.check_reason(reason)
            step = "confirm"
        except ServiceError as e:
            problem = e.message
        if step == "confirm" and request.form.get("confirmed") == "1":
            c = scores.counts(scores.apply(db(), item_id, version_id, reason, principal()))
            flash(f"Regraded {c.attempts} attempts ({c.questions} questions): {c.changed} scores changed"
                  f"{f', {c.overridden} manual scores kept' if c.overridden else ''}. The reason is in each audit trail.")
            return redirect(url_for("instructor.regrade", item_id=item_id, version=version_id))
    rows = []
    if version_id is not None:
        with reading() as s:
            rows = scores.preview(s, item_id, version_id)
    view = [{"attempt_id": r.attempt_id, "student": r.student, "old_version": r.old_version,
             "old": r.old_score, "new": r.new_score, "changed": r.changed, "overridden": r.overridden} for r in rows]
    chosen = next((v for v in choices if v.id == version_id), None)
    return render_template("instructor/regrade.html", item_id=item_id, versions=choices,
                           version_id=version_id if version_id is not None else choices[0].id, chosen=chosen,
                           rows=view, counts=scores.counts(rows), step=step, reason=reason, problem=problem), \
        400 if problem else 200


ROSTER_HASH_BUDGET_S = 40.0  # hashing a roster's passwords must end well before the worker's 60 s timeout


def _downloads() -> Path:
    return Path(current_app.config["INSTANCE"]) / "downloads"


def _roster_page(status: int = 200, **extra):  # type: ignore[no-untyped-def]
    with reading() as s:
        students = accounts.students(s)
    page = {"students": students, "generated": [], "problems": [], "download": None, "reset": None,
            "keep_min": downloads.KEEP_S // 60, **extra}
    return render_template("instructor/roster.html", **page), status


@bp.route("/roster", methods=["GET", "POST"])
def roster():
    if request.method == "GET":
        return _roster_page()
    upload = request.files.get("roster")
    text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("text", "")
    try:
        done = accounts.import_roster(db(), text, current_app.config["PASSWORD_METHOD"], ROSTER_HASH_BUDGET_S)
    except accounts.AccountError as e:
        return _roster_page(400, problems=str(e).split("\n"), text=text)
    flash(f"Roster imported: {done.students} students.")
    download = None
    if done.generated:  # kept on the server for this session only, taken once (never in a cookie)
        download = downloads.put(_downloads(), current_user.sid, accounts.passwords_csv(done.generated).encode())
    return _roster_page(generated=done.generated, download=download)


@bp.get("/roster/passwords/<token>.csv")
def roster_passwords(token: str):
    data = downloads.take(_downloads(), current_user.sid, token)
    if data is None:
        raise ServiceError(404, "this download was taken already or has expired (it is kept "
                                f"{downloads.KEEP_S // 60} minutes, for the session that imported the roster); "
                                "reset the passwords of the students who need one")
    return _csv(data.decode(), "roster-passwords.csv")


@bp.route("/roster/<int:user_id>/reset", methods=["GET", "POST"])
def reset_password(user_id: int):
    """Ask first (naming any attempt in progress, which the reset logs out of); reset on confirmation."""
    if request.form.get("confirmed") != "1":
        with reading() as s:
            student = accounts.student(s, user_id)
            attempts = accounts.open_attempts(s, user_id)
        return render_template("instructor/reset.html", student=student, attempts=attempts)
    password = accounts.generate_password()
    hashed = accounts.hash_password(password, current_app.config["PASSWORD_METHOD"])  # outside the write lock
    with writing() as s:
        name = accounts.reset_password(s, user_id, hashed).username
    # In this page's body only (sent with no-store), never in a flash message: those travel in the
    # session cookie, which is signed but readable.
    return _roster_page(reset=(name, password))
