"""Issue 9, parts 4-6 and 8 (reset password): one test per threat to logins, sessions and headers."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from quizengine import create_app
from quizengine.models import Attempt, User, UserSession
from quizengine.services import logins
from tests.web.conftest import POSTGRES, base_config

QUIZ = "module-04-prep"
ATTACKER, CLASSMATE, TEACHER_HOME = "203.0.113.66", "198.51.100.7", "198.51.100.200"


def from_address(app, address: str):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return c


def login(c, username: str, password: str = "password-123"):
    return c.post("/login", data={"username": username, "password": password})


def token(c, username: str, password: str = "password-123"):
    return c.post("/api/v1/auth/token", json={"username": username, "password": password})


@pytest.fixture
def proxied(app, tmp_path):
    """The same database served behind one trusted proxy (QUIZENGINE_TRUSTED_PROXIES=1)."""
    behind = create_app({**base_config(tmp_path, app.config["DATABASE_URL"]), "TRUSTED_PROXIES": 1})
    yield behind
    behind.extensions["quizengine.db"].dispose()


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Every password check the login service runs (the slow Argon2id work)."""
    seen: list[str] = []
    real = logins.check_password

    def counting(pwhash: str, password: str, method: str) -> tuple[bool, str | None]:
        seen.append(password)
        return real(pwhash, password, method)

    monkeypatch.setattr(logins, "check_password", counting)
    return seen


# -- part 4: throttling that slows attackers without locking out a class

def test_threat_lockout_of_a_classmate_or_the_instructor(app, users):
    users.add("bob")
    users.add("teacher", "instructor")
    attacker = from_address(app, ATTACKER)
    statuses = [login(attacker, "bob", f"guess-{i}").status_code for i in range(12)]
    statuses += [token(attacker, "teacher", f"guess-{i}").status_code for i in range(12)]
    assert 429 in statuses  # the attacker is slowed...
    r = login(attacker, "bob")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # ...while bob and the instructor, from their own addresses, log in at once with the right password
    assert login(from_address(app, CLASSMATE), "bob").status_code == 302
    assert token(from_address(app, TEACHER_HOME), "teacher").status_code == 200
    assert login(from_address(app, TEACHER_HOME), "teacher").status_code == 302


def test_threat_password_guessing_slowed_by_doubling_delays(db):
    th = logins.Throttle(free_failures=3, max_delay=timedelta(seconds=60), per_address=0)
    t = logins.now()
    delays = []
    for _ in range(10):
        r = logins.login(db, "bob", "guess", ATTACKER, th, t=t)
        assert r.user is None and r.retry_after is None  # checked: the previous wait is over
        with db.read() as s:
            wait = logins.refusal(s, "bob", ATTACKER, t, th)  # what the next login would meet
        delays.append(wait.seconds if wait else 0)
        t += wait.delay if wait else timedelta(0)
    assert delays == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]
    # an hour without failures and the pair starts afresh
    assert logins.login(db, "bob", "guess", ATTACKER, th, t=t + timedelta(hours=1, seconds=61)).retry_after is None


def _spray_then_class(served, names: list[str]) -> list[int]:
    """An attacker guesses every classmate's password through the proxy; then the class logs in."""
    served.config.update(LOGIN_LIMIT_ADDRESS=5, LOGINS_PER_ADDRESS=20)
    proxy = served.test_client()  # every request comes from the proxy's own address

    def via_proxy(client_address: str, username: str, password: str = "password-123"):
        return proxy.post("/login", data={"username": username, "password": password},
                          headers={"X-Forwarded-For": client_address})

    spray = [via_proxy(ATTACKER, n, "Winter2026!").status_code for n in names for _ in range(3)]
    assert set(spray) <= {401, 429} and 429 in spray  # the attacker ran out of budget
    return [via_proxy(f"198.51.100.{10 + i}", n).status_code for i, n in enumerate(names)]


