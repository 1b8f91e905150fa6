"""Property-based fuzz (hypothesis) of the inputs of issue 9: no 500 anywhere, and nothing stored
that later renders a 500 (the attempt page, the instructor's review, the result after submit).

Bounded and deterministic: derandomize=True, no example database, a few dozen examples a test.
Each test builds its own app state once and runs its examples against it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quizengine.models import AttemptQuestion, Response

from . import everytype as et

FUZZ = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text as hostile clients send it: any character, lone surrogates and control characters included.
CHARS = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr), st.sampled_from("\x00\x07\x1b\x85\t\n\u2212"))
TEXT = st.text(CHARS, max_size=12)
NUMBER_TEXT = st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{1,60}(\.[0-9]{0,60})?([eE][+-]?[0-9]{1,9})?\Z"),  # bombs among them
    st.from_regex(r"\A[0-9]{1,3}/[0-9]{0,3}(e[0-9]{1,8})?\Z"),
    st.sampled_from(["1e20000000/1", "3e5000000/1e5000000", "1,5", "abc", "nan", "-inf", "1" * 8000 + "x", "", " "]),
    TEXT,
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats(allow_nan=False), NUMBER_TEXT)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)


def ids(prefix: str, n: int):
    """Ids of a question's options, with near misses."""
    return st.sampled_from([f"{prefix}{i}" for i in range(1, n + 1)] + [f"{prefix}0", f"{prefix}99", "", "c1\ud800"])


def shaped(shape: list[int]):
    """Numeric responses of a given shape, and of nearby wrong shapes."""
    cell = st.one_of(NUMBER_TEXT, st.integers(-(10**30), 10**30), st.floats(allow_nan=False))
    if not shape:
        return cell
    return st.lists(shaped(shape[1:]), min_size=max(0, shape[0] - 1), max_size=shape[0] + 1)


RESPONSES = {  # per question kind of the every-type quiz: plausible values, near misses and any JSON
    "single_choice": st.one_of(ids("c", 4), ANY_JSON),
    "multiple_select": st.one_of(st.lists(ids("c", 5), max_size=6), ANY_JSON),
    "true_false": st.one_of(st.booleans(), ANY_JSON),
    "numeric": st.one_of(shaped([]), ANY_JSON),
    "vector": st.one_of(shaped([2]), ANY_JSON),
    "matrix": st.one_of(shaped([2, 2]), ANY_JSON),
    "short_text": st.one_of(TEXT, st.text(max_size=200), ANY_JSON),
    "matching": st.one_of(st.dictionaries(ids("l", 5), ids("r", 6), max_size=6), ANY_JSON),
    "ordering": st.one_of(st.permutations([f"o{i}" for i in range(1, 6)]), st.lists(ids("o", 5), max_size=6),
                          ANY_JSON),
}
ATTEMPT = st.fixed_dictionaries({kind: st.one_of(st.none(), s) for kind, s in RESPONSES.items()})


def setup(app, users, db):
    """The every-type quiz with unlimited attempts; logged-in clients for ann and the teacher; ann's API headers."""
    et.add_quiz(db, max_attempts=None)
    users.add("ann")
    users.add("teacher", "instructor")
    ann, teacher = app.test_client(), app.test_client()
    users.login(ann, "ann")
    users.login(teacher, "teacher")
    return ann, teacher, users.token(app.test_client(), "ann")


def pages_after_submit(ann, teacher, aid) -> None:
    assert ann.get(f"/attempts/{aid}").status_code == 200
    assert teacher.get(f"/instructor/attempts/{aid}").status_code == 200
    assert ann.post(f"/attempts/{aid}/submit").status_code == 302
    assert ann.get(f"/attempts/{aid}/result").status_code == 200
    assert teacher.get(f"/instructor/attempts/{aid}").status_code == 200


@contextmanager
def fresh_attempt(ann, h):
    """A new attempt's id; submitted afterwards even when the example fails, so the next one can start."""
    aid = et.start(ann, h)["attempt_id"]
    try:
        yield aid
    finally:
        ann.post(f"/api/v1/attempts/{aid}/submit", headers=h)


def test_fuzz_api_and_autosave_responses_of_every_type(app, users, db):
    """Any response to any question, through the API or the page's autosave: 200 or a 4xx; what is kept renders."""
    ann, teacher, h = setup(app, users, db)

    @FUZZ
    @given(ATTEMPT, st.booleans())
    def run(values, through_api):
        with fresh_attempt(ann, h) as aid:
            save_all(aid, values, through_api)

    def save_all(aid, values, through_api):
        for n, (kind, value) in enumerate(values.items()):
            qid = f"q{n + 1}"
            if through_api:
                r = ann.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, json={"response": value})
            else:
                r = ann.post(f"/attempts/{aid}/autosave", json={"question": qid, "response": value, "seq": n})
            assert r.status_code in (200, 400, 413), (kind, value, r.status_code, r.get_data(as_text=True)[:300])
            assert r.is_json
        pages_after_submit(ann, teacher, aid)

    run()


def test_fuzz_stored_values_from_before_the_checks_render(app, users, db):
    """Any JSON already in the database (saved before saves were checked): every page and the grader cope."""
    ann, teacher, h = setup(app, users, db)

    @FUZZ
    @given(st.fixed_dictionaries({kind: ANY_JSON for kind in et.ITEMS}))
    def run(values):
        with fresh_attempt(ann, h) as aid:
            with db.write() as s:
                for q in s.query(AttemptQuestion).filter_by(attempt_id=aid).order_by(AttemptQuestion.slot):
                    value = values[list(et.ITEMS)[q.slot]]
                    if value is not None:
                        s.add(Response(question_id=q.id, value=value, seq=0, saved_at=datetime.now(timezone.utc)))
            pages_after_submit(ann, teacher, aid)

    run()


