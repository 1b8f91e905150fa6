"""Logins: the throttle that slows password guessing without locking anyone out, the login itself
(its password hash outside any transaction), and signed API tokens."""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Row, bindparam, case, delete, null, or_, select
from sqlalchemy.orm import Session

from .. import passwords
from ..constants import PASSWORD_METHOD
from ..db import Database, dialect_insert
from ..models import LoginFailure, User
from ..offload import in_thread
from .accounts import HASH_THREADS, USERNAME, find_user, hash_password, rehash, set_password
from .clock import aware, now
from .principal import Principal
from .sessions import open_session

# An Argon2id check costs ~25-30 ms of CPU (an older PBKDF2 one 0.3 s; both release the GIL): under
# gevent workers it runs in the worker's hashing lane (accounts.HASH_THREADS; offload.Lane), first
# come first served, so that a class logging in at once doesn't stall every other request of the
# worker. A right password with an outdated hash is hashed anew in the same call, still outside any
# transaction.
check_password = in_thread(passwords.verify_and_update, HASH_THREADS)


@cache
def _dummy_hash(method: str) -> str:
    """A hash to check when the username does not exist, so both paths take as long."""
    return hash_password(secrets.token_hex(8), method)


# ---------------------------------------------------------------- throttling
#
# Three counters in login_failure, shared by every worker (and every app instance):
#   pair:NAME|ADDRESS  failures of one username from one address; after the free ones the pair
#                      waits 2, 4, 8, ... s (capped) before its next password check
#   ip:ADDRESS         failures from an address within the window; past the budget, every pair
#                      of that address that fails waits the longest delay at once
#   rate:ADDRESS       password checks (right or wrong) from an address in the current minute
# A pair without failures is never refused for another pair's failures: an attacker can't lock
# out a classmate or the instructor. A worker also limits the password checks it starts per
# second, so a flood of logins (valid or not) can't take the CPU that autosaves need.

MINUTE = timedelta(minutes=1)