def test_threat_lockout_of_the_class_behind_a_proxy(proxied, users):
    names = [f"s{i}" for i in range(8)]
    for n in names:
        users.add(n)
    assert _spray_then_class(proxied, names) == [302] * len(names)


def test_threat_lockout_of_the_class_behind_a_proxy_that_is_not_trusted(app, users):
    # the contrast: without QUIZENGINE_TRUSTED_PROXIES every student shares the proxy's address
    names = [f"s{i}" for i in range(8)]
    for n in names:
        users.add(n)
    assert 429 in _spray_then_class(app, names)


def test_threat_forged_forwarded_header_without_a_trusted_proxy(app, users):
    users.add("zed")
    c = from_address(app, ATTACKER)
    for i in range(4):  # four failures from one address, each claiming another one
        assert c.post("/login", data={"username": "zed", "password": "wrong-pass"},
                      headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code == 401
    r = c.post("/login", data={"username": "zed", "password": "password-123"}, headers={"X-Forwarded-For": "10.0.0.99"})
    assert r.status_code == 429  # the header was ignored: the pair (zed, ATTACKER) waits


def test_threat_valid_login_flood_from_one_address(app, users, hashes):
    app.config["LOGINS_PER_ADDRESS"] = 5
    users.add("mallory")
    users.add("ann")
    flood = from_address(app, ATTACKER)
    statuses = [token(flood, "mallory").status_code for _ in range(30)]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    assert len(hashes) == 5  # refused logins cost no password check
    r = token(flood, "mallory")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and "per minute from one address" in r.json["error"]
    assert login(from_address(app, CLASSMATE), "ann").status_code == 302


def test_the_default_worker_rate_lets_a_class_arriving_at_once_in(app, users, hashes):
    from quizengine.config import from_env

    defaults = from_env()
    app.config.update(LOGINS_PER_SECOND=defaults["LOGINS_PER_SECOND"], LOGIN_BURST=defaults["LOGIN_BURST"])
    for i in range(20):
        users.add(f"s{i}")
    # 20 students at once on one worker (the earlier 3 per second with bursts of 10 refused the 11th)
    statuses = [token(from_address(app, f"198.51.100.{i}"), f"s{i}").status_code for i in range(20)]
    assert statuses == [200] * 20 and len(hashes) == 20


def test_threat_valid_login_flood_across_addresses_starves_the_worker(app, users, hashes):
    app.config.update(LOGINS_PER_SECOND=0.001, LOGIN_BURST=3)  # a bucket that won't refill during the test
    users.add("ann")
    h = {"Authorization": f"Bearer {token(from_address(app, CLASSMATE), 'ann').json['token']}"}
    a = from_address(app, CLASSMATE).post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    q = next(q for q in a["questions"] if q["type"] == "numeric" and not q["shape"])
    statuses = [token(from_address(app, f"203.0.113.{i}"), "ann").status_code for i in range(10)]
    assert statuses[:2] == [200, 200] and set(statuses[2:]) == {429}
    r = token(from_address(app, "203.0.113.99"), "ann")
    assert r.status_code == 429 and "per second per worker" in r.json["error"] and r.headers["Retry-After"]
    assert len(hashes) == 3
    # autosaves don't need a password check: they go on
    r = from_address(app, CLASSMATE).put(f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}",
                                         json={"response": "1.5", "seq": 1}, headers=h)
    assert r.status_code == 200


# -- part 5: sessions end when they should

def _session_cookie(c) -> str:
    return c.get_cookie("session").value


def test_threat_logout_does_not_end_the_session(app, users, db):
    users.add("ann")
    c = app.test_client()
    assert login(c, "ann").status_code == 302
    stolen = _session_cookie(c)
    assert c.post("/logout").status_code == 302
    with db.read() as s:
        assert s.scalars(select(UserSession)).all() == []
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    r = replay.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = replay.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    with db.read() as s:
        assert s.scalars(select(Attempt)).all() == []  # the replayed cookie started nothing


