"""Quizzes: their window, score policy, feedback policy, the start rules, and the settings an
instructor may change."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import GRADED, Attempt, AttemptState, Quiz, Role
from .clock import aware, iso
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


_POLICY = select(Quiz.feedback).where(Quiz.id == bindparam("quiz_id"))


def feedback_allowed_at(s: Session, quiz_id: str, t: datetime) -> bool:
    """``feedback_allowed`` for a quiz by its id, reading its policy alone (one Core statement, for
    every submit's results); the quiz itself only when the policy depends on its close."""
    policy = s.connection().execute(_POLICY, {"quiz_id": quiz_id}).scalar()
    if policy == "after_close":
        return feedback_allowed(s, s.get(Quiz, quiz_id), t)
    return policy == "after_submission"


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
    """Settings outside their bounds: ``problems`` maps each form field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def _when(raw: str, name: str, tz: ZoneInfo, problems: dict[str, str]) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        d = datetime.fromisoformat(raw)
    except ValueError:
        problems[name] = f"{name}: use a date and time like 2026-12-04T09:00"
        return None
    if not YEARS[0] <= d.year <= YEARS[1]:
        problems[name] = f"{name}: give a year from {YEARS[0]} to {YEARS[1]}"
        return None
    # Stored in UTC: SQLite keeps a time's digits and drops its offset (every stored time is UTC).
    return (d if d.tzinfo else d.replace(tzinfo=tz)).astimezone(timezone.utc)


def settings_form(quiz: Quiz, tz_name: str) -> dict[str, str]:
    """The settings form's fields as the quiz has them now; times in the course time zone ``tz_name``."""
    tz = ZoneInfo(tz_name)

    def local(d: datetime | None) -> str:
        return aware(d).astimezone(tz).strftime("%Y-%m-%dT%H:%M") if d else ""

    minutes = quiz.time_limit_s / 60 if quiz.time_limit_s else None
    return {"opens_at": local(quiz.opens_at), "closes_at": local(quiz.closes_at),
            "time_limit_min": "" if minutes is None else f"{minutes:.10g}",
            "max_attempts": str(quiz.max_attempts or ""), "repeats": quiz.definition.get("repeats", "avoid")}


def apply_settings(s: Session, quiz_id: str, form: Mapping[str, str], tz_name: str) -> Quiz:
    """Set a quiz's dates, time limit, attempts and repeats from the settings form (naive times are in
    ``tz_name``); the schedule then wins over the YAML's. SettingsError naming every value out of
    bounds (nothing is changed then)."""
    quiz = get_quiz(s, quiz_id)
    tz = ZoneInfo(tz_name)
    problems: dict[str, str] = {}
    opens = _when(form.get("opens_at", ""), "opens_at", tz, problems)
    closes = _when(form.get("closes_at", ""), "closes_at", tz, problems)
    if opens and closes and closes <= opens:
        problems["closes_at"] = "the closing time must come after the opening time"
    limit = form.get("time_limit_min", "").strip()
    minutes = None
    try:
        minutes = float(limit) if limit else None
    except ValueError:
        problems["time_limit_min"] = "time limits are numbers: give minutes, like 45 or 1.5 (or empty for none)"
    if minutes is not None and not (math.isfinite(minutes) and 1 <= minutes * 60 <= MAX_TIME_LIMIT_MIN * 60):
        problems["time_limit_min"] = (f"the time limit is from 1 second (1/60) to {MAX_TIME_LIMIT_MIN} minutes "
                                      "(a week), or empty for none")
    attempts = form.get("max_attempts", "").strip()
    count = None
    if attempts:
        if not (attempts.isascii() and attempts.isdigit() and len(attempts) <= 10 and 1 <= int(attempts) <= MAX_ATTEMPTS):
            problems["max_attempts"] = (f"attempts are numbers: give a whole number from 1 to {MAX_ATTEMPTS}, "
                                        "or empty for no limit")
        else:
            count = int(attempts)
    repeats = form.get("repeats")
    if repeats is not None and repeats not in ("avoid", "allow"):
        problems["repeats"] = "repeats: choose 'avoid' or 'allow'"
    if problems:
        raise SettingsError(problems)
    quiz.time_limit_s = int(minutes * 60) if minutes is not None else None
    quiz.max_attempts = count
    quiz.opens_at, quiz.closes_at, quiz.dates_locked = opens, closes, True
    if repeats is not None:  # kept over bank reloads, as the dates are
        quiz.definition = {**quiz.definition, "repeats": repeats}
    return quiz
