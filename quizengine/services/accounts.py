"""Accounts: password hashing, users add/import, login throttling, API tokens."""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
import unicodedata
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any, Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginFailure, User

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


def check_login(s: Session, username: str, password: str) -> User | None:
    """Return the user whose password matches, else None (in constant-ish time)."""
    # A name no account can have (NUL, too long) never reaches the database, which may refuse it.
    user = s.scalar(select(User).where(User.username == username)) if USERNAME.match(username or "") else None
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


def set_password(s: Session, user: User, password: str, method: str = "pbkdf2:sha256:600000") -> None:
    user.password_hash = hash_password(check_password(password), method)
    user.session_version += 1  # every existing session and token ends


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

def throttle_keys(username: str, address: str) -> list[tuple[str, str]]:
    name = username.lower() if USERNAME.match(username or "") else "(not a username)"
    return [("user", f"user:{name}"), ("address", f"ip:{address[:200]}")]


def locked_for(s: Session, username: str, address: str, t: datetime) -> timedelta | None:
    """How long logins for this username or address stay locked, or None."""
    worst = None
    for _, key in throttle_keys(username, address):
        row = s.get(LoginFailure, key)
        if row and row.locked_until and _aware(row.locked_until) > t:
            left = _aware(row.locked_until) - t
            worst = left if worst is None or left > worst else worst
    return worst


def record_failure(s: Session, username: str, address: str, t: datetime, limits: dict[str, int],
                   window: timedelta) -> None:
    for kind, key in throttle_keys(username, address):
        row = s.get(LoginFailure, key)
        if row is None or _aware(row.window_start) + window < t:
            if row is None:
                row = LoginFailure(key=key, count=0, window_start=t)
                s.add(row)
            row.count, row.window_start, row.locked_until = 0, t, None
        row.count += 1
        if row.count >= limits[kind]:
            row.locked_until = t + window


def clear_failures(s: Session, username: str) -> None:
    row = s.get(LoginFailure, throttle_keys(username, "")[0][1])
    if row is not None:
        s.delete(row)


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


@dataclass
class LoginResult:
    user: User | None  # None: wrong name or password, or locked
    locked: timedelta | None  # how long logins stay locked


def login(db, username: str, password: str, address: str, limits: dict[str, int],  # type: ignore[no-untyped-def]
          window: timedelta, t: datetime | None = None) -> LoginResult:
    """Check a login with the throttle; the slow password hash runs outside any write lock."""
    t = t or now()
    with db.read() as s:
        locked = locked_for(s, username, address, t)
        if locked is not None:
            return LoginResult(None, locked)
        user = check_login(s, username, password)
        had_failures = s.get(LoginFailure, throttle_keys(username, address)[0][1]) is not None
    if user is None:
        with db.write() as s:
            record_failure(s, username, address, t, limits, window)
    elif had_failures:
        with db.write() as s:
            clear_failures(s, username)
    return LoginResult(user, None)


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