def test_threat_password_change_ends_other_sessions_and_tokens(app, users):
    users.add("ann")
    here, there = app.test_client(), app.test_client()
    login(here, "ann"), login(there, "ann")
    old_token = {"Authorization": f"Bearer {token(app.test_client(), 'ann').json['token']}"}
    assert there.get("/dashboard").status_code == 200
    r = here.post("/account/password", data={"current": "wrong-one", "new": "new-password-9", "again": "new-password-9"})
    assert r.status_code == 401 and there.get("/dashboard").status_code == 200
    r = here.post("/account/password", data={"current": "password-123", "new": "new-password-9", "again": "new-password-9"})
    assert r.status_code == 302
    assert here.get("/dashboard").status_code == 200  # this session goes on
    assert there.get("/dashboard").status_code == 302  # the other one has ended
    assert app.test_client().get("/api/v1/quizzes", headers=old_token).status_code == 401
    assert login(app.test_client(), "ann").status_code == 401
    assert login(app.test_client(), "ann", "new-password-9").status_code == 302


def test_threat_password_reset_leaves_the_students_sessions_open(app, users, db):
    users.add("ann")
    users.add("teacher", "instructor")
    student, teacher = app.test_client(), app.test_client()
    login(student, "ann"), login(teacher, "teacher")
    old_token = {"Authorization": f"Bearer {token(app.test_client(), 'ann').json['token']}"}
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
    assert teacher.post(f"/instructor/roster/{uid}/reset", data={"confirmed": "1"}).status_code == 200
    assert student.get("/dashboard").status_code == 302
    assert student.post(f"/quizzes/{QUIZ}/start").status_code == 302
    assert app.test_client().get("/api/v1/quizzes", headers=old_token).status_code == 401


def test_threat_reset_password_not_in_cookie(app, users, db):
    users.add("ann")
    users.add("teacher", "instructor")
    teacher = app.test_client()
    login(teacher, "teacher")
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
    r = teacher.post(f"/instructor/roster/{uid}/reset", data={"confirmed": "1"})
    new = re.search(r"New password for ann: (\S+) \(shown once", r.get_data(as_text=True)).group(1)
    assert login(app.test_client(), "ann", new).status_code == 302
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.loads(_session_cookie(teacher))  # what anyone holding the cookie can read
    assert new not in repr(cookie) and new not in _session_cookie(teacher)
    assert all(new not in v for _, v in r.headers.items())
    assert new not in teacher.get("/instructor/roster").get_data(as_text=True)  # shown once
    assert r.headers["Cache-Control"] == "no-store"


# -- part 6: headers

