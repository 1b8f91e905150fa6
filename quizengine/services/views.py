"""What a student or an instructor sees of attempts: the attempt page, the submit result, the key,
the dashboard's history and the instructor's review. The key shows only once feedback is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..bank.figures import figures_for
from ..bank.params import plain
from ..bank.types import ResponseRefused, check_response
from ..db import Database
from ..models import GRADED, Attempt, AttemptQuestion, AttemptState, ItemVersion, Quiz, ScoreChange, User
from .attempts import load_attempt, question_id
from . import renderings
from .banks import variant_of
from .clock import aware, iso, now
from .closing import close_attempt
from .attempt_rows import QuestionRow, attempt_head, question_rows, variants
from .grades import counted, effective_score
from .principal import Principal
from .quizzes import feedback_allowed, feedback_allowed_at, user_attempts
from .renderings import Key
from .scores import audit
from .terms import terms_for


def attempt_view(s: Session, a: Attempt, t: datetime, instructor: bool = False,
                 fill: dict[Key, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The attempt with its questions and saved responses; the key only once feedback is allowed.

    Each question's public view comes from the shared rendering cache; one rendered here because the
    cache lacked it is added to ``fill`` (when given), for the caller to store once this read ends."""
    q = s.get(Quiz, a.quiz_id)
    show = a.state in GRADED and (instructor or feedback_allowed(s, q, t))
    overrides = _override_reasons(s, a) if a.state in GRADED else {}
    rendered = renderings.lookup(s, [(aq.item_version_id, aq.seed) for aq in a.questions])
    solved = renderings.solutions(s, rendered) if show else {}
    after = renderings.figures_after(s, rendered) if show else {}
    if show or len(rendered) < len(a.questions) or any(aq.response for aq in a.questions):
        _load_versions(s, a)  # variants to build: their item versions in one query, not one each
    questions = []
    for aq in a.questions:
        key = (aq.item_version_id, aq.seed)
        view = rendered.get(key)
        v = None
        if view is None:
            v = variant_of(aq.item_version, aq.seed)
            view = rendered[key] = renderings.render(v)
            if fill is not None:
                fill[key] = view
        d = {k: value for k, value in view.items() if k != "figures"}
        d["id"] = question_id(aq)
        d["points"] = aq.points
        d["response"] = aq.response.value if aq.response else None
        d["saved_at"] = iso(aq.response.saved_at) if aq.response else None
        d["seq"] = aq.response.seq if aq.response else None
        if a.state == AttemptState.OPEN:
            d["format_error"] = None if d["response"] is None else _unreadable(
                v or variant_of(aq.item_version, aq.seed), d["response"])
        if a.state in GRADED:
            d["score"] = effective_score(aq)
            d["max_score"] = aq.points
            if aq.override_score is not None:
                d["override"] = {"score": aq.override_score, "reason": overrides.get(aq.id)}
        if show:
            v = v or variant_of(aq.item_version, aq.seed)
            d.update(_feedback(v, aq, solved.get(key)))
        if "figures" in view:  # those that give the key away (after submission) wait for the results
            d["figures"] = _with_after(v, view["figures"], after.get(key)) if show else list(view["figures"])
        questions.append(d)
    out = {"attempt_id": a.id, "quiz_id": a.quiz_id, "quiz_title": q.title, "number": a.number, "state": a.state,
           "started_at": iso(a.started_at), "expires_at": iso(a.expires_at), "submitted_at": iso(a.submitted_at),
           "questions": questions}
    if a.state == AttemptState.OPEN:  # the timer says "your time limit: 45 min (extended)"
        terms = terms_for(s, q, a.user_id)
        out["time_limit_s"], out["time_note"] = terms.time_limit_s, terms.time_note
    if a.state in GRADED:
        out["score"], out["max_score"] = a.score, a.max_score
    return out


