"""Per-student accommodations (issue 15 part 3): extra time, extra attempts, an extended close date,
untimed; per student or per accommodation group; set on the page, by CSV and by the API; audited;
enforced on the window, the deadline and the expiry sweep; shown to the student and in exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from quizengine.lti import keys
from quizengine.models import Attempt, LtiUser, User
from quizengine.models_accommodation import Accommodation, AccommodationChange
from quizengine.services.accommodations import set_student
from quizengine.services.closing import expire_due
from quizengine.services.gradebook import PLAIN_COLUMNS
from quizengine.services.principal import Principal
from quizengine.services.saving import save_response
from quizengine.services.terms import Settings
from tests.lti.mockplatform import MockPlatform
from tests.web import test_lti

from .conftest import set_quiz

QUIZ = "module-04-prep"
API = f"/api/v1/quizzes/{QUIZ}"
PAGE = f"/instructor/quizzes/{QUIZ}/accommodations"


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def teacher(client, users):
    users.add("teacher", "instructor")
    return users.token(client, "teacher")


def start(client, h):
    return client.post(f"{API}/attempts", headers=h)


def attempt_row(db, attempt_id: int) -> Attempt:
    with db.read() as s:
        a = s.get(Attempt, attempt_id)
        s.expunge(a)
        return a


def answer(client, teacher, attempt_id: int) -> tuple[str, object]:
    """The first question of an attempt and its right answer (a valid response of its type)."""
    q = client.get(f"/api/v1/attempts/{attempt_id}/key", headers=teacher).json["questions"][0]
    return q["id"], q["answer"]


def aware(d: datetime | None) -> datetime | None:
    return d if d is None or d.tzinfo else d.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- the deadline

def test_extension_granted_mid_attempt_moves_the_deadline_and_the_sweep_waits_for_it(client, users, db, teacher):
    set_quiz(db, time_limit_s=600)
    users.add("ann")
    h = users.token(client, "ann")
    a = start(client, h).json
    started = aware(attempt_row(db, a["attempt_id"]).started_at)
    assert datetime.fromisoformat(a["expires_at"]) == started + timedelta(seconds=600)
    # 5 minutes in, the instructor grants x1.5 and 5 more minutes: 600 * 1.5 + 300 = 1200 s
    r = client.put(f"{API}/accommodations/ann", headers=teacher, json={"time_multiplier": 1.5, "extra_minutes": 5})
    assert r.status_code == 200, r.json
    assert r.json["effective"]["time_limit_s"] == 1200
    assert aware(attempt_row(db, a["attempt_id"]).expires_at) == started + timedelta(seconds=1200)
    # at the old deadline the sweep leaves it open, and a save still lands
    old_deadline = started + timedelta(seconds=601)
    assert expire_due(db, old_deadline) == 0
    qid, value = answer(client, teacher, a["attempt_id"])
    with db.read() as s:
        user_id = s.get(Attempt, a["attempt_id"]).user_id
    save_response(db, Principal(user_id, "student"), a["attempt_id"], qid, value, None, old_deadline)
    assert attempt_row(db, a["attempt_id"]).state == "open"
    # the page's timer names the new limit
    users.login(client, "ann")
    page = client.get(f"/attempts/{a['attempt_id']}").get_data(as_text=True)
    assert "Your time limit: 20 min (extended)" in page
    # at the new deadline it is submitted, with the new deadline as its time
    assert expire_due(db, started + timedelta(seconds=1201)) == 1
    done = attempt_row(db, a["attempt_id"])
    assert done.state == "expired" and aware(done.submitted_at) == started + timedelta(seconds=1200)


def test_a_shortened_accommodation_moves_the_deadline_back(client, users, db, teacher):
    set_quiz(db, time_limit_s=600)
    users.add("ann")
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"time_multiplier": 2})
    h = users.token(client, "ann")
    a = start(client, h).json
    started = aware(attempt_row(db, a["attempt_id"]).started_at)
    assert datetime.fromisoformat(a["expires_at"]) == started + timedelta(seconds=1200)
    assert client.delete(f"{API}/accommodations/ann", headers=teacher).status_code == 200
    assert aware(attempt_row(db, a["attempt_id"]).expires_at) == started + timedelta(seconds=600)


def test_untimed_has_no_limit_but_the_close_date_still_ends_the_attempt(client, users, db, teacher):
    set_quiz(db, time_limit_s=600)
    users.add("ann")
    users.add("bob")
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"untimed": True})
    a = start(client, users.token(client, "ann")).json
    assert a["expires_at"] is None and a["time_limit_s"] is None and a["time_note"] == "untimed"
    assert expire_due(db, now() + timedelta(days=30)) == 0
    b = start(client, users.token(client, "bob")).json  # the class keeps its limit
    assert b["time_limit_s"] == 600 and b["time_note"] is None and b["expires_at"] is not None
    users.login(client, "ann")
    assert "Your time limit: none (untimed)" in client.get(f"/attempts/{a['attempt_id']}").get_data(as_text=True)
    assert "none (untimed)" in client.get("/dashboard").get_data(as_text=True)
    closes = (now() + timedelta(hours=2)).replace(microsecond=0)
    set_quiz(db, closes_at=closes)
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"untimed": True})  # unchanged: no audit row
    client.post(f"/attempts/{a['attempt_id']}/submit")
    a2 = start(client, users.token(client, "ann")).json
    assert datetime.fromisoformat(a2["expires_at"]) == closes


# ---------------------------------------------------------------- attempts and the window

def test_extra_attempts_the_last_allowed_start_succeeds_and_the_next_is_refused(client, users, db, teacher):
    set_quiz(db, max_attempts=1)
    users.add("ann")
    users.add("bob")
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"extra_attempts": 1})
    h = users.token(client, "ann")
    for _ in (1, 2):
        r = start(client, h)
        assert r.status_code == 201, r.json
        assert client.post(f"/api/v1/attempts/{r.json['attempt_id']}/submit", headers=h).status_code == 200
    r = start(client, h)
    assert r.status_code == 403 and "all 2 attempts are used" in r.json["error"]
    hb = users.token(client, "bob")
    b = start(client, hb)
    assert b.status_code == 201
    assert client.post(f"/api/v1/attempts/{b.json['attempt_id']}/submit", headers=hb).status_code == 200
    r = start(client, hb)
    assert r.status_code == 403 and "all 1 attempts are used" in r.json["error"]
    row = next(q for q in client.get("/api/v1/quizzes", headers=h).json if q["id"] == QUIZ)
    assert row["max_attempts"] == 2 and row["accommodation"]["extra_attempts"] == 1


def test_a_close_date_passed_for_the_class_but_not_for_the_student(client, users, db, teacher):
    t = now().replace(microsecond=0)
    set_quiz(db, closes_at=t - timedelta(hours=1))
    users.add("ann")
    users.add("bob")
    r = client.put(f"{API}/accommodations/ann", headers=teacher,
                   json={"closes_at": (t + timedelta(hours=1)).isoformat()})
    assert r.status_code == 200, r.json
    h = users.token(client, "ann")
    a = start(client, h)
    assert a.status_code == 201, a.json
    assert datetime.fromisoformat(a.json["expires_at"]) == t + timedelta(hours=1)
    qid, value = answer(client, teacher, a.json["attempt_id"])
    saved = client.put(f"/api/v1/attempts/{a.json['attempt_id']}/responses/{qid}", headers=h, json={"response": value})
    assert saved.status_code == 200, saved.json
    r = start(client, users.token(client, "bob"))
    assert r.status_code == 403 and "closed" in r.json["error"]
    users.login(client, "ann")
    dash = client.get("/dashboard").get_data(as_text=True)
    assert "(extended)" in dash and "Continue attempt" in dash
    # after the student's own close date, nothing more
    assert expire_due(db, t + timedelta(hours=1, seconds=1)) == 1


def test_an_earlier_student_close_date_never_shortens_the_class_window(client, users, db, teacher):
    t = now().replace(microsecond=0)
    set_quiz(db, closes_at=t + timedelta(hours=2))
    users.add("ann")
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"closes_at": (t - timedelta(hours=1)).isoformat()})
    a = start(client, users.token(client, "ann"))
    assert a.status_code == 201 and datetime.fromisoformat(a.json["expires_at"]) == t + timedelta(hours=2)


def test_feedback_after_close_waits_for_the_last_extended_close(client, users, db, teacher):
    t = now().replace(microsecond=0)
    set_quiz(db, feedback="after_close", closes_at=t + timedelta(minutes=10))
    users.add("ann")
    users.add("bob")
    hb = users.token(client, "bob")
    b = start(client, hb).json
    client.post(f"/api/v1/attempts/{b['attempt_id']}/submit", headers=hb)
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"closes_at": (t + timedelta(days=2)).isoformat()})
    set_quiz(db, closes_at=t - timedelta(minutes=1))  # the class's window has closed; ann's hasn't
    got = client.get(f"/api/v1/attempts/{b['attempt_id']}", headers=hb).json
    assert all("correct_answer" not in q for q in got["questions"])
    client.delete(f"{API}/accommodations/ann", headers=teacher)
    got = client.get(f"/api/v1/attempts/{b['attempt_id']}", headers=hb).json
    assert all("correct_answer" in q for q in got["questions"])


# ---------------------------------------------------------------- groups

def test_a_group_setting_covers_its_members_and_a_students_own_field_wins(client, users, db, teacher):
    set_quiz(db, time_limit_s=600)
    for name in ("ann", "bob", "cy"):
        users.add(name)
    r = client.put(f"/api/v1/quizzes/{QUIZ}/accommodation-groups/extra-time", headers=teacher,
                   json={"time_multiplier": 1.5})
    assert r.status_code == 200, r.json
    for name in ("ann", "bob"):
        assert client.put(f"{API}/accommodations/{name}", headers=teacher, json={"group": "extra-time"}).status_code == 200
    client.put(f"{API}/accommodations/bob", headers=teacher, json={"group": "extra-time", "extra_minutes": 10})
    limits = {}
    for name in ("ann", "bob", "cy"):
        limits[name] = start(client, users.token(client, name)).json
    assert [limits[n]["time_limit_s"] for n in ("ann", "bob", "cy")] == [900, 1500, 600]
    # the group's setting changes: its members' open attempts get the new deadline
    client.put(f"/api/v1/quizzes/{QUIZ}/accommodation-groups/extra-time", headers=teacher, json={"time_multiplier": 2})
    for name, limit in (("ann", 1200), ("bob", 1800), ("cy", 600)):
        a = attempt_row(db, limits[name]["attempt_id"])
        assert aware(a.expires_at) - aware(a.started_at) == timedelta(seconds=limit), name
    # leaving the group takes the group's time away from the open attempt too
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"group": None})
    a = attempt_row(db, limits["ann"]["attempt_id"])
    assert aware(a.expires_at) - aware(a.started_at) == timedelta(seconds=600)
    listed = client.get(f"{API}/accommodations", headers=teacher).json
    assert [(e["username"], e["group"]) for e in listed] == [(None, "extra-time"), ("bob", "extra-time")]


# ---------------------------------------------------------------- CSV import, all rows or none

def test_csv_import_is_all_rows_or_none_with_every_problem_by_line(client, users, db, teacher):
    users.add("ann")
    users.add("bob")
    users.login(client, "teacher")
    bad = ("username,group,time_multiplier,extra_minutes,extra_attempts,closes_at,untimed\n"
           "ann,,1.5,,,,\n"                       # line 2: fine
           "bob,,0.5,,,,\n"                       # line 3: a multiplier below 1
           "nobody,,,10,,,\n"                     # line 4: no such student
           "ann,,,,2,,\n"                         # line 5: ann again
           ",,,,,,\n"                             # line 6: neither username nor group
           ",extra-time,,,,2026-13-01T09:00,\n"   # line 7: not a date
           "bob,,,,,,maybe\n")                    # line 8: not a yes/no
    r = client.post(f"{PAGE}/import", data={"text": bad})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "Nothing was imported" in body
    for line, words in ((3, "time_multiplier"), (5, "repeats line 2"), (6, "give a username"),
                        (7, "closes_at"), (8, "untimed")):
        assert f"line {line}: " in body and words in body, (line, words)
    assert "line 2:" not in body
    with db.read() as s:
        assert s.scalars(select(Accommodation)).all() == [] and s.scalars(select(AccommodationChange)).all() == []
    # the unknown student is found once the rows are well-formed, and still nothing is written
    r = client.post(f"{PAGE}/import", data={"text": "username,extra_minutes\nann,10\nnobody,10\n"})
    assert r.status_code == 400 and "line 3: no student &#39;nobody&#39;" in r.get_data(as_text=True)
    with db.read() as s:
        assert s.scalars(select(Accommodation)).all() == []
    good = ("username,group,time_multiplier,extra_minutes,untimed\n"
            "ann,extra-time,,10,\n"
            ",extra-time,1.5,,\n"
            "bob,,,,yes\n")
    r = client.post(f"{PAGE}/import", data={"text": good})
    assert r.status_code == 302
    exported = client.get(f"{PAGE}.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["username"], r["group"], r["time_multiplier"], r["extra_minutes"], r["untimed"]) for r in rows] == [
        ("", "extra-time", "1.5", "", ""), ("ann", "extra-time", "", "10", ""), ("bob", "", "", "", "yes")]
    # the export imports again unchanged: no new audit row
    with db.read() as s:
        before = len(s.scalars(select(AccommodationChange)).all())
    assert client.post(f"{PAGE}/import", data={"text": exported}).status_code == 302
    with db.read() as s:
        assert len(s.scalars(select(AccommodationChange)).all()) == before


# ---------------------------------------------------------------- audit and permissions

def test_every_change_is_audited_with_who_when_old_and_new(client, users, db, teacher):
    users.add("ann")
    users.login(client, "teacher")
    t0 = now()
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"extra_attempts": 1})
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"extra_attempts": 2, "group": "g1"})
    r = client.post(PAGE, data={"username": "ann", "group": "g1", "untimed": "yes"})
    assert r.status_code == 302
    client.delete(f"{API}/accommodations/ann", headers=teacher)
    with db.read() as s:
        rows = s.scalars(select(AccommodationChange).order_by(AccommodationChange.id)).all()
        trail = [(c.quiz_id, c.source, (c.old or {}).get("extra_attempts", (c.old or {}).get("group")),
                  (c.new or {}).get("extra_attempts", (c.new or {}).get("group")), c.new and c.new.get("untimed"))
                 for c in rows]
        assert all(aware(c.changed_at) >= t0 and c.changed_by == rows[0].changed_by for c in rows)
    assert trail == [
        (QUIZ, "api", None, 1, False),    # none -> 1 extra attempt
        (QUIZ, "api", 1, 2, False),       # 1 -> 2
        (None, "api", None, "g1", None),  # joined group g1 (every quiz)
        (QUIZ, "page", 2, None, True),    # -> untimed only
        (QUIZ, "api", None, None, None),  # removed
    ]
    page = client.get(PAGE).get_data(as_text=True)
    assert "Audit trail" in page and "extra_attempts=2" in page and "every quiz (group)" in page


@pytest.mark.parametrize("method,url,kw", [
    ("get", f"{API}/accommodations", {}),
    ("get", f"{API}/accommodations/ann", {}),
    ("put", f"{API}/accommodations/ann", {"json": {"extra_attempts": 5}}),
    ("delete", f"{API}/accommodations/ann", {}),
    ("put", f"{API}/accommodation-groups/g", {"json": {"untimed": True}}),
])
def test_students_get_403_from_the_accommodation_api(client, users, db, method, url, kw):
    users.add("ann")
    r = getattr(client, method)(url, headers=users.token(client, "ann"), **kw)
    assert r.status_code == 403 and "instructor" in r.json["error"]
    with db.read() as s:
        assert s.scalars(select(Accommodation)).all() == []


def test_students_get_403_from_the_accommodation_pages(client, users, db):
    users.add("ann")
    users.login(client, "ann")
    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}.csv").status_code == 403
    assert client.post(PAGE, data={"username": "ann", "extra_attempts": "9"}).status_code == 403
    assert client.post(f"{PAGE}/import", data={"text": "username,extra_attempts\nann,9\n"}).status_code == 403
    with db.read() as s:
        assert s.scalars(select(Accommodation)).all() == []


@pytest.mark.parametrize("body,words", [
    ({"time_multiplier": 0.5}, "time_multiplier"),
    ({"time_multiplier": "1.5"}, "time_multiplier: give a number"),
    ({"extra_minutes": 10081}, "extra_minutes"),
    ({"extra_attempts": 1.5}, "extra_attempts"),
    ({"extra_attempts": 101}, "extra_attempts"),
    ({"closes_at": "tomorrow"}, "closes_at"),
    ({"closes_at": "3001-01-01T00:00"}, "year"),
    ({"untimed": "yes"}, "untimed"),
    ({"group": "no spaces"}, "group"),
    ({"group": 3}, "group"),
    ({"extra_time": 3}, "unknown fields: extra_time"),
])
def test_bad_api_values_get_a_400_naming_the_field(client, users, teacher, body, words):
    users.add("ann")
    r = client.put(f"{API}/accommodations/ann", headers=teacher, json=body)
    assert r.status_code == 400 and words in r.json["error"], r.json


def test_unknown_students_and_quizzes_are_404(client, users, teacher):
    users.add("prof2", "instructor")
    assert client.get(f"{API}/accommodations/nobody", headers=teacher).status_code == 404
    assert client.put(f"{API}/accommodations/prof2", headers=teacher, json={}).status_code == 404  # not a student
    assert client.get("/api/v1/quizzes/nope/accommodations", headers=teacher).status_code == 404


# ---------------------------------------------------------------- shown in the gradebook and its CSV

def test_the_gradebook_and_the_plain_csv_show_accommodations_after_the_contract_columns(client, users, db, teacher):
    users.add("ann")
    users.add("bob")
    client.put(f"/api/v1/quizzes/{QUIZ}/accommodation-groups/g1", headers=teacher, json={"time_multiplier": 1.5})
    client.put(f"{API}/accommodations/ann", headers=teacher, json={"group": "g1", "extra_attempts": 1})
    text = client.get(f"{API}/grades.csv", headers=teacher).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == PLAIN_COLUMNS + ["accommodation"]
    by_name = {r[0]: r[-1] for r in rows[1:]}
    assert by_name == {"ann": "group g1: time x1.5; 1 extra attempt", "bob": ""}
    for fmt in ("canvas", "moodle"):  # an LMS import would read another column as a grade
        assert "accommodation" not in client.get(f"{API}/grades.csv?format={fmt}", headers=teacher).get_data(as_text=True)
    users.login(client, "teacher")
    assert "group g1: time x1.5; 1 extra attempt" in client.get(f"/instructor/quizzes/{QUIZ}/gradebook").get_data(as_text=True)


# ---------------------------------------------------------------- LTI: scores of accommodated attempts

def test_an_lms_student_with_an_extended_close_date_gets_their_score_posted(client, db, app):
    with MockPlatform(tool_url="http://localhost", tool_jwks=lambda: _jwks(db)) as platform:
        with db.write() as s:
            test_lti.registry.add_platform(s, platform.issuer, platform.client_id, [platform.deployment_id],
                                           platform.url + "/auth", platform.url + "/token", platform.url + "/jwks",
                                           [], test_lti.outbox.now())
        link = test_lti.deep_link(client, platform)
        student = app.test_client()
        test_lti.launch(student, platform, "link:" + link, "stud-1")
        t = now().replace(microsecond=0)
        set_quiz(db, closes_at=t - timedelta(hours=1))
        with db.write() as s:
            user = s.scalar(select(User).join(LtiUser, LtiUser.user_id == User.id).where(LtiUser.sub == "stud-1"))
            prof = s.scalar(select(User).where(User.role == "instructor"))
            set_student(s, QUIZ, user.username, Settings(closes_at=t + timedelta(hours=1)),
                        Principal(prof.id, prof.role), "page")
        attempt_id = test_lti.start(student, db)
        a = test_lti.answer_key_and_submit(student, db, attempt_id, right=3)
        [(_, body, _)] = platform.recorded.scores
        assert a.state == "submitted" and aware(a.submitted_at) > t - timedelta(hours=1)
        assert body["scoreGiven"] == pytest.approx(a.score)
        assert body["submission"]["submittedAt"] == aware(a.submitted_at).isoformat(timespec="milliseconds")


def _jwks(db):
    with db.read() as s:
        return keys.jwks(s)
