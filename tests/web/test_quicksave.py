"""The autosave's fast lane (web/quicksave.py, services/quicksave.py): what it answers itself, what it
leaves to the full Flask path, and that both answer alike."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import delete, select, update

from quizengine.constants import SEQ_MAX
from quizengine.models import Attempt, AttemptQuestion, Response, User, UserSession
from quizengine.services import quicksave as quick
from quizengine.services.accounts import hash_password, set_password
from quizengine.services.clock import now
from quizengine.web.quicksave import QuickSave
from tests.web.conftest import FAST_HASH

QUIZ = "module-04-prep"


class Counting:
    """The Flask app behind the fast lane, counting the requests that reach it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.inner(environ, start_response)


@pytest.fixture
def flask_calls(app) -> Counting:
    lane = app.wsgi_app
    assert isinstance(lane, QuickSave)
    lane.app = Counting(lane.app)
    return lane.app


@pytest.fixture
def ann(client, users):
    """Ann's token, her open attempt and the URL of a scalar numeric question of it."""
    users.add("ann")
    h = users.token(client, "ann")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    qid = next(q["id"] for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    return h, a["attempt_id"], qid, f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}"


def stored(db, attempt_id: int, qid: str):
    """The (value, seq) stored for a question, or None."""
    with db.read() as s:
        return s.execute(select(Response.value, Response.seq).join(AttemptQuestion)
                         .where(AttemptQuestion.attempt_id == attempt_id,
                                AttemptQuestion.slot == int(qid[1:]) - 1)).first()


def test_the_common_save_is_answered_without_flask_and_alike(app, client, ann, db, flask_calls):
    h, aid, qid, url = ann
    fast = client.put(url, headers=h, json={"response": "1.5", "seq": 1})  # the first save: an insert
    again = client.put(url, headers=h, json={"response": "2.5", "seq": 2})  # then an update
    assert (fast.status_code, again.status_code, flask_calls.calls) == (200, 200, 0)
    assert again.json["seq"] == 2 and again.json["saved_at"].endswith("+00:00")
    assert again.data == (json.dumps(again.json, separators=(",", ":"), sort_keys=True) + "\n").encode()
    assert tuple(stored(db, aid, qid)) == ("2.5", 2)
    # the same request with a cookie goes through Flask: same status, fields and headers
    browser = app.test_client()
    browser.set_cookie("theme", "dark")
    full = browser.put(url, headers=h, json={"response": "3.5", "seq": 3})
    assert flask_calls.calls == 1 and full.status_code == 200 and set(full.json) == set(again.json)
    skip = {"Date", "Content-Length", "Vary", "Set-Cookie"}
    assert {k: v for k, v in again.headers if k not in skip} == {k: v for k, v in full.headers if k not in skip}
    assert again.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in again.headers[
        "Content-Security-Policy"]


def test_a_format_note_comes_back_from_the_fast_lane(client, ann, flask_calls):
    h, _, _, url = ann
    r = client.put(url, headers=h, json={"response": "1,5", "seq": 1})
    assert r.status_code == 200 and r.json["format_error"] and flask_calls.calls == 0


@pytest.mark.parametrize("how", ["password change", "session version changed"])
def test_a_revoked_token_is_refused_at_once(client, ann, db, flask_calls, how):
    h, aid, qid, url = ann
    assert client.put(url, headers=h, json={"response": "1", "seq": 1}).status_code == 200
    with db.write() as s:
        user = s.scalars(select(User).where(User.username == "ann")).one()
        if how == "password change":
            set_password(s, user, hash_password("another-password", method=FAST_HASH))
        else:
            user.session_version += 1  # every token of the user ends (as a logout of everywhere would)
    r = client.put(url, headers=h, json={"response": "2", "seq": 2})
    assert r.status_code == 401 and r.json == {"error": "invalid token"}
    assert flask_calls.calls == 1  # the fast lane refused it and Flask gave the error
    assert tuple(stored(db, aid, qid)) == ("1", 1)


def test_a_save_after_the_deadline_or_submission_is_refused(client, ann, db):
    h, aid, qid, url = ann
    with db.write() as s:
        s.execute(update(Attempt).where(Attempt.id == aid).values(expires_at=now() - timedelta(seconds=1)))
    r = client.put(url, headers=h, json={"response": "1", "seq": 1})
    assert r.status_code == 409 and "responses can no longer be changed" in r.json["error"]
    assert stored(db, aid, qid) is None
    with db.write() as s:
        s.execute(update(Attempt).where(Attempt.id == aid).values(expires_at=None))
    assert client.post(f"/api/v1/attempts/{aid}/submit", headers=h).status_code == 200
    r = client.put(url, headers=h, json={"response": "1", "seq": 2})
    assert r.status_code == 409 and "submitted" in r.json["error"]


