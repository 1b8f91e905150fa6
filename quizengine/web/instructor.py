"""Instructor pages: quizzes and settings, gradebook and exports, attempt review with overrides,
item analysis, regrade, roster. Bank review and editing live in instructor_banks.py."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from ..services import accounts, analysis, charts, quizzes, scores, views
from ..services.attempts import NOT_TEXT
from ..services.clock import now
from ..services.closing import expire_due
from ..services.draw import repeat_free_attempts
from ..services.errors import ServiceError
from ..services.gradebook import FORMATS, gradebook_rows, grades_csv, responses_csv
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
                quizzes.apply_settings(s, quiz_id, request.form, current_app.config["TIMEZONE"])
            flash("Settings saved.")
            return redirect(url_for("instructor.home"))
        except quizzes.SettingsError as e:
            error = str(e)
    with reading() as s:
        quiz = quizzes.get_quiz(s, quiz_id)
        repeat_free = repeat_free_attempts(s, quiz)
    return render_template("instructor/settings.html", quiz=quiz, error=error,
                           repeat_free=repeat_free), 400 if error else 200


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
                           scatter=charts.scatter(points), label=analysis.mistake_label)


@bp.route("/regrade/<item_id>", methods=["GET", "POST"])
def regrade(item_id: str):
    version_id = int_arg("version")
    rows = []
    if request.method == "POST" and version_id is not None:
        rows = scores.apply(db(), item_id, version_id, request.form.get("reason", ""), principal())
        flash(f"Regraded {len(rows)} questions ({sum(r.changed for r in rows)} scores changed).")
    with reading() as s:
        versions = scores.versions(s, item_id)
        if not versions:
            raise ServiceError(404, f"no item {item_id!r}")
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
        students = accounts.students(s)
    return render_template("instructor/roster.html", students=students, generated=generated, error=error), \
        400 if error else 200


@bp.post("/roster/<int:user_id>/reset")
def reset_password(user_id: int):
    password = accounts.generate_password()
    hashed = accounts.hash_password(password, current_app.config["PASSWORD_METHOD"])  # outside the write lock
    with writing() as s:
        name = accounts.reset_password(s, user_id, hashed).username
    with reading() as s:
        students = accounts.students(s)
    # In this page's body only (sent with no-store), never in a flash message: those travel in the
    # session cookie, which is signed but readable.
    return render_template("instructor/roster.html", students=students, generated=[], error=None,
                           reset=(name, password))
