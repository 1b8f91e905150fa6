"""Accounts: password hashing, users add/import, login throttling, API tokens."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any, Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginFailure, User, UserSession
from ..offload import in_thread

# PBKDF2 costs ~0.3 s of CPU per call (and releases the GIL): under gevent workers it runs in a
# thread, so that a class logging in at once doesn't stall every other request of the worker.
check_password_hash = in_thread(check_password_hash)
generate_password_hash = in_thread(generate_password_hash)

ROLES = ("student", "instructor")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
PASSWORD_MIN = 8
ROSTER_COLUMNS = ("username", "full_name", "student_id", "email")


class AccountError(ValueError):
    """Bad account data; the message says what and where."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def hash_password(password: str, method: str = "pbkdf2:sha256:600000") -> str:
    return generate_password_hash(password, method=method)


@cache
def _dummy_hash() -> str:
    """A hash to check when the username does not exist, so both paths take as long."""
    return hash_password(secrets.token_hex(8))


def find_user(s: Session, username: str) -> User | None:
    # A name no account can have (NUL, too long) never reaches the database, which may refuse it.
    return s.scalar(select(User).where(User.username == username)) if USERNAME.match(username or "") else None


def check_login(s: Session, username: str, password: str) -> User | None:
    """Return the user whose password matches, else None (in constant-ish time)."""
    user = find_user(s, username)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_username(name: str) -> str:
    if not USERNAME.match(name or ""):
        raise AccountError(f"username {name!r}: use letters, digits and . _ @ + - (up to 100, starting with a letter or digit)")
    return name


def check_password(pw: str) -> str:
    if len(pw) < PASSWORD_MIN:
        raise AccountError(f"password: at least {PASSWORD_MIN} characters")
    return pw


def add_user(s: Session, username: str, role: str, password: str, full_name: str = "", student_id: str = "",
             email: str = "", method: str = "pbkdf2:sha256:600000") -> User:
    check_username(username)
    if role not in ROLES:
        raise AccountError(f"role {role!r}: use student or instructor")
    check_password(password)
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"username {username!r} exists already")
    user = User(username=username, role=role, password_hash=hash_password(password, method), full_name=full_name,
                student_id=student_id, email=email, created_at=now())
    s.add(user)
    s.flush()
    return user


def set_password(s: Session, user: User, password_hash: str) -> None:
    """Store a new password (hashed by the caller, outside the write lock); every session and token ends."""
    user.password_hash = password_hash
    user.session_version += 1  # every API token ends (tokens carry the version)
    end_sessions(s, user.id)  # and every browser session


@dataclass
class RosterRow:
    line: int
    username: str
    full_name: str
    student_id: str
    email: str
    password: str | None


# A value longer than its column is refused by PostgreSQL; the limits come from models.py.
ROSTER_SIZES = {c: User.__table__.c[c].type.length for c in ROSTER_COLUMNS}
PROBLEMS_SHOWN = 50


def _field_problem(column: str, value: str) -> str | None:
    """Why a roster field can't be stored (too long, a control character), or None."""
    if len(value) > ROSTER_SIZES[column]:
        return f"{column}: {len(value)} characters; at most {ROSTER_SIZES[column]}"
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if bad is not None:
        return f"{column}: contains the control character U+{ord(bad):04X}; remove it"
    return None


