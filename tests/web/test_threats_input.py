"""Issue 9, hostile input: number bombs, responses that don't fit, stored values that broke pages,
ids and settings beyond their columns, and the error handlers behind them. One test per threat."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError

from quizengine.parsing import MAX_DIGITS, MAX_EXPONENT, parse_number
from quizengine.models import AttemptQuestion, Quiz, Response

from . import everytype as et

SLOT = {kind: n for n, kind in enumerate(et.ITEMS)}
QID = {kind: f"q{n + 1}" for kind, n in SLOT.items()}
BOMBS = ["1e20000000/1", "3e5000000/1e5000000", "1" * (MAX_DIGITS + 1), f"1e{MAX_EXPONENT + 1}",
         f"2/1e-{MAX_EXPONENT + 1}", "1e" + "9" * 5000]


@pytest.fixture
def attempt(client, users, db):
    """An open attempt of the every-type quiz for 'ann'; (attempt id, ann's API headers)."""
    et.add_quiz(db)
    users.add("ann")
    users.add("teacher", "instructor")
    h = users.token(client, "ann")
    return et.start(client, h)["attempt_id"], h


def put(client, h, aid, kind, value):
    return client.put(f"/api/v1/attempts/{aid}/responses/{QID[kind]}", headers=h, json={"response": value})


def stored(db, aid, kind):
    with db.read() as s:
        return s.scalar(select(Response.value).join(AttemptQuestion).where(
            AttemptQuestion.attempt_id == aid, AttemptQuestion.slot == SLOT[kind]))


def store(db, aid, kind, value):
    """Write a response straight into the database, as an unchecked save before issue 9 could."""
    with db.write() as s:
        q = s.scalar(select(AttemptQuestion).where(AttemptQuestion.attempt_id == aid,
                                                    AttemptQuestion.slot == SLOT[kind]))
        s.add(Response(question_id=q.id, value=value, seq=1, saved_at=datetime.now(timezone.utc)))


def pages_render(app, users, aid, submit=True):
    """The student's attempt page, then (after submit) the result page and the instructor's review: all 200."""
    ann, teacher = app.test_client(), app.test_client()
    users.login(ann, "ann")
    users.login(teacher, "teacher")
    bodies = [ann.get(f"/attempts/{aid}"), ann.get(f"/attempts/{aid}/confirm")]
    if submit:
        assert ann.post(f"/attempts/{aid}/submit").status_code == 302
        bodies += [ann.get(f"/attempts/{aid}/result"), teacher.get(f"/instructor/attempts/{aid}")]
    assert [r.status_code for r in bodies] == [200] * len(bodies)
    return [r.get_data(as_text=True) for r in bodies]


def is_page(r, status: int, *words: str) -> bool:
    body = r.get_data(as_text=True)
    return r.status_code == status and r.mimetype == "text/html" and "<h1>" in body and all(w in body for w in words)


# ---------------------------------------------------------------- number bombs

@pytest.mark.parametrize("kind,value", [("numeric", b) for b in BOMBS] + [("vector", ["1", BOMBS[0]]),
                                                                         ("matrix", [["1", "2"], [BOMBS[1], "3"]])])
def test_threat_number_bomb_is_refused_before_storage(client, db, attempt, kind, value):
    aid, h = attempt
    t0 = time.perf_counter()
    r = put(client, h, aid, kind, value)
    assert time.perf_counter() - t0 < 2.0
    assert r.status_code == 400
    assert f"at most {MAX_DIGITS} digits" in r.json["error"] and f"-{MAX_EXPONENT} to {MAX_EXPONENT}" in r.json["error"]
    assert stored(db, aid, kind) is None


def test_threat_number_bomb_through_page_autosave_and_save_form(app, users, db, attempt):
    aid, _ = attempt
    ann = app.test_client()
    users.login(ann, "ann")
    r = ann.post(f"/attempts/{aid}/autosave", json={"question": QID["numeric"], "response": BOMBS[0], "seq": 5})
    assert r.status_code == 400 and "at most" in r.json["error"]
    r = ann.post(f"/attempts/{aid}/save", data={f"q-{QID['numeric']}": BOMBS[1]})
    assert is_page(r, 400, "too long a number")
    assert stored(db, aid, "numeric") is None


def test_threat_number_bomb_in_parallel(app, users, db, attempt):
    """Two bombs at once (the issue's 'two 28-byte answers'): both refused at once, nothing stored."""
    aid, h = attempt
    start, results = threading.Barrier(2), []

    def bomb(value):
        c = app.test_client()
        start.wait()
        t0 = time.perf_counter()
        r = put(c, h, aid, "numeric", value)
        results.append((r.status_code, time.perf_counter() - t0))

    threads = [threading.Thread(target=bomb, args=(v,)) for v in BOMBS[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [code for code, _ in results] == [400, 400]
    assert max(s for _, s in results) < 3.0
    assert stored(db, aid, "numeric") is None


def test_threat_number_bomb_stored_before_the_fix_grades_at_once(client, app, users, db, attempt):
    """A bomb already in the database costs grading nothing: it is a format error, found without computing."""
    aid, h = attempt
    store(db, aid, "numeric", "3e5000000/1e5000000")
    store(db, aid, "vector", ["1e20000000/1", "1"])
    t0 = time.perf_counter()
    r = client.post(f"/api/v1/attempts/{aid}/submit", headers=h)
    assert time.perf_counter() - t0 < 2.0
    assert r.status_code == 200
    by_id = {q["id"]: q for q in r.json["questions"]}
    for kind in ("numeric", "vector"):
        assert by_id[QID[kind]]["score"] == 0 and "too long a number" in by_id[QID[kind]]["format_error"]


@pytest.mark.parametrize("text", [
    "1" * 8000 + "x",  # the old number pattern backtracked for seconds on this
    "1." + "1" * 7000 + "e" + "1" * 900 + "x",
    "1/" + "1" * 8000 + "x",
])
def test_threat_long_non_number_is_read_in_linear_time(text):
    t0 = time.perf_counter()
    with pytest.raises(ValueError):
        parse_number(text)
    assert time.perf_counter() - t0 < 0.1


def test_threat_unreadable_text_is_still_saved_with_a_note(client, db, attempt):
    """Not a bomb: ordinary text that isn't a number is kept, with a note the student can act on."""
    aid, h = attempt
    for value, note in [("abc", "is not a number"), ("1,5", "use a dot")]:
        r = put(client, h, aid, "numeric", value)
        assert r.status_code == 200 and note in r.json["format_error"]
        assert stored(db, aid, "numeric") == value


# ---------------------------------------------------------------- responses that don't fit

@pytest.mark.parametrize("kind,value,message", [
    # choice ids the variant doesn't have, ticked twice
    ("single_choice", "c99", "is not an option"),
    ("multiple_select", ["c1", "c99"], "is not an option"),
    ("multiple_select", ["c1", "c1"], "once"),
    # matching: keys are left ids, values right ids
    ("matching", {"l99": "r1"}, "is not a term"),
    ("matching", {"l1": "r99"}, "is not an option"),
    ("matching", {"l1": 3}, "an object"),
    # ordering: a permutation of the item's ids
    ("ordering", ["o1", "o2"], "every entry once"),
    ("ordering", ["o1", "o1", "o2", "o3", "o4"], "every entry once"),
    ("ordering", ["o1", "o2", "o3", "o4", "o5", "o6"], "every entry once"),
    # numeric shapes
    ("numeric", ["1"], "one number"),
    ("vector", "1", "vector"),
    ("vector", ["1", "2", "3"], "list of 2"),
    ("vector", [["1"], ["2"]], "list of 2"),
    ("matrix", ["1", "2"], "2 x 2 matrix"),
    ("matrix", [["1"], ["2", "3"]], "2 x 2 matrix"),
    ("matrix", [["1", ["2"]], ["3", "4"]], "2 x 2 matrix"),
    # JSON types
    ("true_false", "yes", "true or false"),
    ("short_text", 5, "a string"),
])
def test_threat_response_that_doesnt_fit_the_variant_is_refused(client, db, attempt, kind, value, message):
    aid, h = attempt
    r = put(client, h, aid, kind, value)
    assert r.status_code == 400 and message in r.json["error"]
    assert stored(db, aid, kind) is None


@pytest.mark.parametrize("kind,value,message", [
    ("short_text", "delta\ud800", "lone surrogate (U+D800)"),
    ("short_text", "del\x00ta", "control character (U+0000)"),
    ("short_text", "del\x1bta", "control character (U+001B)"),
    ("short_text", "del\x85ta", "control character (U+0085)"),
    ("single_choice", "c1\udfff", "lone surrogate"),
    ("matching", {"l1\ud800": "r1"}, "lone surrogate"),
    ("numeric", "1\x00", "control character"),
])
def test_threat_lone_surrogate_or_control_character_is_refused(client, db, attempt, kind, value, message):
    aid, h = attempt
    r = put(client, h, aid, kind, value)
    assert r.status_code == 400 and message in r.json["error"]
    assert stored(db, aid, kind) is None


def test_threat_text_check_keeps_tabs_newlines_and_any_language(client, db, attempt):
    aid, h = attempt
    for value in ["the error\tterm\n", "δ (delta) ½ 😀"]:
        assert put(client, h, aid, "short_text", value).status_code == 200
        assert stored(db, aid, "short_text") == value


# ---------------------------------------------------------------- stored values that broke pages

def test_threat_lone_surrogate_stored_breaks_review(app, users, db, attempt):
    """The issue: a lone surrogate saved as an answer made the instructor's review page 500."""
    aid, _ = attempt
    store(db, aid, "short_text", "delta\ud800")
    store(db, aid, "matching", {"l1\udc00": "r1"})
    bodies = pages_render(app, users, aid)
    assert "delta\ufffd" in bodies[-1] and "delta\ufffd" in bodies[-2]
    teacher = app.test_client()
    users.login(teacher, "teacher")
    r = teacher.post(f"/instructor/attempts/{aid}/override", data={"question": QID["short_text"], "score": "1",
                                                                  "reason": "accepted"})
    assert r.status_code == 302  # the attempt can be rescored again


def test_threat_ordering_ids_that_dont_fit_break_attempt_page(app, users, db, attempt):
    aid, _ = attempt
    store(db, aid, "ordering", ["zz", "o3", "o3", 7])
    body = pages_render(app, users, aid, submit=False)[0]
    # every option once, the stored known id first
    ranks = [body.index(f'name="q-{QID["ordering"]}-o{n}"') for n in range(1, 6)]
    assert len(set(ranks)) == 5 and ranks[2] == min(ranks)
    pages_render(app, users, aid)


@pytest.mark.parametrize("kind,value", [
    ("matrix", [["1"]]), ("matrix", "1"), ("matrix", [["1", "2"], "3"]), ("vector", "1"), ("vector", [["1", "2"]]),
    ("numeric", ["1", "2"]), ("numeric", {"a": 1}),
])
def test_threat_matrix_shape_that_doesnt_fit_breaks_attempt_page(app, users, db, attempt, kind, value):
    aid, _ = attempt
    store(db, aid, kind, value)
    pages_render(app, users, aid)


@pytest.mark.parametrize("kind,value", [
    ("single_choice", ["c1"]), ("single_choice", "zz"), ("multiple_select", "c1"), ("multiple_select", [["c1"]]),
    ("true_false", "maybe"), ("short_text", ["x"]), ("matching", ["l1"]), ("matching", {"l1": ["r1"]}),
    ("numeric", 10**400), ("numeric", True),
])
def test_threat_stored_value_of_the_wrong_type_breaks_pages(app, users, db, attempt, kind, value):
    aid, _ = attempt
    store(db, aid, kind, value)
    pages_render(app, users, aid)


# ---------------------------------------------------------------- bounded HTML routes

ATTEMPT_URLS = [("get", "/attempts/{}"), ("get", "/attempts/{}/confirm"), ("get", "/attempts/{}/result"),
                ("post", "/attempts/{}/save"), ("post", "/attempts/{}/autosave"), ("post", "/attempts/{}/submit")]
TEACHER_URLS = [("get", "/instructor/attempts/{}"), ("post", "/instructor/attempts/{}/override"),
                ("post", "/instructor/roster/{}/reset")]


@pytest.mark.parametrize("number", ["9" * 20, str(2**31), "9" * 5000])
def test_threat_20_digit_attempt_id(app, users, attempt, number):
    ann, teacher = app.test_client(), app.test_client()
    users.login(ann, "ann")
    users.login(teacher, "teacher")
    for who, urls in ((ann, ATTEMPT_URLS), (teacher, TEACHER_URLS)):
        for method, url in urls:
            r = getattr(who, method)(url.format(number))
            assert is_page(r, 404, "Not found"), (url, r.status_code)


@pytest.fixture
def teacher(app, users, db):
    et.add_quiz(db)
    users.add("teacher", "instructor")
    c = app.test_client()
    users.login(c, "teacher")
    return c


def quiz_settings(db):
    with db.read() as s:
        q = s.get(Quiz, et.QUIZ)
        return q.time_limit_s, q.max_attempts, q.opens_at, q.closes_at


@pytest.mark.parametrize("field,value,message", [
    # time limits
    ("time_limit_min", "1e308", "10080 minutes"), ("time_limit_min", "inf", "10080 minutes"),
    ("time_limit_min", "nan", "10080 minutes"), ("time_limit_min", "-5", "10080 minutes"),
    ("time_limit_min", "0", "10080 minutes"), ("time_limit_min", "10081", "10080 minutes"),
    ("time_limit_min", "ten", "are numbers"),
    # attempts
    ("max_attempts", "-1", "from 1 to 100"), ("max_attempts", "0", "from 1 to 100"),
    ("max_attempts", "9" * 30, "from 1 to 100"), ("max_attempts", "101", "from 1 to 100"),
    ("max_attempts", "1.5", "are numbers"), ("max_attempts", "9" * 5000, "from 1 to 100"),
    # dates
    ("opens_at", "0001-01-01T00:00", "year from 2000"), ("closes_at", "9999-12-31T23:59", "year from 2000"),
    ("opens_at", "2026-13-01T09:00", "like 2026-12-04T09:00"), ("closes_at", "x" * 5000, "like 2026-12-04T09:00"),
    ("closes_at", "1" * 5000, "year from 2000"),  # Python reads this as 1111-11-11 11:11:11.111111,
])
def test_threat_time_limit_1e308_and_other_unbounded_settings(teacher, db, field, value, message):
    before = quiz_settings(db)
    r = teacher.post(f"/instructor/quizzes/{et.QUIZ}/settings", data={field: value})
    assert is_page(r, 400, message)
    assert quiz_settings(db) == before
    assert teacher.get("/instructor/").status_code == 200


def test_threat_settings_within_bounds_still_save(teacher, db):
    r = teacher.post(f"/instructor/quizzes/{et.QUIZ}/settings",
                     data={"time_limit_min": "10080", "max_attempts": "100", "opens_at": "2000-01-01T00:00",
                           "closes_at": "2999-12-31T23:00"})
    assert r.status_code == 302
    assert quiz_settings(db)[:2] == (10080 * 60, 100)


@pytest.mark.parametrize("url", [
    "/instructor/banks/history/vocabulary.yaml?version=" + "9" * 20,
    "/instructor/banks/history/vocabulary.yaml?a=" + "9" * 20,
    "/instructor/banks/history/vocabulary.yaml?a=1&b=-" + "9" * 20,
    "/instructor/regrade/bp-delta-name?version=" + "9" * 20,
    "/instructor/banks/items/bp-delta-name?seed=" + "9" * 30,
    "/instructor/banks/items/bp-delta-name?seed=-1",
    "/instructor/banks/items/bp-delta-name?seed=1e5",
])
def test_threat_huge_integer_in_instructor_query(teacher, url):
    r = teacher.get(url)
    assert is_page(r, 400, "must be a whole number from 0 to")


def test_threat_nul_in_override_reason(app, users, client, db, attempt):
    """PostgreSQL refuses a NUL in text (a 500 before issue 9), SQLite stored it: a 400 on both now."""
    aid, h = attempt
    assert client.post(f"/api/v1/attempts/{aid}/submit", headers=h).status_code == 200
    teacher = app.test_client()
    users.login(teacher, "teacher")
    r = teacher.post(f"/instructor/attempts/{aid}/override", data={"question": "q1", "score": "1", "reason": "ok\x00"})
    assert is_page(r, 400, "control character")
    with db.read() as s:
        assert s.scalar(select(AttemptQuestion.override_score).where(AttemptQuestion.attempt_id == aid,
                                                                     AttemptQuestion.slot == 0)) is None


def test_threat_nul_in_html_path(app, users, attempt):
    ann = app.test_client()
    users.login(ann, "ann")
    assert is_page(ann.post("/quizzes/a%00b/start"), 404)


# ---------------------------------------------------------------- handlers of last resort

@pytest.mark.parametrize("error,message", [
    (lambda: OverflowError("Python int too large to convert to SQLite INTEGER"), "too large"),
    (lambda: RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (lambda: DataError("INSERT ...", {}, Exception("value too long for type character varying(100)")),
     "the database refused a value"),
])
def test_threat_overflow_recursion_and_dataerror_become_400(app, users, error, message):
    """Whatever check is missed, these mean bad input: a clear 400 in the caller's style, not a 500."""
    def boom():
        raise error()

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    c = app.test_client()
    r = c.get("/api/v1/boom")
    assert r.status_code == 400 and r.is_json and message in r.json["error"]
    assert is_page(c.get("/boom"), 400, message)


def test_threat_lone_surrogate_in_any_page_body(app):
    """The last line of defence: a page body holding a lone surrogate is sent with "?", not a 500."""
    app.add_url_rule("/surrogate", "surrogate", lambda: "answer \ud800 shown")
    r = app.test_client().get("/surrogate")
    assert r.status_code == 200 and r.data == b"answer ? shown"