def _with_after(v: Any, shown: list[dict[str, Any]], stored: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every figure of a question in the item's order: those shown before submission (from its view)
    and those shown after (rendered ahead, else drawn now)."""
    if stored is None and any(spec.when != "always" for spec in v.model.figures):
        stored = [f.data() for f in figures_for(v, when="after_submission")]
    before, later = iter(shown), iter(stored or [])
    return [next(before if spec.when == "always" else later) for spec in v.model.figures]


def _load_versions(s: Session, a: Attempt) -> None:
    """Load the item versions of an attempt's questions in one query and set each ``aq.item_version``
    (loading them into the session alone is not enough: its identity map holds them only weakly, so
    they were gone again and every question read its version with a query of its own)."""
    ids = {aq.item_version_id for aq in a.questions}
    loaded = {iv.id: iv for iv in s.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids)))}
    for aq in a.questions:
        set_committed_value(aq, "item_version", loaded[aq.item_version_id])


def _unreadable(v: Any, response: Any) -> str | None:
    """Why a stored answer can't be read (``1,5``, ``abc``): checked again on every load, so the page
    shows it after a reload too; None when it reads (or is blank)."""
    try:
        return check_response(v, response)
    except ResponseRefused as e:  # stored before saves were checked: it can't be read either
        return str(e)
    except OverflowError:  # an integer beyond float64, stored before saves were checked
        return "a number too large to read"


def _override_reasons(s: Session, a: Attempt) -> dict[int, str]:
    """The reason of each question's latest override (attempt question id -> reason)."""
    return {c.attempt_question_id: c.reason for c, _, _ in audit(s, a.id) if c.kind == "override"}


def _feedback(v: Any, aq: AttemptQuestion, solution_html: str | None = None) -> dict[str, Any]:
    """The feedback and key of a question; ``solution_html``: its explanation as rendered ahead."""
    return feedback_of(v, aq.result, aq.response.value if aq.response else None, aq.points, solution_html)


def feedback_of(v: Any, result: dict[str, Any] | None, value: Any, points: float,
                solution_html: str | None = None, view: dict[str, Any] | None = None) -> dict[str, Any]:
    """A graded question's feedback and key, from its stored ``result`` and response ``value``;
    ``solution_html`` and ``view``: its explanation and public view as rendered ahead, if at hand."""
    res = result or {}
    out = {"feedback": res.get("feedback", ""), "format_error": res.get("format_error"),
           "mistake": res.get("mistake"), "correct": res.get("correct", False),
           "correct_answer": plain(v.answer),
           "explanation_html": solution_html if solution_html is not None else v.explanation_html,
           "accepted": v.kind.accepted(v)}
    out.update(v.kind.review(v, value, res, points, view))
    return out


def result_view(s: Session, user: Principal, attempt_id: int, t: datetime,
                graded: list[QuestionRow] | None = None) -> dict[str, Any]:
    """The submit result (README, "JSON API"): score, and per question as the policy allows.

    Read as rows (services/attempt_rows), not ORM objects: it answers every submit; ``graded``, the
    questions as the submit just stored them with their explanations (closing.submit_graded), spares
    reading them again."""
    a = attempt_head(s, attempt_id, user)
    show = feedback_allowed_at(s, a.quiz_id, t)
    rows = graded if graded is not None else question_rows(s, attempt_id, solutions=show)
    built = variants(s, rows, explained=True) if show else [None] * len(rows)
    questions = []
    for q, v in zip(rows, built):
        d: dict[str, Any] = {"id": question_id(q), "score": counted(q.override_score, q.score),
                             "max_score": q.points, "feedback": (q.result or {}).get("feedback", "") if show else ""}
        if show:
            d.update(feedback_of(v, q.result, q.value if q.answered else None, q.points, q.solution_html,
                                 q.view))
        questions.append(d)
    return {"attempt_id": a.id, "state": a.state, "score": a.score, "max_score": a.max_score,
            "submitted_at": iso(a.submitted_at), "questions": questions}


def key_view(a: Attempt) -> dict[str, Any]:
    return {"attempt_id": a.id, "questions": [
        {"id": question_id(aq), "answer": plain(variant_of(aq.item_version, aq.seed).answer),
         "item_id": aq.item_version.item_id, "seed": aq.seed, "version": aq.item_version.version}
        for aq in a.questions]}


def fresh_view(db: Database, user: Principal, attempt_id: int, t: datetime | None = None) -> dict[str, Any]:
    """The attempt's view; an open attempt whose time is up is submitted first (a write only then).
    Views rendered because the shared cache lacked them are stored after the read."""
    t = t or now()
    fill: dict[Key, dict[str, Any]] = {}
    with db.read() as s:
        a = load_attempt(s, user, attempt_id, versions=False)
        due = a.state == AttemptState.OPEN and a.expires_at is not None and aware(a.expires_at) <= t
        if not due:
            view = attempt_view(s, a, t, fill=fill)
    if due:
        close_attempt(db, attempt_id, t, due_only=True)
        with db.read() as s:
            view = attempt_view(s, load_attempt(s, user, attempt_id, versions=False), t, fill=fill)
    if fill:
        renderings.store(db, fill)
    return view


def history(s: Session, user: Principal) -> list[dict[str, Any]]:
    """Every attempt of a student, for the dashboard."""
    return [{"id": a.id, "quiz_id": a.quiz_id, "number": a.number, "state": a.state, "score": a.score,
             "max_score": a.max_score, "started_at": iso(a.started_at), "submitted_at": iso(a.submitted_at)}
            for a in user_attempts(s, user)]


@dataclass
class Review:
    """An attempt as an instructor reviews it: the full view, the key per question, the audit trail."""

    view: dict[str, Any]
    key: dict[str, dict[str, Any]]  # question id -> item id, seed, version, answer
    student: User
    trail: list[tuple[ScoreChange, str, str]]  # (change, changed by, question id)
    overrides: dict[str, float | None]  # question id -> the instructor's score, if any


def review(s: Session, user: Principal, attempt_id: int, t: datetime) -> Review:
    """An attempt with everything an instructor's review page shows."""
    a = load_attempt(s, user, attempt_id)
    key = {q["id"]: q for q in key_view(a)["questions"]}
    return Review(attempt_view(s, a, t, instructor=True), key, a.user, audit(s, attempt_id),
                  {question_id(q): q.override_score for q in a.questions})
