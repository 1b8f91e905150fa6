"""Accounts hashed with PBKDF2 before Argon2id: they log in as before, and the first right password
replaces the hash with an Argon2id one (web form, API token, password change)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from quizengine.models import User
from quizengine.services import accounts, logins

from .conftest import FAST_HASH

QUIZ = "module-04-prep"
ARGON2_PREFIX = "$argon2id$v=19$m=8,t=1,p=1$"  # FAST_HASH's parameters


def add_pbkdf2_user(db, username: str, password: str = "password-123") -> str:
    """An account as earlier versions stored it; returns its hash."""
    old = generate_password_hash(password, "pbkdf2:sha256:1000")
    with db.write() as s:
        s.add(User(username=username, role="student", password_hash=old, created_at=logins.now()))
    return old


def stored_hash(db, username: str) -> str:
    with db.read() as s:
        return s.scalar(select(User.password_hash).where(User.username == username))


def session_version(db, username: str) -> int:
    with db.read() as s:
        return s.scalar(select(User.session_version).where(User.username == username))


def token_login(client, username: str, password: str = "password-123"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def form_login(client, username: str, password: str = "password-123"):
    return client.post("/login", data={"username": username, "password": password})


@pytest.mark.parametrize("first", [form_login, token_login])
def test_a_pbkdf2_account_gets_argon2id_at_its_first_login(app, db, first):
    old = add_pbkdf2_user(db, "ann")
    version = session_version(db, "ann")
    c = app.test_client()
    assert first(c, "ann").status_code in (200, 302)
    new = stored_hash(db, "ann")
    assert new != old and new.startswith(ARGON2_PREFIX)
    assert session_version(db, "ann") == version  # a rehash ends no session and no token
    # the new hash takes the same password, both ways, and is not replaced again
    assert form_login(app.test_client(), "ann").status_code == 302
    r = token_login(app.test_client(), "ann")
    assert r.status_code == 200
    assert stored_hash(db, "ann") == new
    # the token issued at the rehashing login (or after it) works
    h = {"Authorization": f"Bearer {r.json['token']}"}
    assert c.get("/api/v1/quizzes", headers=h).status_code == 200
    # and a wrong password is still wrong
    assert form_login(app.test_client(), "ann", "password-124").status_code == 401


def test_a_wrong_password_leaves_the_pbkdf2_hash(app, db):
    old = add_pbkdf2_user(db, "ann")
    assert token_login(app.test_client(), "ann", "password-124").status_code == 401
    assert form_login(app.test_client(), "ann", "password-12").status_code == 401
    assert stored_hash(db, "ann") == old


def test_the_session_of_the_rehashing_form_login_goes_on(app, db):
    add_pbkdf2_user(db, "ann")
    c = app.test_client()
    assert form_login(c, "ann").status_code == 302
    assert c.get("/dashboard").status_code == 200


def test_password_change_of_a_pbkdf2_account(app, db):
    add_pbkdf2_user(db, "ann")
    c = app.test_client()
    assert form_login(c, "ann").status_code == 302
    r = c.post("/account/password", data={"current": "password-123", "new": "password-456", "again": "password-456"})
    assert r.status_code == 302
    assert stored_hash(db, "ann").startswith(ARGON2_PREFIX)
    assert token_login(app.test_client(), "ann", "password-456").status_code == 200
    assert token_login(app.test_client(), "ann", "password-123").status_code == 401


def test_a_rehash_never_overwrites_a_password_changed_meanwhile(db):
    old = add_pbkdf2_user(db, "ann")
    changed = accounts.hash_password("password-456", FAST_HASH)
    with db.write() as s:  # the password changes between the login's check and its write
        accounts.set_password(s, s.scalar(select(User).where(User.username == "ann")), changed)
    with db.write() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
        assert accounts.rehash(s, uid, old, accounts.hash_password("password-123", FAST_HASH)) is False
    assert stored_hash(db, "ann") == changed


def test_an_unknown_user_is_checked_against_the_configured_method(app, db, monkeypatch):
    checked: list[str] = []
    real = logins.check_password

    def spy(pwhash: str, password: str, method: str):
        checked.append(pwhash)
        return real(pwhash, password, method)

    monkeypatch.setattr(logins, "check_password", spy)
    assert token_login(app.test_client(), "nobody").status_code == 401
    assert len(checked) == 1 and checked[0].startswith(ARGON2_PREFIX)  # as long as a real account's check
