"""Accounts: password hashing, users add/import, login throttling, API tokens."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginFailure, User
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


def parse_roster(text: str) -> list[RosterRow]:
    """Check every row first; raise AccountError listing every problem with its line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        raise AccountError(f"line 1: the header needs the columns {', '.join(ROSTER_COLUMNS)} "
                           f"(and optionally password); missing: {', '.join(missing)}")
    extra = [h for h in header if h not in ROSTER_COLUMNS + ("password",)]
    if extra:
        raise AccountError(f"line 1: unknown columns: {', '.join(extra)}")
    rows, problems, seen = [], [], {}
    for n, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(f"line {n}: more fields than columns")
            continue
        name = row.get("username", "")
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
    if problems:
        raise AccountError("\n".join(problems))
    if not rows:
        raise AccountError("line 2: the roster has no rows")
    return rows


def import_roster(s: Session, text: str, method: str = "pbkdf2:sha256:600000") -> list[tuple[str, str]]:
    """Create every student of the roster, or none; return (username, generated password) pairs."""
    rows = parse_roster(text)
    taken = set(s.scalars(select(User.username).where(User.username.in_([r.username for r in rows]))))
    clashes = [f"line {r.line}: username {r.username!r} exists already" for r in rows if r.username in taken]
    if clashes:
        raise AccountError("\n".join(clashes))
    generated = []
    for r in rows:
        pw = r.password or generate_password()
        if r.password is None:
            generated.append((r.username, pw))
        s.add(User(username=r.username, role="student", password_hash=hash_password(pw, method), full_name=r.full_name,
                   student_id=r.student_id, email=r.email, created_at=now()))
    s.flush()
    return generated


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
