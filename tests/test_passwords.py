"""Password hashes (quizengine/passwords.py): Argon2id at the configured parameters, PBKDF2 hashes of
earlier versions still accepted and marked for a new hash."""

from __future__ import annotations

import argon2
import pytest
from werkzeug.security import generate_password_hash

from quizengine import passwords
from quizengine.constants import PASSWORD_METHOD

CHEAP = "argon2id:m=8,t=1,p=1"  # the smallest Argon2 allows: the tests hash many times


def salted(value: object) -> str | None:
    """A hash made at collection has a random salt: name it without the salt and digest, so that
    every pytest-xdist worker collects the same test ids (None: pytest's own id)."""
    if isinstance(value, str) and value.count("$") >= 2 and not value.endswith("$broken"):
        return value.rsplit("$", 2)[0] if value.startswith("$argon2") else value.split("$", 1)[0]
    return None


def test_the_default_is_argon2id_at_owasp_parameters():
    h = passwords.hash_password("correct horse battery")
    p = argon2.extract_parameters(h)
    assert PASSWORD_METHOD == "argon2id:m=19456,t=2,p=1"
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (p.type, p.memory_cost, p.time_cost, p.parallelism, p.salt_len, p.hash_len) == \
        (argon2.Type.ID, 19456, 2, 1, 16, 32)
    assert passwords.verify_password(h, "correct horse battery")
    assert not passwords.needs_rehash(h)


def test_each_hash_has_its_own_salt():
    a, b = (passwords.hash_password("same password", CHEAP) for _ in range(2))
    assert a != b and a.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.verify_password(a, "same password") and passwords.verify_password(b, "same password")


@pytest.mark.parametrize("stored, password, right", [
    # Argon2id
    (passwords.hash_password("password-123", CHEAP), "password-123", True),
    (passwords.hash_password("password-123", CHEAP), "password-124", False),
    (passwords.hash_password("password-123", CHEAP), "", False),
    (passwords.hash_password("pässwörd-ü", CHEAP), "pässwörd-ü", True),
    (passwords.hash_password("pass\x00word", CHEAP), "pass\x00word", True),
    (passwords.hash_password("pass\x00word", CHEAP), "pass", False),
    (passwords.hash_password("password-123", CHEAP), "\ud800", False),  # a lone surrogate (JSON allows it)
    (generate_password_hash("password-123", "pbkdf2:sha256:1000"), "\ud800", False),
    # PBKDF2 from before Argon2id (werkzeug's format)
    (generate_password_hash("password-123", "pbkdf2:sha256:1000"), "password-123", True),
    (generate_password_hash("password-123", "pbkdf2:sha256:1000"), "password-12", False),
    # no password at all: an account made by the LMS, a damaged or unknown hash
    ("!lti", "!lti", False),
    ("", "", False),
    ("$argon2id$v=19$m=8,t=1,p=1$bm90LWEtaGFzaA$broken", "password-123", False),
    ("pbkdf2:sha256:1000$salt", "password-123", False),
    ("pbkdf2:nosuchdigest:1000$salt$00", "password-123", False),
    ("scrypt:32768:8:1$salt$00", "password-123", False),
], ids=salted)
def test_verify(stored, password, right):
    assert passwords.verify_password(stored, password) is right


@pytest.mark.parametrize("stored, outdated", [
    # PBKDF2, whatever its iterations
    (generate_password_hash("pw-123456", "pbkdf2:sha256:1000"), True),
    (generate_password_hash("pw-123456", "pbkdf2:sha256:600000"), True),
    # Argon2 with other parameters, or the older variants
    (passwords.hash_password("pw-123456", "argon2id:m=16,t=1,p=1"), True),
    (passwords.hash_password("pw-123456", "argon2id:m=8,t=2,p=1"), True),
    (argon2.PasswordHasher(1, 8, 1, type=argon2.Type.I).hash("pw-123456"), True),
    # the configured method itself
    (passwords.hash_password("pw-123456", CHEAP), False),
], ids=salted)
def test_needs_rehash_against_the_configured_method(stored, outdated):
    assert passwords.needs_rehash(stored, CHEAP) is outdated