class TokenBucket:
    """Password checks one worker may start: ``rate`` per second, ``burst`` at once (thread-safe)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self, t: float | None = None) -> float:
        """Take one check; return 0, or the seconds until one is free."""
        with self.lock:
            t = time.monotonic() if t is None else t
            self.tokens = min(self.burst, self.tokens + (t - self.at) * self.rate)
            self.at = t
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@dataclass(frozen=True)
class Throttle:
    free_failures: int = 3
    max_delay: timedelta = timedelta(minutes=15)
    forget: timedelta = timedelta(hours=1)
    address_failures: int = 30
    window: timedelta = timedelta(minutes=15)
    per_address: int = 60  # password checks per address per minute; 0: no limit
    bucket: TokenBucket | None = None  # this worker's checks per second; None: no limit

    @classmethod
    def of(cls, cfg, bucket: TokenBucket | None = None) -> "Throttle":  # type: ignore[no-untyped-def]
        return cls(cfg["LOGIN_FREE_FAILURES"], cfg["LOGIN_MAX_DELAY"], cfg["LOGIN_FORGET"], cfg["LOGIN_LIMIT_ADDRESS"],
                   cfg["LOGIN_WINDOW"], cfg["LOGINS_PER_ADDRESS"], bucket)


def throttle_keys(username: str, address: str) -> tuple[str, str, str]:
    """The (pair, address failures, address rate) keys of a login."""
    name = username.lower() if USERNAME.match(username or "") else "(not a username)"
    address = address[:150]
    return f"pair:{name}|{address}", f"ip:{address}", f"rate:{address}"


@dataclass(frozen=True)
class Wait:
    """A login refused before its password was checked: how long to wait, and which limit it met."""

    delay: timedelta
    limit: str  # failures | address | server

    @property
    def seconds(self) -> int:
        return max(1, math.ceil(self.delay.total_seconds()))


def refusal(s: Session, username: str, address: str, t: datetime, th: Throttle) -> Wait | None:
    """How long this login must wait before its password is checked, or None."""
    return _refusal(_rows(s, username, address), username, address, t, th)


def _rows(s: Session, username: str, address: str) -> dict[str, Row]:
    """The throttle rows of a login's pair and address rate (key -> key, count, window_start,
    locked_until), in one read."""
    pair_key, _, rate_key = throttle_keys(username, address)
    return {r.key: r for r in s.execute(THROTTLE_ROWS, {"keys": [pair_key, rate_key]})}


THROTTLE_ROWS = select(LoginFailure.key, LoginFailure.count, LoginFailure.window_start, LoginFailure.locked_until) \
    .where(LoginFailure.key.in_(bindparam("keys", expanding=True)))


def _refusal(rows: dict[str, Row], username: str, address: str, t: datetime, th: Throttle) -> Wait | None:
    pair_key, _, rate_key = throttle_keys(username, address)
    pair = rows.get(pair_key)
    if pair is not None and pair.locked_until is not None and aware(pair.locked_until) > t:
        return Wait(aware(pair.locked_until) - t, "failures")
    rate = rows.get(rate_key) if th.per_address else None
    if rate is not None and aware(rate.window_start) + MINUTE > t and rate.count >= th.per_address:
        return Wait(aware(rate.window_start) + MINUTE - t, "address")
    return None


def reserve(s: Session, username: str, address: str, t: datetime, th: Throttle) -> Wait | None:
    """Count one password check against the address (in a write transaction), or say how long to wait.

    Two statements: the pair's lock read again (a failure another login recorded since the read),
    then the address's counter added to in one upsert that refuses itself at the limit; on
    PostgreSQL the upsert locks the row, so logins counted at once on several hosts lose no count.
    """
    pair_key, _, rate_key = throttle_keys(username, address)
    locked = s.scalar(PAIR_LOCK, {"key": pair_key})
    if locked is not None and aware(locked) > t:
        return Wait(aware(locked) - t, "failures")
    if th.per_address and not _take(s, rate_key, t, MINUTE, th.per_address):
        return refusal(s, username, address, t, th) or Wait(timedelta(seconds=1), "address")
    return None


PAIR_LOCK = select(LoginFailure.locked_until).where(LoginFailure.key == bindparam("key"))


def _take_statement(insert: Callable) -> Any:
    """Add one to a counter (a new window when the last one is over) unless it holds ``limit`` in its
    current window: one insert-or-update, built once per dialect."""
    over = LoginFailure.window_start <= bindparam("cutoff", type_=LoginFailure.window_start.type)
    t = bindparam("t", type_=LoginFailure.window_start.type)
    stmt = insert(LoginFailure).values(key=bindparam("key"), count=1, window_start=t)
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"count": case((over, 1), else_=LoginFailure.count + 1),
              "window_start": case((over, t), else_=LoginFailure.window_start),
              "locked_until": case((over, null()), else_=LoginFailure.locked_until)},
        where=or_(over, LoginFailure.count < bindparam("limit"))).returning(LoginFailure.count)


TAKE: dict[str, Any] = {}  # dialect name -> its statement, built at first use


def _take(s: Session, key: str, t: datetime, window: timedelta, limit: int) -> bool:
    """Count one in ``key``'s window unless it holds ``limit`` there already; whether it counted."""
    dialect = s.get_bind().dialect.name
    stmt = TAKE.get(dialect)
    if stmt is None:
        stmt = TAKE[dialect] = _take_statement(dialect_insert(dialect))
    return s.execute(stmt, {"key": key, "t": t, "cutoff": t - window, "limit": limit}).first() is not None


def _counter(s: Session, key: str, t: datetime) -> tuple[LoginFailure, bool]:
    """A throttle counter row, created at 0 if missing, and locked for this transaction; whether it
    is new. Several hosts or workers may count the same key at once: on PostgreSQL the insert skips
    a row another transaction made (no unique violation) and FOR UPDATE serialises the increments
    (no lost update); SQLite's write transaction already holds the whole database."""
    insert = dialect_insert(s.get_bind().dialect.name)
    made = s.execute(insert(LoginFailure).values(key=key, count=0, window_start=t)
                     .on_conflict_do_nothing(index_elements=["key"])).rowcount == 1
    row = s.scalars(select(LoginFailure).where(LoginFailure.key == key).with_for_update()
                    .execution_options(populate_existing=True)).one()
    return row, made


def _bump(s: Session, key: str, t: datetime, window: timedelta) -> LoginFailure:
    """Add one to a counter, starting a new window when the last one is over."""
    row, made = _counter(s, key, t)
    if not made and aware(row.window_start) + window <= t:
        row.count, row.window_start, row.locked_until = 0, t, None
    row.count += 1
    return row


def record_failure(s: Session, username: str, address: str, t: datetime, th: Throttle) -> timedelta | None:
    """Count a wrong password; return how long the pair must now wait, or None."""
    pair_key, ip_key, _ = throttle_keys(username, address)
    over_budget = _bump(s, ip_key, t, th.window).count > th.address_failures
    pair, made = _counter(s, pair_key, t)
    if not made and aware(pair.window_start) + th.forget <= t:  # window_start: the pair's last failure
        pair.count = 0
    pair.count += 1
    pair.window_start = t
    extra = pair.count - th.free_failures
    if over_budget:
        delay = th.max_delay
    elif extra > 0:
        delay = min(th.max_delay, timedelta(seconds=2 ** min(extra, 30)))
    else:
        delay = None
    pair.locked_until = t + delay if delay else None
    return delay