def form_fields(attempt: dict):
    """The Save form's fields for an attempt's questions, with any text in them (and a few strays)."""
    names = []
    for q in attempt["questions"]:
        base = f"q-{q['id']}"
        names.append(base)
        for o in (q.get("lefts") or []) + (q.get("options") or []):
            names.append(f"{base}-{o['id']}")
        shape = q.get("shape") or []
        if len(shape) == 1:
            names += [f"{base}-{i}" for i in range(shape[0])]
        if len(shape) == 2:
            names += [f"{base}-{i}-{j}" for i in range(shape[0]) for j in range(shape[1])]
    value = st.one_of(st.text(st.characters(codec="utf-8"), max_size=20), NUMBER_TEXT.filter(_encodable),
                      st.sampled_from(["c1", "c2", "c99", "true", "false", "r1", "r6", "1", "5", "-1", "1e400"]))
    return st.dictionaries(st.sampled_from(names + ["then", "junk", "q-q99"]), st.lists(value, min_size=1, max_size=3),
                           max_size=len(names))


def _encodable(s: str) -> bool:
    try:
        s.encode()
        return True
    except UnicodeEncodeError:
        return False


def test_fuzz_save_form(app, users, db):
    """The plain Save form with any fields: a redirect or a 400 page; the attempt still renders after."""
    ann, teacher, h = setup(app, users, db)
    attempt = et.start(ann, h)

    @FUZZ
    @given(form_fields(attempt))
    def run(fields):
        with fresh_attempt(ann, h) as aid:
            r = ann.post(f"/attempts/{aid}/save", data=fields)
            assert r.status_code in (302, 400), (fields, r.status_code)
            if r.status_code == 400:
                assert r.mimetype == "text/html" and "<h1>" in r.get_data(as_text=True)
            pages_after_submit(ann, teacher, aid)

    # The first attempt stays open: submit it so the examples can start theirs.
    assert ann.post(f"/attempts/{attempt['attempt_id']}/submit").status_code == 302
    run()


ANY_FIELD = st.one_of(st.text(st.characters(codec="utf-8"), max_size=30), NUMBER_TEXT.filter(_encodable))
SETTINGS = {
    "time_limit_min": st.one_of(ANY_FIELD, st.floats().map(repr), st.integers(-(10**30), 10**30).map(str),
                                st.sampled_from(["1e308", "-0", "0.001", "nan", "10080", "10081"])),
    "max_attempts": st.one_of(ANY_FIELD, st.integers(-(10**30), 10**30).map(str), st.sampled_from(["0", "100", "101"])),
    **{f: st.one_of(ANY_FIELD, st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
                    st.from_regex(r"\A[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}T[0-9]{1,2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2})?\Z"))
       for f in ("opens_at", "closes_at")},
}


def test_fuzz_settings_form(app, users, db):
    """The quiz settings form with any values: saved or a 400 page; every page that shows the quiz renders."""
    ann, teacher, h = setup(app, users, db)

    @settings(FUZZ, max_examples=40)
    @given(st.fixed_dictionaries({}, optional=SETTINGS))
    def run(form):
        r = teacher.post(f"/instructor/quizzes/{et.QUIZ}/settings", data=form)
        assert r.status_code in (302, 400), (form, r.status_code)
        for page in (f"/instructor/quizzes/{et.QUIZ}/settings", "/instructor/", f"/instructor/quizzes/{et.QUIZ}/gradebook"):
            assert teacher.get(page).status_code == 200, page
        assert ann.get("/dashboard").status_code == 200
        assert ann.get("/api/v1/quizzes", headers=h).status_code == 200
        r = ann.post(f"/quizzes/{et.QUIZ}/start")  # an attempt under these settings, or a clear refusal
        assert r.status_code in (302, 403, 409), r.status_code
        if r.status_code == 302:
            aid = int(r.headers["Location"].rsplit("/", 1)[1])
            assert ann.get(f"/attempts/{aid}").status_code in (200, 302)
            assert ann.post(f"/attempts/{aid}/submit").status_code == 302

    run()


def test_fuzz_login_form(app, users):
    """The login form with any username and password: a page (200/401/429) or a redirect, never a 500."""
    users.add("ann")

    @FUZZ
    @given(st.text(st.characters(codec="utf-8"), max_size=300), st.text(st.characters(codec="utf-8"), max_size=80))
    def run(username, password):
        r = app.test_client().post("/login", data={"username": username, "password": password})
        assert r.status_code in (200, 302, 400, 401, 429), (username, r.status_code)

    run()


def test_fuzz_json_bodies_of_the_save_endpoints(app, users, db):
    """Any JSON body (not only a response) to the API save and the page autosave: 200 or a 4xx, always JSON."""
    ann, _, h = setup(app, users, db)
    aid = et.start(ann, h)["attempt_id"]
    body = st.one_of(ANY_JSON, st.fixed_dictionaries(
        {"response": ANY_JSON}, optional={"seq": SCALARS, "question": st.one_of(TEXT, st.sampled_from(["q1", "q9", "q10"]))}))

    @FUZZ
    @given(body, st.sampled_from(["q1", "q5", "q6", "q9", "q0", "x"]))
    def run(data, qid):
        r = ann.put(f"/api/v1/attempts/{aid}/responses/{qid}", headers=h, data=json.dumps(data),
                    content_type="application/json")
        assert r.status_code in (200, 400, 404, 409, 413) and r.is_json, (data, r.status_code)
        r = ann.post(f"/attempts/{aid}/autosave", data=json.dumps(data), content_type="application/json")
        assert r.status_code in (200, 400, 404, 409, 413) and r.is_json, (data, r.status_code)
        assert ann.get(f"/attempts/{aid}").status_code == 200

    run()