def test_verify_and_update_gives_a_new_hash_only_for_a_right_outdated_one():
    old = generate_password_hash("password-123", "pbkdf2:sha256:1000")
    right, new = passwords.verify_and_update(old, "password-123", CHEAP)
    assert right and new is not None and new.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.verify_password(new, "password-123") and not passwords.verify_password(new, "password-124")
    assert passwords.verify_and_update(old, "wrong-password", CHEAP) == (False, None)
    assert passwords.verify_and_update(new, "password-123", CHEAP) == (True, None)


@pytest.mark.parametrize("method, problem", [
    ("pbkdf2:sha256:600000", "use argon2id:m=KIB,t=PASSES,p=LANES"),
    ("argon2id:m=19456,t=2", "use argon2id:m=KIB,t=PASSES,p=LANES"),
    ("argon2i:m=19456,t=2,p=1", "use argon2id:m=KIB,t=PASSES,p=LANES"),
    ("argon2id:m=4,t=1,p=1", "m >= 8 \\* p"),
    ("argon2id:m=64,t=0,p=1", "t >= 1"),
])
def test_a_bad_method_is_refused_with_the_form_to_use(method, problem):
    with pytest.raises(ValueError, match=problem):
        passwords.hash_password("password-123", method)


def test_libsodium_checks_argon2id_one_lane_hashes_and_agrees_with_argon2_cffi_everywhere():
    """The login's check (libsodium where it covers the hash, argon2-cffi elsewhere) against
    argon2-cffi's own verify, on every Argon2 type, two lanes, a version-16 hash, wrong and empty
    passwords and damaged hashes."""
    hashes = [argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=p, type=t).hash("sekret")
              for t in (argon2.Type.ID, argon2.Type.I, argon2.Type.D) for p in (1, 2)]
    hashes.append(argon2.low_level.hash_secret(b"sekret", b"saltsaltsalt", 1, 64, 1, 16, argon2.Type.I,
                                               version=16).decode())
    own = passwords.hash_password("pässwörd", CHEAP)
    cases = [(h, pw) for h in hashes for pw in ("sekret", "sekreT", "")]
    cases += [(own, "pässwörd"), (own, "passwörd"), (own[:-3], "pässwörd"), (own + "!", "pässwörd"),
              (own.replace("v=19", "v=16"), "pässwörd"), (own.replace("$argon2id$", "$argon2i$"), "pässwörd"),
              (own.replace("m=8,", "m=9,"), "pässwörd"), (own + "é", "pässwörd"),
              ("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ", "x"), ("$argon2id$junk", "x")]
    for h, pw in cases:
        try:
            expected = argon2.PasswordHasher().verify(h, pw)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, UnicodeEncodeError):
            expected = False
        assert passwords.verify_password(h, pw) is expected, (h, pw)
    assert [passwords.verify_password(h, "sekret") for h in hashes] == [True] * 7
    # libsodium took the Argon2id one-lane hashes (the configured method's) and left the rest
    assert passwords._sodium_matches(own, "pässwörd") is True
    assert passwords._sodium_matches(own, "passwörd") is False
    assert passwords._sodium_matches(hashes[0], "sekret") is True
    assert [passwords._sodium_matches(h, "sekret") for h in hashes[1:]] == [None] * 6


def test_a_login_check_of_the_default_hash_runs_in_libsodium(monkeypatch):
    h = passwords.hash_password("correct horse battery")
    def asked(*_):
        raise AssertionError("argon2-cffi checked the password")

    monkeypatch.setattr(argon2.PasswordHasher, "verify", asked)
    assert passwords.verify_and_update(h, "correct horse battery") == (True, None)
    assert passwords.verify_and_update(h, "correct horse batterY") == (False, None)