def parse_roster(text: str) -> list[RosterRow]:
    """Check every row first; raise AccountError listing every problem with its line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as e:
        raise AccountError(f"line 1: not a CSV header ({e})") from None
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        raise AccountError(f"line 1: the header needs the columns {', '.join(ROSTER_COLUMNS)} "
                           f"(and optionally password); missing: {', '.join(missing)}")
    extra = [h for h in header if h not in ROSTER_COLUMNS + ("password",)]
    if extra:
        raise AccountError(f"line 1: unknown columns: {', '.join(extra)}")
    rows, problems, seen = [], [], {}
    try:
        for n, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append(f"line {n}: more fields than columns")
                continue
            name = row.get("username", "")
            fields = [_field_problem(c, row.get(c, "")) for c in ROSTER_COLUMNS]
            problems += [f"line {n}: {p}" for p in fields if p]
            if fields[0] is None:
                try:
                    check_username(name)
                except AccountError as e:
                    problems.append(f"line {n}: {e}")
            if name in seen:
                problems.append(f"line {n}: username {name!r} repeats line {seen[name]}")
            seen.setdefault(name, n)
            pw = row.get("password") or None
            if pw is not None and len(pw) < PASSWORD_MIN:
                problems.append(f"line {n}: password: at least {PASSWORD_MIN} characters")
            rows.append(RosterRow(n, name, row.get("full_name", ""), row.get("student_id", ""), row.get("email", ""), pw))
    except csv.Error as e:
        problems.append(f"line {reader.line_num}: not valid CSV ({e})")
    if problems:
        more = len(problems) - PROBLEMS_SHOWN
        raise AccountError("\n".join(problems[:PROBLEMS_SHOWN] + ([f"... and {more} more problems"] if more > 0 else [])))
    if not rows:
        raise AccountError("line 2: the roster has no rows")
    return rows


def hash_workers() -> int:
    """Threads that hash passwords at once (hashlib releases the GIL), leaving a core to other requests."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def hash_passwords(passwords: list[str], method: str, budget_s: float | None = None,
                   progress: Callable[[int, int], Any] | None = None) -> list[str]:
    """Hash every password, a few at once, with no transaction open; ``progress(done, total)``.

    With ``budget_s``, give up (AccountError) as soon as the rate so far shows the whole list
    can't be hashed within it, saying how many rows would fit.
    """
    total, began, workers = len(passwords), time.monotonic(), hash_workers()
    hashes = [""] * total
    with ThreadPoolExecutor(workers, thread_name_prefix="quizengine-hash") as pool:
        pending = {pool.submit(hash_password, pw, method): k for k, pw in enumerate(passwords)}
        done = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                hashes[pending.pop(f)] = f.result()
            done += len(finished)
            if progress is not None:
                progress(done, total)
            elapsed = time.monotonic() - began
            projected = elapsed * total / done  # (judged once every thread has finished one)
            if budget_s is not None and pending and (elapsed > budget_s or (done >= workers and projected > budget_s)):
                pool.shutdown(cancel_futures=True)
                fits = max(1, int(done * budget_s / elapsed))
                raise AccountError(
                    f"hashing {total} passwords takes about {projected:.0f} s on this server, longer "
                    f"than a page can wait ({budget_s:.0f} s); nothing was imported: import at most {fits} rows "
                    "at a time here, or the whole roster with `quizengine users import ROSTER.csv`")
    return hashes


def roster_clashes(s: Session, rows: list[RosterRow]) -> None:
    """AccountError listing every row whose username exists already."""
    taken = set(s.scalars(select(User.username).where(User.username.in_([r.username for r in rows]))))
    clashes = [f"line {r.line}: username {r.username!r} exists already" for r in rows if r.username in taken]
    if clashes:
        raise AccountError("\n".join(clashes))


@dataclass
class ImportedRoster:
    students: int
    generated: list[tuple[str, str]]  # (username, password) of the rows that had no password


def import_roster(db: Any, text: str, method: str = "pbkdf2:sha256:600000", budget_s: float | None = None,
                  progress: Callable[[int, int], Any] | None = None) -> ImportedRoster:
    """Create every student of the roster, or none (AccountError listing every problem).

    Every row is checked and every password hashed before the write transaction, which only
    inserts the rows (the hashing takes about 0.2 s a password at 600,000 iterations).
    """
    rows = parse_roster(text)
    with db.read() as s:
        roster_clashes(s, rows)
    passwords = [r.password or generate_password() for r in rows]
    hashes = hash_passwords(passwords, method, budget_s, progress)
    with db.write() as s:
        roster_clashes(s, rows)  # (an account may have been created meanwhile)
        t = now()
        s.add_all(User(username=r.username, role="student", password_hash=h, full_name=r.full_name,
                       student_id=r.student_id, email=r.email, created_at=t) for r, h in zip(rows, hashes))
    return ImportedRoster(len(rows), [(r.username, pw) for r, pw in zip(rows, passwords) if r.password is None])


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
    pair_key, _, rate_key = throttle_keys(username, address)
    pair = s.get(LoginFailure, pair_key)
    if pair is not None and pair.locked_until is not None and _aware(pair.locked_until) > t:
        return Wait(_aware(pair.locked_until) - t, "failures")
    if th.per_address:
        rate = s.get(LoginFailure, rate_key)
        if rate is not None and _aware(rate.window_start) + MINUTE > t and rate.count >= th.per_address:
            return Wait(_aware(rate.window_start) + MINUTE - t, "address")
    return None


