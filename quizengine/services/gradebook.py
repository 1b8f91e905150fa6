"""The gradebook and its CSV exports: grades in plain, canvas and moodle formats (README, "CSV formats"),
and every response; formula-safe."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..constants import GRADE_FORMATS
from ..models import Attempt, AttemptQuestion, Quiz, Role, User
from .clock import aware, iso
from .errors import ServiceError
from .grades import effective_score
from .quizzes import attempts_by_user, get_quiz, policy_score
from .terms import Terms, terms_by_user

FORMATS = GRADE_FORMATS
PLAIN_COLUMNS = ["username", "full_name", "student_id", "attempts", "score", "max_score", "percent", "submitted_at"]
# After the contract's columns (CONTRACT section 5): the student's accommodation at this quiz, e.g.
# "group extra-time: time x1.5; 1 extra attempt" (empty when none). Canvas and Moodle files leave it
# out: their grade imports would read any further column as a grade.
PLAIN_EXTRA = ["accommodation"]


def safe(value: Any) -> str:
    """Escape a cell a spreadsheet would run as a formula (OWASP: prefix with a quote)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.10g}"


def gradebook_rows(s: Session, quiz_id: str) -> tuple[Quiz, list[dict[str, Any]]]:
    """One row per student on the roster, students without attempts included."""
    q = get_quiz(s, quiz_id)
    attempts = attempts_by_user(s, quiz_id)
    students = list(s.scalars(select(User).where(User.role == Role.STUDENT).order_by(User.username)))
    terms = terms_by_user(s, q, [u.id for u in students])
    rows = []
    for u in students:
        mine = attempts.get(u.id, [])
        score, counted = policy_score(q, mine)
        max_score = counted.max_score if counted else (max((a.max_score for a in mine), default=None))
        percent = None if score is None or not max_score else 100.0 * score / max_score
        duration = None
        if counted is not None and counted.submitted_at is not None:
            duration = (aware(counted.submitted_at) - aware(counted.started_at)).total_seconds()
        rows.append({"user": u, "username": u.username, "duration_s": duration, "full_name": u.full_name, "student_id": u.student_id,
                     "email": u.email, "attempts": len(mine), "score": score, "max_score": max_score,
                     "percent": percent, "submitted_at": iso(counted.submitted_at) if counted else None,
                     "accommodation": accommodation_text(terms[u.id])})
    return q, rows


def accommodation_text(terms: Terms) -> str:
    """A student's accommodation in one line (empty when none applies)."""
    text = terms.settings.describe()
    if terms.group is not None and text:
        return f"group {terms.group}: {text}"
    return text


@dataclass
class Summary:
    """The gradebook's figures: over the students with a score that counts (percent of the maximum)."""

    students: int
    graded: int
    mean: float | None
    median: float | None
    percents: list[float]


def summary(rows: list[dict[str, Any]]) -> Summary:
    percents = [r["percent"] for r in rows if r["percent"] is not None]
    return Summary(len(rows), len(percents), statistics.fmean(percents) if percents else None,
                   statistics.median(percents) if percents else None, percents)


def grades_csv(s: Session, quiz_id: str, fmt: str = "plain") -> str:
    if fmt not in FORMATS:
        raise ServiceError(400, f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    q, rows = gradebook_rows(s, quiz_id)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if fmt == "plain":
        w.writerow(PLAIN_COLUMNS + PLAIN_EXTRA)
        for r in rows:
            w.writerow([safe(r["username"]), safe(r["full_name"]), safe(r["student_id"]), r["attempts"],
                        _num(r["score"]), _num(r["max_score"]),
                        "" if r["percent"] is None else f"{r['percent']:.2f}", r["submitted_at"] or "",
                        safe(r["accommodation"])])
    elif fmt == "canvas":
        column = f"{q.title} ({q.id})"
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        possible = max((r["max_score"] for r in rows if r["max_score"]), default=None)
        w.writerow(["Points Possible", "", "", "", "", _num(possible)])
        for r in rows:
            w.writerow([safe(r["full_name"] or r["username"]), "", safe(r["student_id"]), safe(r["username"]), "",
                        _num(r["score"])])
    else:  # moodle: identity columns its grade import maps, then the grade
        w.writerow(["Username", "Email address", q.title])
        for r in rows:
            w.writerow([safe(r["username"]), safe(r["email"]), _num(r["score"])])
    return out.getvalue()


RESPONSE_COLUMNS = ["username", "student_id", "attempt", "state", "question_slot", "item_id", "item_version", "seed",
                    "response", "score", "max_score", "time_s", "saved_at"]


def responses_csv(s: Session, quiz_id: str) -> str:
    """One row per question of every attempt, for analysis in pandas."""
    get_quiz(s, quiz_id)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(RESPONSE_COLUMNS)
    attempts = s.scalars(select(Attempt).where(Attempt.quiz_id == quiz_id).order_by(Attempt.user_id, Attempt.number)
                         .options(selectinload(Attempt.user),
                                  selectinload(Attempt.questions).selectinload(AttemptQuestion.response),
                                  selectinload(Attempt.questions).selectinload(AttemptQuestion.item_version)))
    for a in attempts:
        for q in a.questions:
            r = q.response
            score = effective_score(q)
            w.writerow([safe(a.user.username), safe(a.user.student_id), a.number, a.state, q.slot + 1,
                        q.item_version.item_id, q.item_version.version, q.seed,
                        safe(json.dumps(r.value) if r is not None else ""), _num(score), _num(q.points),
                        f"{r.active_s:.1f}" if r is not None else "", iso(r.saved_at) if r is not None else ""])
    return out.getvalue()
