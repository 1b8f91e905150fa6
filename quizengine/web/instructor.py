"""Instructor pages: quizzes, gradebook, CSV downloads, any attempt's review."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from ..services import attempts as svc
from ..services.gradebook import FORMATS, gradebook_rows, grades_csv
from . import reading, writing
from .auth import instructor_required

bp = Blueprint("instructor", __name__, url_prefix="/instructor")


@bp.get("/")
@instructor_required
def home():
    from sqlalchemy import select

    from ..models import Quiz

    with reading() as s:
        quizzes = list(s.scalars(select(Quiz).order_by(Quiz.id)))
    return render_template("instructor/home.html", quizzes=quizzes)


@bp.get("/quizzes/<quiz_id>/gradebook")
@instructor_required
def gradebook(quiz_id: str):
    with writing() as s:
        svc.expire_due(s)
    with reading() as s:
        quiz, rows = gradebook_rows(s, quiz_id)
        attempts = {}
        from sqlalchemy import select

        from ..models import Attempt

        for a in s.scalars(select(Attempt).where(Attempt.quiz_id == quiz_id).order_by(Attempt.number)):
            attempts.setdefault(a.user_id, []).append(a)
    return render_template("instructor/gradebook.html", quiz=quiz, rows=rows, attempts=attempts, formats=FORMATS)


@bp.get("/quizzes/<quiz_id>/grades.csv")
@instructor_required
def grades(quiz_id: str):
    fmt = request.args.get("format", "plain")
    with reading() as s:
        text = grades_csv(s, quiz_id, fmt)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{quiz_id}-grades-{fmt}.csv"'})


@bp.get("/attempts/<int:attempt_id>")
@instructor_required
def review(attempt_id: int):
    from .auth import user_record

    with reading() as s:
        a = svc.load_attempt(s, user_record(s), attempt_id)
        view = svc.attempt_view(s, a, svc.now())
        key = svc.key_view(a)
        student = a.user.username
    answers = {q["id"]: q["answer"] for q in key["questions"]}
    seeds = {q["id"]: q["seed"] for q in key["questions"]}
    items = {q["id"]: (q["item_id"], q["version"]) for q in key["questions"]}
    return render_template("instructor/review.html", a=view, answers=answers, seeds=seeds, items=items,
                           student=student)
