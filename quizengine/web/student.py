"""Student pages: dashboard, the attempt page with autosave, confirmation, results, history."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for

from ..constants import SEQ_MAX
from ..models import AttemptState
from ..services import views, warming
from ..services.attempts import check_seq
from ..services.clock import iso, now
from ..services.closing import expire_due, submit_attempt
from ..services.draw import start_attempt
from ..services.errors import ServiceError
from ..services.quickstart import quick_start
from ..services.quizzes import dashboard_rows
from ..services.saving import save_page, save_response
from . import db, reading, writing
from .auth import principal, student_required
from .forms import response_from_form

bp = Blueprint("student", __name__)


@bp.get("/dashboard")
@student_required
def dashboard():
    with reading() as s:
        quizzes = dashboard_rows(s, principal(), now())
        history = views.history(s, principal())
    return render_template("student/dashboard.html", quizzes=quizzes, history=history)


@bp.get("/quizzes/<quiz_id>/start")
@student_required
def start_page(quiz_id: str):
    """Before a timed attempt: what the timer does, and a button that starts it."""
    with reading() as s:
        quiz = next((q for q in dashboard_rows(s, principal(), now()) if q["id"] == quiz_id), None)
    if quiz is None:
        raise ServiceError(404, f"no quiz {quiz_id!r}")
    if quiz["open_attempt_id"]:
        return redirect(url_for("student.attempt", attempt_id=quiz["open_attempt_id"]))
    return render_template("student/start.html", quiz=quiz)


@bp.post("/quizzes/<quiz_id>/start")
@student_required
def start(quiz_id: str):
    t = now()
    expire_due(db(), t, user_id=principal().id)  # grade a finished attempt before taking the write lock
    secret = current_app.config["SECRET_KEY"]
    started = quick_start(db(), secret, principal().id, None, quiz_id, t)  # the common start, without the ORM
    if started is not None:
        return redirect(url_for("student.attempt", attempt_id=started["attempt_id"]))
    with writing() as s:
        attempt_id = start_attempt(s, principal(), quiz_id, secret, t).id
    return redirect(url_for("student.attempt", attempt_id=attempt_id))


def _view(attempt_id: int) -> dict:
    return views.fresh_view(db(), principal(), attempt_id)


@bp.get("/attempts/<int:attempt_id>")
@student_required
def attempt(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] != AttemptState.OPEN:
        return redirect(url_for("student.result", attempt_id=attempt_id))
    return render_template("student/attempt.html", a=view)


@bp.post("/attempts/<int:attempt_id>/save")
@student_required
def save(attempt_id: int):
    """The plain Save button (works without JavaScript): store the fields the student changed.

    Each question carries the seq its answer had when the page was rendered (``seq-<id>``, empty
    when nothing was saved yet), so an answer saved since in another tab or device is kept.
    """
    view = _view(attempt_id)
    answers = {q["id"]: (response_from_form(request.form, q), _rendered_seq(q["id"])) for q in view["questions"]}
    saved, kept = save_page(db(), principal(), view, answers)
    flash(f"Saved ({len(saved)} answers).")
    if kept:
        numbers = ("question " if len(kept) == 1 else "questions ") + ", ".join(q[1:] for q in kept)
        flash(f"Kept the newer answer to {numbers}: it was changed in another tab or device after this "
              "page was loaded, so your older answer was not saved. Check it below.")
        return redirect(url_for("student.attempt", attempt_id=attempt_id))
    if request.form.get("then") == "confirm":
        return redirect(url_for("student.confirm", attempt_id=attempt_id))
    return redirect(url_for("student.attempt", attempt_id=attempt_id))


def _rendered_seq(qid: str) -> int | None:
    """The seq a question's answer had when the page was rendered; None if nothing was saved then."""
    raw = request.form.get(f"seq-{qid}", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16:
        raise ServiceError(400, f"seq-{qid} must be an integer from 0 to {SEQ_MAX}; reload the page")
    return check_seq(int(raw))


@bp.post("/attempts/<int:attempt_id>/autosave")
@student_required
def autosave(attempt_id: int):
    """One question's answer from the page's script (JSON, CSRF token in X-CSRFToken)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("question"), str) or "response" not in data:
        raise ServiceError(400, "send {\"question\": id, \"response\": value, \"seq\": n}")
    seq = check_seq(data.get("seq"))
    saved_at, stored_seq, note = save_response(db(), principal(), attempt_id, data["question"], data["response"], seq)
    out = {"saved_at": iso(saved_at), "seq": stored_seq}
    if note:
        out["format_error"] = note
    return jsonify(out)


@bp.get("/attempts/<int:attempt_id>/confirm")
@student_required
def confirm(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] != AttemptState.OPEN:
        return redirect(url_for("student.result", attempt_id=attempt_id))
    unanswered = [i + 1 for i, q in enumerate(view["questions"]) if q["response"] is None]
    unreadable = [(i + 1, q["format_error"]) for i, q in enumerate(view["questions"]) if q.get("format_error")]
    return render_template("student/confirm.html", a=view, unanswered=unanswered, unreadable=unreadable)


@bp.post("/attempts/<int:attempt_id>/submit")
@student_required
def submit(attempt_id: int):
    submit_attempt(db(), principal(), attempt_id)
    warming.schedule(principal().id, after_submit=True)  # the next attempt's, once submits pause
    return redirect(url_for("student.result", attempt_id=attempt_id))


@bp.get("/attempts/<int:attempt_id>/result")
@student_required
def result(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] == AttemptState.OPEN:
        return redirect(url_for("student.attempt", attempt_id=attempt_id))
    return render_template("student/result.html", a=view)
