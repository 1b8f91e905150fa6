"""Quizzes: their window, score policy, feedback policy, the start rules, and the settings an
instructor may change."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import GRADED, Attempt, AttemptState, Quiz, Role
from .clock import iso
from .errors import ServiceError
from .principal import Principal
from .terms import Terms, apply, last_close, terms_for


def all_quizzes(s: Session) -> list[Quiz]:
    return list(s.scalars(select(Quiz).order_by(Quiz.id)))


def find_quiz(s: Session, quiz_id: str) -> Quiz | None:
    return s.get(Quiz, quiz_id)


def get_quiz(s: Session, quiz_id: str) -> Quiz:
    """The quiz, or 404."""
    q = find_quiz(s, quiz_id)
    if q is None:
        raise ServiceError(404, f"no quiz {quiz_id!r}")
    return q


def quiz_window(q: Quiz, t: datetime, terms: Terms | None = None) -> str:
    """``open``, ``not_open`` (before opens_at) or ``closed``: for the class, or under a student's ``terms``."""
    return (terms or apply(q)).window(t)


def feedback_allowed(s: Session, q: Quiz, t: datetime) -> bool:
    if q.feedback == "after_submission":
        return True
    if q.feedback == "after_close":  # once every student's window has closed, extended ones included
        closes = last_close(s, q)
        return closes is not None and t >= closes
    return False


def user_attempts(s: Session, user: Principal, quiz_id: str | None = None) -> list[Attempt]:
    stmt = select(Attempt).where(Attempt.user_id == user.id).order_by(Attempt.quiz_id, Attempt.number)
    if quiz_id is not None:
        stmt = stmt.where(Attempt.quiz_id == quiz_id)
    return list(s.scalars(stmt))


def attempts_by_user(s: Session, quiz_id: str) -> dict[int, list[Attempt]]:
    """Every attempt at a quiz, by student, in order."""
    out: dict[int, list[Attempt]] = {}
    for a in s.scalars(select(Attempt).where(Attempt.quiz_id == quiz_id).order_by(Attempt.number)):
        out.setdefault(a.user_id, []).append(a)
    return out


def policy_score(q: Quiz, attempts: list[Attempt]) -> tuple[float | None, Attempt | None]:
    """The score that counts under the quiz's policy, and the attempt it comes from."""
    graded = [a for a in attempts if a.state in GRADED and a.score is not None]
    if not graded:
        return None, None
    if q.score_policy == "last":
        a = max(graded, key=lambda a: a.number)
        return a.score, a
    if q.score_policy == "mean":
        return sum(a.score for a in graded) / len(graded), max(graded, key=lambda a: a.number)
    a = max(graded, key=lambda a: (a.score, -a.number))
    return a.score, a


def start_refusal(terms: Terms, window: str, attempts: list[Attempt]) -> ServiceError | None:
    """Why a student may not start a new attempt now, or None: the one statement of the start rules
    (``terms``: the quiz's for this student, accommodation included)."""
    if window != "open":
        return ServiceError(403, "the quiz is not open yet" if window == "not_open" else "the quiz is closed")
    if any(a.state == AttemptState.OPEN for a in attempts):
        return ServiceError(409, "you have an attempt in progress; continue it first")
    if terms.max_attempts is not None and len(attempts) >= terms.max_attempts:
        return ServiceError(403, f"all {terms.max_attempts} attempts are used")
    return None


def quiz_rows(s: Session, user: Principal, t: datetime) -> list[dict[str, Any]]:
    """The quizzes a user sees, in the API's format (docs/api.md: GET /api/v1/quizzes)."""
    return [row for row, _, _ in _rows(s, user, t)]


def dashboard_rows(s: Session, user: Principal, t: datetime) -> list[dict[str, Any]]:
    """The API's quiz rows and ``can_start``: whether the start rules let the student start one now."""
    return [{**row, "can_start": start_refusal(terms, row["state"], attempts) is None}
            for row, terms, attempts in _rows(s, user, t)]


