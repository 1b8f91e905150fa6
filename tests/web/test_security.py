"""Security properties: answer keys never leak before submission, cookies, throttling, tokens, CSRF."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.params import fmt
from quizengine.bank.variant import values_for

from .conftest import BANKS, FAST_HASH

QUIZ = "module-04-prep"


def _strings(value) -> list[str]:
    """The forms in which a key value could appear in a page or a JSON body."""
    if isinstance(value, bool):
        return []  # true/false appear everywhere; their absence is checked structurally
    if isinstance(value, (int, float)):
        return [fmt(value, d) for d in (4, 5, 6)] + [repr(float(value))]
    if isinstance(value, str):
        return [value] if len(value) > 2 and not re.fullmatch(r"[clro]\d+", value) else []
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _numbers(value) -> list[float]:
    """Every number in nested lists, dicts and arrays."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return [float(value)]
    return []


def _leaves(value) -> list:
    """The entries of nested lists and dicts."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def given_inputs(key_questions: list[dict]) -> dict[str, set[float]]:
    """Per question of the key, the numbers its variant is given (its params and derived values)."""
    cat = load_catalog([BANKS])
    return {q["id"]: set(_numbers(values_for(cat.items[q["item_id"]], q["seed"]))) for q in key_questions}


def key_values_visible(key: dict, bodies: list[str], questions: dict[str, str] | None = None,
                       given: dict[str, set[float]] | None = None) -> list[str]:
    """Key values found where a student could read them before submitting.

    Numbers are searched in every body, except a key entry the question is given as an input (a
    dead ReLU unit's weights, which an update copies unchanged). Words (short-text answers) are
    searched in their own question's public view only, since another question may use the same
    word in its prompt. Choice ids like c2 are opaque and skipped.
    """
    found = []
    for qid, answer in key.items():
        numeric = isinstance(answer, (int, float, list)) and not isinstance(answer, bool)
        inputs = (given or {}).get(qid, set())
        parts = [x for x in _leaves(answer) if not (_numbers(x) and _numbers(x)[0] in inputs)]
        for s in _strings(parts):
            where = bodies if numeric or questions is None else [questions.get(qid, "")]
            if len(s) >= 4 and any(s in b for b in where):
                found.append(f"{qid}: {s}")
    return found


def test_no_key_values_in_student_pages_and_api_before_submission(client, users):
    users.add("ann")
    h = users.token(client, "ann")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    users.add("teacher", "instructor")
    key_questions = client.get(f"/api/v1/attempts/{a['attempt_id']}/key",
                               headers=users.token(client, "teacher")).json["questions"]
    key = {q["id"]: q["answer"] for q in key_questions}
    users.login(client, "ann")
    bodies = [client.get(f"/attempts/{a['attempt_id']}").get_data(as_text=True),
              client.get("/dashboard").get_data(as_text=True),
              client.get(f"/attempts/{a['attempt_id']}/confirm").get_data(as_text=True),
              client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).get_data(as_text=True),
              json.dumps(a)]
    own = {q["id"]: json.dumps(q) for q in a["questions"]}
    assert key_values_visible({k: v for k, v in key.items()}, bodies, own, given_inputs(key_questions)) == []
    page = bodies[0]
    assert "correct" not in page.lower().replace("correctly", "")
    assert "Worked solution" not in page and "mistake" not in page.lower()


def test_session_cookie_flags(client, users):
    users.add("ann")
    r = users.login(client, "ann")
    cookie = r.headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; QUIZENGINE_HTTPS=1 adds it


def test_secure_cookie_over_https(app, users):
    app.config["SESSION_COOKIE_SECURE"] = True
    users.add("ann")
    c = app.test_client()
    cookie = users.login(c, "ann").headers.get("Set-Cookie")
    assert "Secure" in cookie


def test_new_session_on_login(client, users):
    users.add("ann")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    users.login(client, "ann")
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_absolute_session_lifetime(client, users, app):
    users.add("ann")
    users.login(client, "ann")
    assert client.get("/dashboard").status_code == 200
    with client.session_transaction() as sess:
        sess["login_at"] = time.time() - app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() - 1
    assert client.get("/dashboard").status_code == 302


def test_login_throttling_per_username_and_address_shared_in_the_database(app, users):
    users.add("ann")
    c1, c2 = app.test_client(), app.test_client()
    for i in range(app.config["LOGIN_FREE_FAILURES"] + 1):
        assert users.login(c1 if i % 2 else c2, "ann", "wrong-password").status_code == 401
    # this pair (ann, this address) waits now, even with the right password and from a fresh client
    r = users.login(app.test_client(), "ann")
    assert r.status_code == 429 and b"Too many login attempts" in r.data and int(r.headers["Retry-After"]) >= 1
    r = app.test_client().post("/api/v1/auth/token", json={"username": "ann", "password": "password-123"})
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_login_throttling_per_address(app, users):
    app.config["LOGIN_LIMIT_ADDRESS"] = 3
    users.add("ann")
    c = app.test_client()
    for name in ("x1", "x2", "x3", "x4"):
        assert users.login(c, name, "whatever-pw").status_code == 401
    # past the address's budget a failing pair waits the longest delay at once...
    r = users.login(c, "x4", "whatever-pw")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 60
    # ...but a user without failures from this address still logs in
    assert users.login(c, "ann").status_code == 302


def test_default_password_hash_meets_owasp():
    import argon2

    from quizengine.config import from_env
    from quizengine.services.accounts import hash_password

    h = hash_password("secret-password", from_env()["PASSWORD_METHOD"])
    p = argon2.extract_parameters(h)
    # OWASP's password storage cheat sheet: Argon2id, at least 19 MiB, 2 passes, 1 lane
    assert h.startswith("$argon2id$") and p.type is argon2.Type.ID
    assert p.memory_cost >= 19 * 1024 and p.time_cost >= 2 and p.parallelism >= 1 and p.salt_len >= 16


def test_forged_and_expired_tokens(client, users, app):
    users.add("ann")
    h = users.token(client, "ann")
    token = h["Authorization"].split()[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    r = client.get("/api/v1/quizzes", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json["error"] == "invalid token"
    app.config["API_TOKEN_MAX_AGE"] = -1
    r = client.get("/api/v1/quizzes", headers=h)
    assert r.status_code == 401 and "expired" in r.json["error"]
    assert client.get("/api/v1/quizzes").status_code == 401


def test_password_change_ends_tokens(client, users, app):
    from sqlalchemy import select

    from quizengine.models import User
    from quizengine.services.accounts import hash_password, set_password

    users.add("ann")
    h = users.token(client, "ann")
    with app.extensions["quizengine.db"].write() as s:
        set_password(s, s.scalar(select(User).where(User.username == "ann")), hash_password("new-password-1", FAST_HASH))
    assert client.get("/api/v1/quizzes", headers=h).status_code == 401


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def _csrf(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("token", [None, "wrong"])
def test_login_form_needs_a_csrf_token(csrf_app, users, token):
    users.add("ann")
    c = csrf_app.test_client()
    data = {"username": "ann", "password": "password-123"}
    if token:
        data["csrf_token"] = token
    r = c.post("/login", data=data)
    assert r.status_code == 400 and b"reload the page" in r.data


def test_forms_accept_a_valid_csrf_token_and_autosave_needs_the_header(csrf_app, users):
    users.add("ann")
    c = csrf_app.test_client()
    r = c.post("/login", data={"username": "ann", "password": "password-123", "csrf_token": _csrf(c)})
    assert r.status_code == 302
    token = _csrf(c, "/dashboard")
    assert c.post(f"/quizzes/{QUIZ}/start").status_code == 400
    r = c.post(f"/quizzes/{QUIZ}/start", data={"csrf_token": token})
    assert r.status_code == 302
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    r = c.post(f"/attempts/{aid}/autosave", json={"question": "x", "response": 1})
    assert r.status_code == 400
    r = c.post(f"/attempts/{aid}/autosave", json={"question": "x", "response": 1}, headers={"X-CSRFToken": token})
    assert r.status_code == 404  # past CSRF: the question id is unknown


# -- every form refuses a missing or wrong CSRF token (and changes nothing)

def _forms(aid: int, uid: int) -> list[tuple[str, dict]]:
    return [
        ("/login", {"username": "ann", "password": "password-123"}),
        ("/logout", {}),
        (f"/quizzes/{QUIZ}/start", {}),
        (f"/attempts/{aid}/save", {}),
        (f"/attempts/{aid}/submit", {}),
        (f"/instructor/attempts/{aid}/override", {"question": "q1", "score": "0", "reason": "x"}),
        (f"/instructor/quizzes/{QUIZ}/settings", {"max_attempts": "9"}),
        ("/instructor/regrade/vocab-epoch-definition", {"version": "1"}),
        ("/instructor/roster", {"text": "username,full_name,student_id,email\nzed,Z,1,z@x\n"}),
        (f"/instructor/roster/{uid}/reset", {}),
        ("/instructor/banks/edit/vocabulary.yaml", {"text": "topic: x\n"}),
    ]


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_every_form_needs_its_csrf_token(app, users, token):
    from sqlalchemy import select

    from quizengine.models import Attempt, Quiz, User

    users.add("ann")
    users.add("teacher", "instructor")
    h = users.token(app.test_client(), "ann")
    aid = app.test_client().post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json["attempt_id"]
    app.config["WTF_CSRF_ENABLED"] = True
    with app.extensions["quizengine.db"].read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
    for who in ("ann", "teacher"):
        c = app.test_client()
        r = c.post("/login", data={"username": who, "password": "password-123", "csrf_token": _csrf(c)})
        assert r.status_code == 302
        for url, data in _forms(aid, uid):
            if token:
                data = {**data, "csrf_token": token}
            r = c.post(url, data=data)
            assert r.status_code == 400, (who, url, r.status_code)
            assert b"reload the page" in r.data
        r = c.post(f"/attempts/{aid}/autosave", json={"question": "q1", "response": "1"},
                   headers={"X-CSRFToken": token} if token else {})
        assert r.status_code == 400
    with app.extensions["quizengine.db"].read() as s:
        assert s.get(Attempt, aid).state == "open"
        assert s.get(Quiz, QUIZ).max_attempts == 2
        assert s.scalar(select(User.id).where(User.username == "zed")) is None


# -- script injection

EVIL = '<script>alert("x")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">j</a>'


def active_content(html: str, own_scripts: int = 0) -> list[str]:
    """Elements and attributes that would run script: parsed, not searched as text."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Scan(HTMLParser):
        def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
            if tag == "script" and not dict(attrs).get("src", "").startswith("/static/"):
                found.append("<script>")
            for name, value in attrs:
                if name.startswith("on"):
                    found.append(f"{tag} {name}=")
                if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                    found.append(f"{tag} {name}=javascript:")

    Scan().feed(html)
    return found


def test_bank_content_cannot_inject_script():
    from quizengine.bank.render import markdown_to_html

    html = markdown_to_html("What is **this**? " + EVIL + "\n\n[click](javascript:alert(3)) $x^2$")
    assert active_content(html) == []
    assert "<strong>this</strong>" in html and "<math" in html and "&lt;script&gt;" in html


def test_injected_bank_item_renders_inert_in_the_attempt_page(app, users, tmp_path):
    import shutil

    import yaml

    from quizengine.services.banks import load_banks

    banks = tmp_path / "banks"
    shutil.copytree(app.config["BANKS"], banks)
    path = banks / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        item["prompt"] = item["prompt"] + " " + EVIL
        for ch in item.get("choices", []):
            ch["text"] = ch["text"] + EVIL
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with app.extensions["quizengine.db"].write() as s:
        load_banks(s, banks)
    users.add("ann")
    c = app.test_client()
    users.login(c, "ann")
    aid = int(c.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    page = c.get(f"/attempts/{aid}").get_data(as_text=True)
    assert "&lt;script&gt;" in page  # the bank's text is shown, as text
    assert active_content(page) == []
    # only our own scripts: the wide boxes' and the autosave's
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/boxes.js" defer>',
                                                  '<script src="/static/attempt.js" defer>']


def test_student_text_answer_is_escaped_for_the_instructor(app, users):
    users.add("ann")
    users.add("teacher", "instructor")
    c = app.test_client()
    h = users.token(c, "ann")
    a = c.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    for q in a["questions"]:
        value = EVIL if q["type"] in ("short_text", "numeric") and not q.get("shape") else None
        if value:
            assert c.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}", headers=h,
                         json={"response": value}).status_code == 200
    c.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h)
    users.login(c, "teacher")
    page = c.get(f"/instructor/attempts/{a['attempt_id']}").get_data(as_text=True)
    assert "&lt;script&gt;" in page and active_content(page) == []
