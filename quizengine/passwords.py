"""Password hashes: Argon2id for every new hash; the PBKDF2 hashes of earlier versions still verify
and are replaced at the next successful login (``needs_rehash``).

A method names the Argon2id parameters, e.g. ``argon2id:m=19456,t=2,p=1`` (memory in KiB, passes,
lanes); the hashes themselves are the standard PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$...``).
New hashes are argon2-cffi's; a check of an Argon2id hash runs libsodium's implementation (PyNaCl)
where it covers the hash, argon2-cffi's otherwise. Each call computes for tens of milliseconds (and
releases the GIL): callers under gevent run them through ``offload.in_thread`` (see
services/accounts.py and services/logins.py).
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from nacl.exceptions import InvalidkeyError
from nacl.pwhash import argon2id
from werkzeug.security import check_password_hash

from .constants import PASSWORD_METHOD

METHOD = re.compile(r"^argon2id:m=(\d+),t=(\d+),p=(\d+)$")


@cache
def hasher(method: str = PASSWORD_METHOD) -> PasswordHasher:
    """The Argon2id hasher of a method such as ``argon2id:m=19456,t=2,p=1``."""
    m = METHOD.match(method)
    if m is None:
        raise ValueError(f"password method {method!r}: use argon2id:m=KIB,t=PASSES,p=LANES, "
                         f"e.g. {PASSWORD_METHOD}")
    memory, passes, lanes = (int(g) for g in m.groups())
    if lanes < 1 or passes < 1 or memory < 8 * lanes:
        raise ValueError(f"password method {method!r}: Argon2 needs p >= 1, t >= 1 and m >= 8 * p")
    return PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=lanes, type=Type.ID)


def hash_password(password: str, method: str = PASSWORD_METHOD) -> str:
    """A new Argon2id hash of ``password`` with a random salt."""
    return hasher(method).hash(password)


def _sodium_matches(pwhash: str, password: str) -> bool | None:
    """libsodium's check of an Argon2id (version 19, one lane) hash: whether ``password`` matches, or
    None for a hash it does not cover (another type, version or lane count; the caller asks
    argon2-cffi instead). The same function as argon2-cffi's at about half the CPU: libsodium runs
    its AVX2 or AVX-512 code where the CPU has it, argon2-cffi's wheels their SSE2 code."""
    if not pwhash.startswith("$argon2id$v=19$"):
        return None
    try:
        if extract_parameters(pwhash).parallelism != 1:
            return None
        return bool(argon2id.verify(pwhash.encode("ascii"), password.encode("utf-8")))
    except InvalidkeyError:  # a wrong password (or a digest that can't be read: no match either)
        return False
    except (InvalidHashError, ValueError):  # unreadable parameters, or a hash libsodium won't take
        return None


def verify_password(pwhash: str, password: str) -> bool:
    """True when ``password`` matches: an Argon2 hash, or a werkzeug PBKDF2 one (``pbkdf2:sha256:N$...``).

    Anything else (an account without a password, such as an LMS one's ``!lti``) matches nothing.
    """
    if pwhash.startswith("$argon2"):
        matched = _sodium_matches(pwhash, password)
        if matched is not None:
            return matched
        try:
            return hasher().verify(pwhash, password)  # the parameters are read from the hash itself
        except (VerificationError, InvalidHashError, UnicodeEncodeError):  # the last: a hash not in ASCII
            return False
    if pwhash.startswith("pbkdf2:"):
        try:
            return check_password_hash(pwhash, password)
        except ValueError:  # a method hashlib doesn't know
            return False
    return False


def needs_rehash(pwhash: str, method: str = PASSWORD_METHOD) -> bool:
    """True when a verified hash is not Argon2id with the parameters of ``method`` (a PBKDF2 hash, or
    an Argon2 one with other parameters): the login stores a new one."""
    if not pwhash.startswith("$argon2id$"):
        return True
    try:
        return hasher(method).check_needs_rehash(pwhash)
    except InvalidHashError:
        return True


def verify_and_update(pwhash: str, password: str, method: str = PASSWORD_METHOD) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and when it does with an outdated hash, its new hash to store."""
    if not verify_password(pwhash, password):
        return False, None
    return True, hash_password(password, method) if needs_rehash(pwhash, method) else None