@pytest.mark.parametrize("body, status, fragment", [
    # left to Flask before any database work
    ({"response": "1"}, 200, None),  # no seq: the server issues one
    ({"response": "1", "seq": 1, "extra": 1}, 400, "unknown fields"),
    ({"response": "1", "seq": -1}, 400, "seq must be an integer"),
    ({"seq": 1}, 400, "give the answer as"),
    ([1, 2], 400, "must be a JSON object"),
    # refused by the checks of the fast lane, then answered by Flask
    ({"response": [1, 2], "seq": 1}, 400, None),
    ({"response": "1\x00", "seq": 1}, 400, "control character"),
    ({"response": None, "seq": 1}, 200, None),
])
def test_unusual_saves_get_the_full_paths_answer(client, ann, flask_calls, body, status, fragment):
    h, _, _, url = ann
    r = client.put(url, headers=h, json=body)
    assert r.status_code == status and flask_calls.calls == 1, r.json
    assert fragment is None or fragment in r.json["error"]


def test_a_stale_seq_and_a_repeat_fall_back_and_write_nothing(client, ann, db, flask_calls):
    h, aid, qid, url = ann
    first = client.put(url, headers=h, json={"response": "1", "seq": 5})
    repeat = client.put(url, headers=h, json={"response": "1", "seq": 5})
    assert repeat.status_code == 200 and repeat.json == first.json
    stale = client.put(url, headers=h, json={"response": "2", "seq": 4})
    assert stale.status_code == 409 and (stale.json["response"], stale.json["seq"]) == ("1", 5)
    assert flask_calls.calls == 2 and tuple(stored(db, aid, qid)) == ("1", 5)


def test_other_users_and_other_paths_are_left_to_flask(client, users, ann, flask_calls):
    h, aid, qid, url = ann
    users.add("bob")
    users.add("ivy", role="instructor")
    bob, ivy = users.token(client, "bob"), users.token(client, "ivy")
    flask_calls.calls = 0
    assert client.put(url, headers=bob, json={"response": "1", "seq": 1}).status_code == 404
    assert client.put(url, headers=ivy, json={"response": "1", "seq": 1}).status_code == 403
    assert client.put(f"/api/v1/attempts/{aid}/responses/q999", headers=h,
                      json={"response": "1", "seq": 1}).status_code == 404
    assert client.put(url, json={"response": "1", "seq": 1}).status_code == 401
    assert client.put(url, headers=h, data='{"response": "1", "seq": 1}',
                      content_type="text/plain").status_code == 400  # not JSON to Flask either
    assert flask_calls.calls == 5


def test_an_error_in_the_fast_lane_falls_back_to_flask(client, ann, db, monkeypatch, flask_calls):
    h, aid, qid, url = ann

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("quizengine.web.quicksave.quick_save", broken)
    r = client.put(url, headers=h, json={"response": "1", "seq": 1})
    assert r.status_code == 200 and flask_calls.calls == 1
    assert tuple(stored(db, aid, qid)) == ("1", 1)


def test_quick_save_writes_nothing_when_the_attempt_closed_in_between(client, ann, db, monkeypatch):
    """The attempt read open, then submitted before the write: the write's own check refuses it."""
    h, aid, qid, url = ann
    with db.read() as s:
        uid, version = s.execute(select(User.id, User.session_version).where(User.username == "ann")).one()
    real_check = quick._check

    def submitted_first(*args, **kwargs):  # between the lookup and the write
        checked = real_check(*args, **kwargs)
        with db.write() as s:
            s.execute(update(Attempt).where(Attempt.id == aid).values(state="submitted"))
        return checked

    monkeypatch.setattr(quick, "_check", submitted_first)
    assert quick.quick_save(db, uid, version, aid, int(qid[1:]) - 1, "1", 1) is None
    assert stored(db, aid, qid) is None
    with db.read() as s:  # nor was the attempt touched
        assert s.execute(select(Attempt.last_activity_at).where(Attempt.id == aid)).scalar() is None


# ---------------------------------------------------------------- the highest seq (2^53 - 1)

def test_a_save_without_seq_at_the_highest_seq_is_refused_clearly(client, ann, db):
    h, aid, qid, url = ann
    assert client.put(url, headers=h, json={"response": "1", "seq": SEQ_MAX}).status_code == 200
    r = client.put(url, headers=h, json={"response": "2"})
    assert r.status_code == 409 and "highest seq" in r.json["error"] and str(SEQ_MAX) in r.json["error"]
    assert tuple(stored(db, aid, qid)) == ("1", SEQ_MAX)
    assert client.put(url, headers=h, json={"response": "2", "seq": SEQ_MAX + 1}).status_code == 400


