"""Password hashes: Argon2id for every new hash; the PBKDF2 hashes of earlier versions still verify
and are replaced at the next successful login (``needs_rehash``).

A method names the Argon2id parameters, e.g. ``argon2id:m=19456,t=2,p=1`` (memory in KiB, passes,
lanes); the hashes themselves are the standard PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$...``).
Each call computes for tens of milliseconds (and releases the GIL): callers under gevent run them
through ``offload.in_thread`` (see services/accounts.py and services/logins.py). A login's check
can keep Argon2's working memory between hashes (``Memory``).
"""

from __future__ import annotations

import base64
import hmac
import re
from functools import cache

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import core, ffi
from werkzeug.security import check_password_hash

from .constants import PASSWORD_METHOD

METHOD = re.compile(r"^argon2id:m=(\d+),t=(\d+),p=(\d+)$")
ARGON2_OK, ARGON2_MEMORY_ALLOCATION_ERROR, ARGON2_DEFAULT_FLAGS = 0, -22, 0  # argon2.h


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


class Memory:
    """Argon2's working memory (19 MiB at OWASP's parameters) kept between checks.

    Without it every check gets a new block from malloc, which the server's workers map fresh and
    give back at once (server.tame_malloc): 4,864 pages to fault in and zero, about 10 ms of system
    CPU per login on top of Argon2's own 32-40 ms. With it a block is reused until ``release``
    (a hashing thread calls it once logins pause). Thread-safe: each check takes a block of its own
    (Argon2 wipes the block before it hands it back)."""

    def __init__(self) -> None:
        self.free: list = []  # unused blocks (cffi arrays); list.pop and append are atomic

    def take(self, size: int):  # type: ignore[no-untyped-def]
        """A block of at least ``size`` bytes: a kept one, or a new one."""
        for _ in range(len(self.free)):
            try:
                block = self.free.pop()
            except IndexError:
                break
            if len(block) >= size:
                return block
        return ffi.new("uint8_t[]", size)

    def give(self, block) -> None:  # type: ignore[no-untyped-def]
        self.free.append(block)

    def release(self) -> None:
        """Give every unused block back (blocks in use are not held here)."""
        self.free.clear()


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _argon2_matches(pwhash: str, password: str, memory: Memory) -> bool | None:
    """Argon2's check of ``password`` against a PHC string, computed in a block of ``memory``: whether
    it matches, or None for a hash this can't read (the caller asks argon2-cffi instead)."""
    try:
        params = extract_parameters(pwhash)
        salt, digest = (_b64(x) for x in pwhash.rsplit("$", 2)[1:])
    except (InvalidHashError, ValueError):
        return None
    secret = password.encode("utf-8")
    size = params.memory_cost * 1024
    block = memory.take(size)

    @ffi.callback("int(uint8_t **, size_t)")
    def allocate(out, n):  # type: ignore[no-untyped-def]
        if n > len(block):
            return ARGON2_MEMORY_ALLOCATION_ERROR
        out[0] = block
        return ARGON2_OK

    @ffi.callback("void(uint8_t *, size_t)")
    def free(_, n):  # type: ignore[no-untyped-def]
        pass  # the block stays with ``memory``

    out, pwd, salt_c = ffi.new("uint8_t[]", len(digest)), ffi.new("uint8_t[]", secret), ffi.new("uint8_t[]", salt)
    ctx = ffi.new("argon2_context *", {
        "out": out, "outlen": len(digest), "pwd": pwd, "pwdlen": len(secret), "salt": salt_c, "saltlen": len(salt),
        "secret": ffi.NULL, "secretlen": 0, "ad": ffi.NULL, "adlen": 0, "t_cost": params.time_cost,
        "m_cost": params.memory_cost, "lanes": params.parallelism, "threads": params.parallelism,
        "version": params.version, "allocate_cbk": allocate, "free_cbk": free, "flags": ARGON2_DEFAULT_FLAGS})
    try:
        ok = core(ctx, params.type.value) == ARGON2_OK  # argon2_ctx: the GIL is released meanwhile
    finally:
        memory.give(block)
    return ok and hmac.compare_digest(ffi.buffer(out)[:], digest)


def verify_password(pwhash: str, password: str, memory: Memory | None = None) -> bool:
    """True when ``password`` matches: an Argon2 hash, or a werkzeug PBKDF2 one (``pbkdf2:sha256:N$...``).

    Anything else (an account without a password, such as an LMS one's ``!lti``) matches nothing.
    With ``memory``, an Argon2 check runs in a block kept there.
    """
    if pwhash.startswith("$argon2"):
        if memory is not None:
            matched = _argon2_matches(pwhash, password, memory)
            if matched is not None:
                return matched
        try:
            return hasher().verify(pwhash, password)  # the parameters are read from the hash itself
        except (VerificationError, InvalidHashError):
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


def verify_and_update(pwhash: str, password: str, method: str = PASSWORD_METHOD,
                      memory: Memory | None = None) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and when it does with an outdated hash, its new hash to store."""
    if not verify_password(pwhash, password, memory):
        return False, None
    return True, hash_password(password, method) if needs_rehash(pwhash, method) else None
