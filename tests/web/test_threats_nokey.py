"""Issue 9, "no answer without computing": a second attempt must not replay the keys of the first."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from quizengine.models import Quiz
from quizengine.services.banks import load_banks

from .conftest import set_quiz

QUIZ = "module-04-prep"
SMALL_POOL = ["vocab-epoch-definition", "vocab-iterations-per-epoch", "vocab-learning-rate"]


def definition(db, **changes) -> dict:
    with db.read() as s:
        return {**s.get(Quiz, QUIZ).definition, **changes}


def take(client, h) -> int:
    """Start an attempt and submit it (blank); return its id."""
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    assert r.status_code == 201, r.json
    attempt_id = r.json["attempt_id"]
    assert client.post(f"/api/v1/attempts/{attempt_id}/submit", headers=h).status_code == 200
    return attempt_id


def items_of(client, teacher, attempt_id: int) -> set[str]:
    r = client.get(f"/api/v1/attempts/{attempt_id}/key", headers=teacher)
    assert r.status_code == 200
    return {q["item_id"] for q in r.json["questions"]}


def two_attempts(client, users, name: str, teacher) -> tuple[set[str], set[str]]:
    users.add(name)
    h = users.token(client, name)
    first = take(client, h)
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    assert r.status_code == 201, r.json
    return items_of(client, teacher, first), items_of(client, teacher, r.json["attempt_id"])


def test_threat_attempt_2_repeats_attempt_1_items(client, users, db):
    users.add("teacher", "instructor")
    teacher = users.token(client, "teacher")
    assert definition(db)["repeats"] == "avoid"  # the shipped default of module-04-prep
    for name in ("ann", "bob", "cid", "dee"):
        first, second = two_attempts(client, users, name, teacher)
        assert len(first) == len(second) == 20
        assert not first & second, (name, first & second)
    # The threat itself, with repeats allowed: the same draw used to give students repeated items.
    set_quiz(db, definition=definition(db, repeats="allow"))
    overlaps = [two_attempts(client, users, name, teacher) for name in ("eve", "fay", "gus", "hal")]
    assert any(first & second for first, second in overlaps)


def test_threat_attempt_2_repeats_least_recently_seen_when_the_pool_runs_out(client, users, db, caplog):
    users.add("teacher", "instructor")
    teacher = users.token(client, "teacher")
    set_quiz(db, max_attempts=3, definition=definition(db, slots=[{"items": SMALL_POOL, "count": 2}]))
    users.add("ann")
    h = users.token(client, "ann")
    drawn = []
    with caplog.at_level(logging.WARNING, logger="quizengine.services.draw"):
        for _ in range(3):
            drawn.append(items_of(client, teacher, take(client, h)))
    first, second, third = drawn
    assert set(SMALL_POOL) - first <= second  # the one unseen item comes first...
    assert first - second <= third  # ...then the item met longest ago (attempt 1 only)
    # and the server says so
    assert [r.getMessage() for r in caplog.records if "repeats 1 items of earlier attempts" in r.getMessage()]


def test_threat_blank_attempt_1_reveals_keys_for_attempt_2(client, users, db):
    users.add("teacher", "instructor")
    teacher = users.token(client, "teacher")
    users.add("ann")
    h = users.token(client, "ann")
    first = take(client, h)
    view = client.get(f"/api/v1/attempts/{first}", headers=h).json
    revealed = [q for q in view["questions"] if "correct_answer" in q]
    assert len(revealed) == 20  # the blank attempt's results show every key...
    r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h)
    assert r.status_code == 201
    assert not items_of(client, teacher, first) & items_of(client, teacher, r.json["attempt_id"])  # ...of no use
    # With keys shown only after the quiz closes, a blank attempt reveals nothing while it is open.
    closes = datetime.now(timezone.utc) + timedelta(days=1)
    set_quiz(db, feedback="after_close", closes_at=closes)
    users.add("bob")
    hb = users.token(client, "bob")
    blank = take(client, hb)
    view = client.get(f"/api/v1/attempts/{blank}", headers=hb).json
    assert view["state"] == "submitted"
    assert not [q for q in view["questions"] if "correct_answer" in q or "explanation_html" in q]


def test_repeat_rule_on_the_settings_page_survives_a_bank_reload(client, users, db, app):
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    page = client.get(f"/instructor/quizzes/{QUIZ}/settings").get_data(as_text=True)
    assert '<option value="avoid" selected>' in page and "The pools fill" in page
    r = client.post(f"/instructor/quizzes/{QUIZ}/settings", data={"max_attempts": "2", "repeats": "allow"})
    assert r.status_code == 302
    with db.write() as s:
        load_banks(s, Path(app.config["BANKS"]))
    assert definition(db)["repeats"] == "allow"
    assert '<option value="allow" selected>' in client.get(f"/instructor/quizzes/{QUIZ}/settings").get_data(as_text=True)
    r = client.post(f"/instructor/quizzes/{QUIZ}/settings", data={"repeats": "sometimes"})
    assert r.status_code == 400 and b"choose &#39;avoid&#39; or &#39;allow&#39;" in r.data
    assert definition(db)["repeats"] == "allow"