def test_the_page_save_at_the_highest_seq_keeps_the_stored_answer(client, users, ann, db):
    h, aid, qid, url = ann
    assert client.put(url, headers=h, json={"response": "1", "seq": SEQ_MAX}).status_code == 200
    users.login(client, "ann")
    r = client.post(f"/attempts/{aid}/save", data={f"q-{qid}": "2", f"seq-{qid}": str(SEQ_MAX)})
    assert r.status_code == 302
    assert tuple(stored(db, aid, qid)) == ("1", SEQ_MAX)
    assert "Kept the newer answer" in client.get(f"/attempts/{aid}").get_data(as_text=True)


# ---------------------------------------------------------------- the attempt page's autosave (web/pagesave.py)

def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def page(app, users, ann):
    """Ann's browser (CSRF on, as in production): its client, CSRF header, attempt id, question id, save URL."""
    _, aid, qid, _ = ann
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    r = browser.post("/login", data={"username": "ann", "password": "password-123",
                                     "csrf_token": _csrf(browser, "/login")})
    assert r.status_code == 302
    return browser, {"X-CSRFToken": _csrf(browser, "/dashboard")}, aid, qid, f"/attempts/{aid}/autosave"


def _session_of(app, response) -> dict:
    """The session a response's Set-Cookie carries, read by the app's own session interface."""
    cookie = SimpleCookie(response.headers["Set-Cookie"])[app.config.get("SESSION_COOKIE_NAME", "session")]
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def _cookie_attributes(response) -> str:
    """A Set-Cookie header without its value and expiry time (both change with the second)."""
    return re.sub(r"^[^=]+=[^;]*|Expires=[^;]*", "", response.headers["Set-Cookie"])


def test_the_page_save_is_answered_without_flask_and_alike(app, page, db, flask_calls):
    browser, csrf, aid, qid, url = page
    flask_calls.calls = 0
    fast = browser.post(url, headers=csrf, json={"question": qid, "response": "1.5", "seq": 1})
    again = browser.post(url, headers=csrf, json={"question": qid, "response": "2.5", "seq": 2})
    assert (fast.status_code, again.status_code, flask_calls.calls) == (200, 200, 0), again.data
    assert set(again.json) == {"saved_at", "seq"} and again.json["seq"] == 2
    assert tuple(stored(db, aid, qid)) == ("2.5", 2)
    # the same save through Flask (the fast lane switched off for it): same status, body, headers, cookie
    lane, app.wsgi_app.page = app.wsgi_app.page, None
    try:
        full = browser.post(url, headers=csrf, json={"question": qid, "response": "3.5", "seq": 3})
    finally:
        app.wsgi_app.page = lane
    assert flask_calls.calls == 1 and full.status_code == 200 and set(full.json) == set(again.json)
    skip = {"Date", "Content-Length", "Set-Cookie"}
    assert {k: v for k, v in again.headers if k not in skip} == {k: v for k, v in full.headers if k not in skip}
    assert again.headers["Vary"] == "Cookie" and again.headers["Cache-Control"] == "no-store"
    assert _cookie_attributes(again) == _cookie_attributes(full) and "HttpOnly" in again.headers["Set-Cookie"]
    assert _session_of(app, again) == _session_of(app, full)
    note = browser.post(url, headers=csrf, json={"question": qid, "response": "1,5", "seq": 4})
    assert note.status_code == 200 and note.json["format_error"] and flask_calls.calls == 1


@pytest.mark.parametrize("how", ["logout elsewhere", "password change"])
def test_a_page_save_of_an_ended_session_is_refused_at_once(page, db, flask_calls, how):
    browser, csrf, aid, qid, url = page
    assert browser.post(url, headers=csrf, json={"question": qid, "response": "1", "seq": 1}).status_code == 200
    with db.write() as s:
        user = s.scalars(select(User).where(User.username == "ann")).one()
        if how == "password change":
            set_password(s, user, hash_password("another-password", method=FAST_HASH))
        else:
            s.execute(delete(UserSession).where(UserSession.user_id == user.id))  # the row a logout deletes
    flask_calls.calls = 0
    r = browser.post(url, headers=csrf, json={"question": qid, "response": "2", "seq": 2})
    assert r.status_code in (302, 401) and flask_calls.calls == 1  # Flask-Login's refusal, from Flask
    assert tuple(stored(db, aid, qid)) == ("1", 1)


