"""Student pages: dashboard, the attempt page with autosave, confirmation, results, history."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import attempts as svc
from . import db, reading, writing
from .auth import student_required, user_record
from ..bank.params import fmt
from .forms import describe, fitted, response_from_form, widget

bp = Blueprint("student", __name__)


def local(iso_time: str | None) -> str:
    """An ISO time shown in the course's time zone."""
    if not iso_time:
        return ""
    from datetime import datetime

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return datetime.fromisoformat(iso_time).astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


@bp.app_context_processor
def helpers() -> dict:
    return {"local_time": local, "describe": describe, "fitted": fitted, "widget": widget}


@bp.app_template_filter("num")
def num(x: float | None) -> str:
    """A score or point count without noise: 1, 0.5, 2.25."""
    return "" if x is None else fmt(round(float(x), 4))


@bp.get("/dashboard")
@student_required
def dashboard():
    with reading() as s:
        me = user_record(s)
        quizzes = svc.quiz_rows(s, me, svc.now())
        history = [{"id": a.id, "quiz_id": a.quiz_id, "number": a.number, "state": a.state, "score": a.score,
                    "max_score": a.max_score, "started_at": svc.iso(a.started_at),
                    "submitted_at": svc.iso(a.submitted_at)} for a in svc.user_attempts(s, me)]
    return render_template("student/dashboard.html", quizzes=quizzes, history=history)


@bp.post("/quizzes/<quiz_id>/start")
@student_required
def start(quiz_id: str):
    t = svc.now()
    svc.expire_due(db(), t, user_id=current_user.id)  # grade a finished attempt before taking the write lock
    with writing() as s:
        a = svc.start_attempt(s, user_record(s), quiz_id, current_app.config["SECRET_KEY"], t)
        attempt_id = a.id
    return redirect(url_for("student.attempt", attempt_id=attempt_id))


def _view(attempt_id: int) -> dict:
    return svc.fresh_view(db(), current_user, attempt_id)


@bp.get("/attempts/<int:attempt_id>")
@student_required
def attempt(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] != "open":
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
    saved, kept = svc.save_page(db(), current_user, view, answers)
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
        raise svc.ServiceError(400, f"seq-{qid} must be an integer from 0 to {svc.SEQ_MAX}; reload the page")
    return svc.check_seq(int(raw))


@bp.post("/attempts/<int:attempt_id>/autosave")
@student_required
def autosave(attempt_id: int):
    """One question's answer from the page's script (JSON, CSRF token in X-CSRFToken)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("question"), str) or "response" not in data:
        raise svc.ServiceError(400, "send {\"question\": id, \"response\": value, \"seq\": n}")
    seq = svc.check_seq(data.get("seq"))
    saved_at, stored_seq, note = svc.save_response(db(), current_user, attempt_id, data["question"], data["response"],
                                                   seq)
    out = {"saved_at": svc.iso(saved_at), "seq": stored_seq}
    if note:
        out["format_error"] = note
    return jsonify(out)


@bp.get("/attempts/<int:attempt_id>/confirm")
@student_required
def confirm(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] != "open":
        return redirect(url_for("student.result", attempt_id=attempt_id))
    unanswered = [i + 1 for i, q in enumerate(view["questions"]) if q["response"] is None]
    return render_template("student/confirm.html", a=view, unanswered=unanswered)


@bp.post("/attempts/<int:attempt_id>/submit")
@student_required
def submit(attempt_id: int):
    svc.submit_attempt(db(), current_user, attempt_id)
    return redirect(url_for("student.result", attempt_id=attempt_id))


@bp.get("/attempts/<int:attempt_id>/result")
@student_required
def result(attempt_id: int):
    view = _view(attempt_id)
    if view["state"] == "open":
        return redirect(url_for("student.attempt", attempt_id=attempt_id))
    return render_template("student/result.html", a=view)