def reserve(s: Session, username: str, address: str, t: datetime, th: Throttle) -> Wait | None:
    """Count one password check against the address (in a write transaction), or say how long to wait."""
    wait = refusal(s, username, address, t, th)
    if wait is None and th.per_address:
        _bump(s, throttle_keys(username, address)[2], t, MINUTE)
    return wait


def _bump(s: Session, key: str, t: datetime, window: timedelta) -> LoginFailure:
    """Add one to a counter, starting a new window when the last one is over."""
    row = s.get(LoginFailure, key)
    if row is None:
        row = LoginFailure(key=key, count=0, window_start=t)
        s.add(row)
    elif _aware(row.window_start) + window <= t:
        row.count, row.window_start, row.locked_until = 0, t, None
    row.count += 1
    return row


def record_failure(s: Session, username: str, address: str, t: datetime, th: Throttle) -> timedelta | None:
    """Count a wrong password; return how long the pair must now wait, or None."""
    pair_key, ip_key, _ = throttle_keys(username, address)
    over_budget = _bump(s, ip_key, t, th.window).count > th.address_failures
    pair = s.get(LoginFailure, pair_key)
    if pair is None:
        pair = LoginFailure(key=pair_key, count=0, window_start=t)
        s.add(pair)
    elif _aware(pair.window_start) + th.forget <= t:  # window_start: the pair's last failure
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


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


@dataclass
class LoginResult:
    user: User | None  # None: wrong name or password, or throttled
    retry_after: Wait | None = None  # throttled: the password was not checked; try again after this
    session_id: str | None = None  # the new server-side session (with new_session=True)


def login(db, username: str, password: str, address: str, th: Throttle,  # type: ignore[no-untyped-def]
          t: datetime | None = None, new_session: bool = False) -> LoginResult:
    """Check a login with the throttle; the slow password hash runs outside any transaction."""
    t = t or now()
    with db.read() as s:
        wait = refusal(s, username, address, t, th)
        if wait is not None:
            return LoginResult(None, wait)
        user = find_user(s, username)
        had_failures = s.get(LoginFailure, throttle_keys(username, address)[0]) is not None
    if th.bucket is not None:
        seconds = th.bucket.take()
        if seconds:
            return LoginResult(None, Wait(timedelta(seconds=seconds), "server"))
    if th.per_address:
        with db.write() as s:
            wait = reserve(s, username, address, t, th)
        if wait is not None:
            return LoginResult(None, wait)
    if not check_password_hash(user.password_hash if user else _dummy_hash(), password) or user is None:
        with db.write() as s:
            record_failure(s, username, address, t, th)
        return LoginResult(None)
    sid = None
    if had_failures or new_session:
        with db.write() as s:
            if had_failures:
                clear_failures(s, username, address)
            if new_session:
                sid = open_session(s, user.id, t)
    return LoginResult(user, None, sid)


# ---------------------------------------------------------------- sessions

SESSION_KEEP = timedelta(hours=12)  # rows older than a session's absolute lifetime are tidied away


def open_session(s: Session, user_id: int, t: datetime) -> str:
    """Record a new browser session of a user; return its id (kept in the signed cookie)."""
    s.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.created_at < t - SESSION_KEEP))
    sid = secrets.token_urlsafe(32)
    s.add(UserSession(id=sid, user_id=user_id, created_at=t))
    return sid


def close_session(s: Session, session_id: str) -> None:
    s.execute(delete(UserSession).where(UserSession.id == session_id))


def end_sessions(s: Session, user_id: int) -> None:
    """End every browser session of a user (a password change or reset)."""
    s.execute(delete(UserSession).where(UserSession.user_id == user_id))


# ---------------------------------------------------------------- API tokens

def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="quizengine-api-token")


def issue_token(secret: str, user: User) -> str:
    return _serializer(secret).dumps({"uid": user.id, "sv": user.session_version})


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class TokenUser:
    """Who a bearer token speaks for (a plain snapshot, not an ORM object)."""

    id: int
    username: str
    role: str
    session_version: int


def user_for_token(s: Session, secret: str, token: str, max_age: int) -> TokenUser:
    try:
        data = _serializer(secret).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("the token has expired; ask for a new one at /api/v1/auth/token") from None
    except BadSignature:
        raise TokenError("invalid token") from None
    uid = data.get("uid") if isinstance(data, dict) else None
    row = s.execute(select(User.id, User.username, User.role, User.session_version).where(User.id == uid)).first() \
        if isinstance(uid, int) else None
    if row is None or row.session_version != data.get("sv"):
        raise TokenError("invalid token")
    return TokenUser(row.id, row.username, row.role, row.session_version)