def _expired_csrf(app, browser, monkeypatch) -> str:
    """A CSRF token of the page as Flask-WTF issued it two hours ago (its time limit set to one hour)."""
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    class Serializer(URLSafeTimedSerializer):
        default_signer = Earlier

    with monkeypatch.context() as m:
        m.setattr("flask_wtf.csrf.URLSafeTimedSerializer", Serializer)  # Flask-WTF's own signing, two hours ago
        return _csrf(browser, "/dashboard")


@pytest.mark.parametrize("token, reason", [
    (None, "The CSRF token is missing."),
    ("wrong", "The CSRF token is invalid."),
    ("expired", "The CSRF token has expired."),
])
def test_a_page_save_without_a_good_csrf_token_gets_flask_wtfs_refusal(app, page, db, flask_calls, monkeypatch,
                                                                      token, reason):
    browser, _, aid, qid, url = page
    if token == "expired":
        token = _expired_csrf(app, browser, monkeypatch)
    flask_calls.calls = 0
    r = browser.post(url, headers={"X-CSRFToken": token} if token else {},
                     json={"question": qid, "response": "1", "seq": 1})
    assert flask_calls.calls == 1 and r.status_code == 400
    assert r.json["error"] == (f"the form has expired or was not sent by this site ({reason}); "
                               "reload the page and try again")
    assert stored(db, aid, qid) is None


def test_a_page_save_over_https_needs_a_same_origin_referrer(app, page, db, flask_calls):
    browser, csrf, aid, qid, url = page
    app.config["WTF_CSRF_SSL_STRICT"] = True
    body = {"question": qid, "response": "1", "seq": 1}
    flask_calls.calls = 0
    r = browser.post(url, headers=csrf, json=body, base_url="https://localhost")
    assert r.status_code == 400 and "referrer header is missing" in r.json["error"] and flask_calls.calls == 1
    r = browser.post(url, headers={**csrf, "Referer": "https://elsewhere.example/"}, json=body,
                     base_url="https://localhost")
    assert r.status_code == 400 and "referrer does not match" in r.json["error"] and flask_calls.calls == 2
    r = browser.post(url, headers={**csrf, "Referer": f"https://localhost/attempts/{aid}"}, json=body,
                     base_url="https://localhost")
    assert r.status_code == 200 and flask_calls.calls == 2 and tuple(stored(db, aid, qid)) == ("1", 1)


def test_a_stale_page_save_and_one_after_the_deadline_go_to_flask(page, db, flask_calls):
    browser, csrf, aid, qid, url = page
    assert browser.post(url, headers=csrf, json={"question": qid, "response": "1", "seq": 5}).status_code == 200
    flask_calls.calls = 0
    stale = browser.post(url, headers=csrf, json={"question": qid, "response": "2", "seq": 4})
    assert stale.status_code == 409 and (stale.json["response"], stale.json["seq"]) == ("1", 5)
    assert flask_calls.calls == 1
    with db.write() as s:
        s.execute(update(Attempt).where(Attempt.id == aid).values(expires_at=now() - timedelta(seconds=1)))
    late = browser.post(url, headers=csrf, json={"question": qid, "response": "3", "seq": 6})
    assert late.status_code == 409 and "responses can no longer be changed" in late.json["error"]
    assert flask_calls.calls == 2 and tuple(stored(db, aid, qid)) == ("1", 5)


def test_a_session_holding_more_than_a_login_goes_to_flask(app, page, db, flask_calls):
    """A flashed message waiting in the session (Flask would keep it): the full path, same answer."""
    browser, csrf, aid, qid, url = page
    with browser.session_transaction() as sess:
        sess["_flashes"] = [("message", "hello")]
    flask_calls.calls = 0
    r = browser.post(url, headers=csrf, json={"question": qid, "response": "1", "seq": 1})
    assert r.status_code == 200 and flask_calls.calls == 1 and tuple(stored(db, aid, qid)) == ("1", 1)


def test_a_body_that_never_came_gets_flasks_408_not_a_500(client, ann, db, flask_calls):
    """Under `quizengine serve` a body that misses its deadline reaches the app as a stream whose
    reads raise 408 (server.buffered): the fast lane leaves it to Flask, which answers in JSON."""
    import io

    from werkzeug.exceptions import RequestTimeout
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    class Late(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            raise RequestTimeout("the request body did not arrive within 20 s")

    h, aid, qid, url = ann
    environ = EnvironBuilder(url, method="PUT", headers=h, json={"response": "1.5", "seq": 1}).get_environ()
    environ["wsgi.input"] = io.BufferedReader(Late())  # what server.buffered hands on
    body, status, _ = run_wsgi_app(client.application, environ)
    assert status.startswith("408 ") and b"did not arrive" in b"".join(body) and flask_calls.calls == 1
    assert stored(db, aid, qid) is None