def clear_failures(s: Session, username: str, address: str) -> None:
    s.execute(delete(LoginFailure).where(LoginFailure.key == throttle_keys(username, address)[0]))


@dataclass
class LoginResult:
    user: User | None  # None: wrong name or password, or throttled
    retry_after: Wait | None = None  # throttled: the password was not checked; try again after this
    session_id: str | None = None  # the new server-side session (with new_session=True)


def login(db: Database, username: str, password: str, address: str, th: Throttle,
          t: datetime | None = None, new_session: bool = False, method: str = PASSWORD_METHOD) -> LoginResult:
    """Check a login with the throttle; the slow password hash runs outside any transaction.

    A right password whose hash is not ``method``'s (PBKDF2 from before Argon2id) gets a new hash,
    computed before, and stored in, the short write that ends the login.

    A wrong password's lock runs from the moment the check failed, not from the login's arrival: a
    check that waited for the hashing lane (a class logging in) must not have served its lock already.
    """
    asked, t = t, t or now()
    with db.read() as s:
        rows = _rows(s, username, address)
        wait = _refusal(rows, username, address, t, th)
        if wait is not None:
            return LoginResult(None, wait)
        user = find_user(s, username)
        had_failures = throttle_keys(username, address)[0] in rows
    if th.bucket is not None:
        seconds = th.bucket.take()
        if seconds:
            return LoginResult(None, Wait(timedelta(seconds=seconds), "server"))
    if th.per_address:
        with db.write(durable=False) as s:  # a count a crash may lose: its commit waits for no fsync
            wait = reserve(s, username, address, t, th)
        if wait is not None:
            return LoginResult(None, wait)
    pwhash = user.password_hash if user else _dummy_hash(method)
    right, new_hash = check_password(pwhash, password, method)
    if not right or user is None:
        with db.write() as s:
            record_failure(s, username, address, now() if asked is None else t, th)
        return LoginResult(None)
    sid = None
    if had_failures or new_session or new_hash:
        with db.write() as s:
            if had_failures:
                clear_failures(s, username, address)
            if new_hash:
                rehash(s, user.id, pwhash, new_hash)
            if new_session:
                sid = open_session(s, user.id, t)
    return LoginResult(user, None, sid)


def change_password(s: Session, user_id: int, password_hash: str, t: datetime) -> tuple[User, str]:
    """Store a user's new password (hashed by the caller): every other session and token ends, and a
    new session goes on; returns the user and that session's id."""
    user = s.get(User, user_id)
    set_password(s, user, password_hash)
    return user, open_session(s, user.id, t)


# ---------------------------------------------------------------- API tokens

@lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeTimedSerializer:
    """The token signer of a secret key (kept: it holds no user data, only the key and salt)."""
    return URLSafeTimedSerializer(secret, salt="quizengine-api-token")


def issue_token(secret: str, user: User) -> str:
    return _serializer(secret).dumps({"uid": user.id, "sv": user.session_version})


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class TokenUser(Principal):
    """Who a bearer token speaks for (a plain snapshot, not an ORM object)."""

    username: str = ""
    session_version: int = 0


def token_claims(secret: str, token: str, max_age: int) -> tuple[int, object]:
    """The (user id, session version) a token was signed with, if its signature holds and it is not
    expired; TokenError otherwise. Whether it still counts is the user's row's say (``user_for_token``)."""
    return token_claims_until(secret, token, max_age)[:2]


def token_claims_until(secret: str, token: str, max_age: int) -> tuple[int, object, float]:
    """``token_claims`` and the time (epoch seconds) the token expires."""
    try:
        data, signed_at = _serializer(secret).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise TokenError("the token has expired; ask for a new one at /api/v1/auth/token") from None
    except BadSignature:
        raise TokenError("invalid token") from None
    uid = data.get("uid") if isinstance(data, dict) else None
    if not isinstance(uid, int) or isinstance(uid, bool):
        raise TokenError("invalid token")
    return uid, data.get("sv"), signed_at.timestamp() + max_age


def user_for_token(s: Session, secret: str, token: str, max_age: int) -> TokenUser:
    uid, sv = token_claims(secret, token, max_age)
    row = s.execute(select(User.id, User.username, User.role, User.session_version).where(User.id == uid)).first()
    if row is None or row.session_version != sv:
        raise TokenError("invalid token")
    return TokenUser(id=row.id, role=row.role, username=row.username, session_version=row.session_version)