class _Inline(HTMLParser):
    """Inline script, event handlers and style attributes: what a strict CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        self.found += [f"<{tag} {k}>" for k in names if k.startswith("on") or k == "style"]
        self.found += [f"<{tag} href=javascript:>" for k, v in attrs if k == "href" and (v or "").startswith("javascript:")]
        self._script = tag == "script" and "src" not in names
        if tag == "style":
            self.found.append("<style>")

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.found.append(f"<script>{data[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._script = False


@pytest.fixture
def pages(app, users, db):
    """Every kind of page a student and an instructor see, with the clients that see them."""
    users.add("ann")
    users.add("teacher", "instructor")
    student, teacher = app.test_client(), app.test_client()
    login(student, "ann"), login(teacher, "teacher")
    aid = int(student.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
    seen = {"/dashboard": student.get("/dashboard"), "/attempt": student.get(f"/attempts/{aid}"),
            "/confirm": student.get(f"/attempts/{aid}/confirm"), "/account/password": student.get("/account/password")}
    student.post(f"/attempts/{aid}/submit")
    seen["/result"] = student.get(f"/attempts/{aid}/result")
    for path in ("/instructor/", f"/instructor/quizzes/{QUIZ}/gradebook", f"/instructor/attempts/{aid}",
                 f"/instructor/quizzes/{QUIZ}/analysis", f"/instructor/quizzes/{QUIZ}/settings", "/instructor/roster",
                 "/instructor/banks/", "/instructor/banks/items/bp-hidden-delta", "/instructor/banks/edit/backpropagation.yaml",
                 "/instructor/banks/history/backpropagation.yaml", "/instructor/regrade/bp-hidden-delta",
                 f"/instructor/quizzes/{QUIZ}/grades.csv", f"/instructor/quizzes/{QUIZ}/responses.csv"):
        seen[path] = teacher.get(path)
    seen["/instructor/roster/reset"] = teacher.post(f"/instructor/roster/{uid}/reset", data={"confirmed": "1"})
    seen["/login"] = app.test_client().get("/login")
    seen["/missing"] = student.get("/no-such-page")
    t = {"Authorization": f"Bearer {token(app.test_client(), 'teacher').json['token']}"}
    seen["/api/key"] = app.test_client().get(f"/api/v1/attempts/{aid}/key", headers=t)
    seen["/api/grades.csv"] = app.test_client().get(f"/api/v1/quizzes/{QUIZ}/grades.csv", headers=t)
    seen["/api/error"] = app.test_client().get("/api/v1/quizzes")
    return seen


def test_threat_framing_of_submit_and_reset_buttons(pages):
    for path, r in pages.items():
        assert r.status_code in (200, 404, 401), (path, r.status_code)
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, path
        assert r.headers["X-Frame-Options"] == "DENY", path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "same-origin", path
    for path in ("/confirm", "/instructor/roster"):
        assert "<button" in pages[path].get_data(as_text=True)


def test_threat_inline_script_or_style_that_the_csp_would_block(pages):
    for path, r in pages.items():
        if r.mimetype != "text/html":
            continue
        parser = _Inline()
        parser.feed(r.get_data(as_text=True))
        assert parser.found == [], path
    assert 'class="grid cols-' in pages["/attempt"].get_data(as_text=True)  # matrix widths as classes


def test_threat_script_with_a_nonce_is_allowed_only_on_its_own_request(app):
    from flask import render_template_string

    with app.test_request_context("/"):
        html = render_template_string('<script nonce="{{ csp_nonce() }}">1</script>')
        resp = app.process_response(app.make_response(html))
    nonce = re.search(r'nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in resp.headers["Content-Security-Policy"]
    other = app.test_client().get("/login").headers["Content-Security-Policy"]
    assert nonce not in other


def test_threat_cacheable_key_pages(pages, app):
    for path, r in pages.items():
        assert r.headers["Cache-Control"] == "no-store", path
    static = app.test_client().get("/static/style.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")
    static.close()


def test_threat_hsts_only_with_https(app):
    c = app.test_client()
    assert "Strict-Transport-Security" not in c.get("/login").headers
    app.config["HTTPS"] = True
    for path in ("/login", "/api/v1/openapi.json"):
        assert c.get(path).headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.skipif(not POSTGRES, reason="one writer at a time on SQLite: no race to test")
def test_throttle_counters_made_by_two_transactions_at_once_are_one_row_counted_twice(db):
    """Two hosts (or workers) counting the same new key at once on PostgreSQL: the second insert
    waits for the first transaction, then counts on its row; neither a unique violation (a 500 at
    a class's first logins) nor a lost count. SQLite's write transaction holds the whole database,
    so the race can't happen there: the PostgreSQL pass of make test runs it."""
    from quizengine.models import LoginFailure

    from .conftest import two_writes_at_once
    key, t, window = "addr:203.0.113.9", logins.now(), timedelta(minutes=1)
    two_writes_at_once(db, lambda s: logins._bump(s, key, t, window))
    with db.read() as s:
        assert s.get(LoginFailure, key).count == 2
