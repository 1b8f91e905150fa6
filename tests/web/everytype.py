"""A quiz holding one item of every type (and every numeric shape), for the input threat tests and the fuzz."""

from __future__ import annotations

from datetime import datetime, timezone

from quizengine.models import Quiz

QUIZ = "threats-every-type"
ITEMS = {
    "single_choice": "act-dying-relu",
    "multiple_select": "act-relu-advantages",
    "true_false": "act-linear-stack",
    "numeric": "act-calc-elu-value",  # a scalar
    "vector": "act-calc-tanh-layer",  # shape (2,)
    "matrix": "act-calc-softmax-jacobian-matrix",  # shape (2, 2)
    "short_text": "bp-delta-name",
    "matching": "act-derivative-forms-match",
    "ordering": "bp-training-loop-order",
}


def add_quiz(db, max_attempts: int | None = None) -> str:
    """Add (or reset: PostgreSQL keeps quizzes between tests) the every-type quiz; return its id."""
    with db.write() as s:
        s.merge(Quiz(id=QUIZ, title="Every item type", description="", max_attempts=max_attempts,
                   definition={"id": QUIZ, "title": "Every item type",
                               "slots": [{"items": [i], "count": 1} for i in ITEMS.values()]},
                   score_policy="best", feedback="after_submission", opens_at=None, closes_at=None,
                   time_limit_s=None, dates_locked=False, updated_at=datetime.now(timezone.utc)))
    return QUIZ


def start(client, headers) -> dict:
    """Start an attempt through the API; the attempt's view, questions in ITEMS order."""
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def by_kind(attempt: dict) -> dict[str, dict]:
    """The attempt's questions keyed like ITEMS."""
    return dict(zip(ITEMS, attempt["questions"]))