def _rows(s: Session, user: Principal, t: datetime) -> list[tuple[dict[str, Any], Terms, list[Attempt]]]:
    """Each quiz as it applies to the user: a student's accommodation changes the close date, the
    time limit and the attempts, and ``accommodation`` says how (None when it changes nothing)."""
    rows = []
    for q in all_quizzes(s):
        attempts = user_attempts(s, user, q.id)
        terms = terms_for(s, q, user.id) if user.role == Role.STUDENT else apply(q)
        best, _ = policy_score(q, attempts)
        rows.append(({
            "id": q.id, "title": q.title, "opens_at": iso(q.opens_at), "closes_at": iso(terms.closes_at),
            "time_limit_s": terms.time_limit_s, "max_attempts": terms.max_attempts, "attempts_used": len(attempts),
            "state": terms.window(t), "score_policy": q.score_policy, "score": best,
            "max_score": _quiz_max_score(q),
            "open_attempt_id": next((a.id for a in attempts if a.state == AttemptState.OPEN), None),
            "accommodation": _accommodation(q, terms),
        }, terms, attempts))
    return rows


def _accommodation(q: Quiz, terms: Terms) -> dict[str, Any] | None:
    """How an accommodation changes a quiz for a student: the class's values beside the student's."""
    extra = (terms.max_attempts or 0) - (q.max_attempts or 0)
    if terms.time_note is None and not terms.close_extended and not extra:
        return None
    return {"time": terms.time_note, "class_time_limit_s": q.time_limit_s,
            "class_closes_at": iso(q.closes_at) if terms.close_extended else None, "extra_attempts": extra}


def _quiz_max_score(q: Quiz) -> float | None:
    slots = q.definition.get("slots", [])
    if all(sl.get("points") is not None for sl in slots):
        return float(sum(sl["points"] * sl.get("count", 1) for sl in slots))
    return None


# ---------------------------------------------------------------- settings

MAX_TIME_LIMIT_MIN = 7 * 24 * 60
MAX_ATTEMPTS = 100
YEARS = (2000, 2999)  # dates outside stay clear of datetime's ends after time-zone shifts and time limits


class SettingsError(ValueError):
    """A setting outside its bounds; the message names it and the bounds."""


def apply_settings(s: Session, quiz_id: str, form: Mapping[str, str], timezone: str) -> Quiz:
    """Set a quiz's dates, time limit, attempts and repeats from the settings form (naive times are in
    ``timezone``); the schedule then wins over the YAML's. SettingsError for a value out of bounds."""
    quiz = get_quiz(s, quiz_id)
    tz = ZoneInfo(timezone)

    def when(name: str) -> datetime | None:
        raw = form.get(name, "").strip()
        if not raw:
            return None
        try:
            d = datetime.fromisoformat(raw)
        except ValueError:
            raise SettingsError(f"{name}: use a date and time like 2026-12-04T09:00") from None
        if not YEARS[0] <= d.year <= YEARS[1]:
            raise SettingsError(f"{name}: give a year from {YEARS[0]} to {YEARS[1]}")
        return d if d.tzinfo else d.replace(tzinfo=tz)

    opens, closes = when("opens_at"), when("closes_at")
    if opens and closes and closes <= opens:
        raise SettingsError("the closing time must come after the opening time")
    limit = form.get("time_limit_min", "").strip()
    attempts = form.get("max_attempts", "").strip()
    try:
        minutes = float(limit) if limit else None
        count = int(attempts) if attempts and len(attempts) <= 10 else None if not attempts else MAX_ATTEMPTS + 1
    except ValueError:
        raise SettingsError("time limit and attempts are numbers (or empty for none)") from None
    if minutes is not None and not (math.isfinite(minutes) and 1 <= minutes * 60 <= MAX_TIME_LIMIT_MIN * 60):
        raise SettingsError(f"the time limit is from 1 second (1/60) to {MAX_TIME_LIMIT_MIN} minutes (a week), "
                            "or empty for none")
    if count is not None and not 1 <= count <= MAX_ATTEMPTS:
        raise SettingsError(f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}, or empty for no limit")
    quiz.time_limit_s = int(minutes * 60) if minutes is not None else None
    quiz.max_attempts = count
    quiz.opens_at, quiz.closes_at, quiz.dates_locked = opens, closes, True
    repeats = form.get("repeats")
    if repeats is not None:  # kept over bank reloads, as the dates are
        if repeats not in ("avoid", "allow"):
            raise SettingsError("repeats: choose 'avoid' or 'allow'")
        quiz.definition = {**quiz.definition, "repeats": repeats}
    return quiz
