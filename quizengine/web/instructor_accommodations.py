"""Instructor pages for a quiz's accommodations: the list with what applies to each student, the
form for one student or group, the CSV import (all rows or none) and export, the audit trail."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from ..services import accommodation_csv, accommodations
from ..services.accommodations import AccommodationError
from ..services.quizzes import get_quiz
from ..services.terms import Settings
from . import reading, writing
from .auth import instructor_required, principal

bp = Blueprint("accommodations", __name__, url_prefix="/instructor/quizzes")


@bp.before_request
@instructor_required
def guard():
    """Every page of the area is for instructors only (403 for students)."""
    return None


def _timezone() -> str:
    return current_app.config["TIMEZONE"]


def _page(quiz_id: str, error: str | None = None, form: dict[str, str] | None = None, status: int = 200):
    with reading() as s:
        quiz = get_quiz(s, quiz_id)
        rows = accommodations.entries(s, quiz_id)
        trail = accommodations.trail(s, quiz_id)
        if form is None and (request.args.get("username") or request.args.get("group")):
            name, group = request.args.get("username", ""), request.args.get("group", "")
            entry = accommodations.student_entry(s, quiz_id, name) if name else \
                accommodations.group_entry(s, quiz_id, group)
            form = {"username": name, "group": entry.group or "",
                    **accommodations.settings_form(entry.settings, _timezone())}
    return render_template("instructor/accommodations.html", quiz=quiz, rows=rows, trail=trail, error=error,
                           form=form or {}, columns=accommodation_csv.CSV_COLUMNS), status


@bp.get("/<quiz_id>/accommodations")
def page(quiz_id: str):
    return _page(quiz_id)


@bp.post("/<quiz_id>/accommodations")
def set_one(quiz_id: str):
    """One student's accommodation (and group), or one group's, as the CSV's row would set it."""
    form = {k: request.form.get(k, "").strip() for k in ("username", "group") + accommodations.SETTING_FIELDS}
    try:
        settings = accommodations.parse_settings(form, _timezone())
        with writing() as s:
            who = accommodations.set_row(s, quiz_id, form["username"], form["group"], settings, principal(), "page")
    except AccommodationError as e:
        return _page(quiz_id, str(e), form, 400)
    flash(f"Accommodation of {who} {'removed' if settings == Settings() else 'saved'}; open attempts have their "
          "new deadlines, and the change is in the audit trail.")
    return redirect(url_for("accommodations.page", quiz_id=quiz_id))


@bp.post("/<quiz_id>/accommodations/import")
def import_csv(quiz_id: str):
    upload = request.files.get("csv")
    text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("text", "")
    try:
        rows = accommodation_csv.parse_csv(text, _timezone())  # every row checked before the write lock
        with writing() as s:
            n = accommodation_csv.import_rows(s, quiz_id, rows, principal())
    except AccommodationError as e:
        return _page(quiz_id, f"Nothing was imported:\n{e}", status=400)
    flash(f"Imported {n} accommodation rows.")
    return redirect(url_for("accommodations.page", quiz_id=quiz_id))


@bp.get("/<quiz_id>/accommodations.csv")
def export_csv(quiz_id: str):
    with reading() as s:
        text = accommodation_csv.export_csv(s, quiz_id, _timezone())
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{quiz_id}-accommodations.csv"'})
