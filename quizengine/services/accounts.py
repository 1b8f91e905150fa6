"""Accounts: users added one at a time or from a roster, passwords hashed and reset.

Logins and their throttle are in logins.py, browser sessions in sessions.py."""

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
from itertools import islice
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import passwords
from ..constants import PASSWORD_METHOD
from ..db import Database
from ..models import Attempt, AttemptState, Quiz, Role, User
from ..offload import in_thread
from .clock import now
from .errors import ServiceError
from .sessions import end_sessions

# An Argon2id hash costs ~45 ms of CPU (and releases the GIL): under gevent workers it runs in a
# thread, so that a class logging in at once doesn't stall every other request of the worker. Each
# worker hashes in one thread of its own (logins.py checks in the same one): a burst of logins
# queues there instead of holding 19 MiB per hash in up to ten threads of the hub's pool.
HASH_THREADS = 1
hash_in_thread = in_thread(passwords.hash_password, HASH_THREADS)

ROLES = tuple(r.value for r in Role)
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
PASSWORD_MIN = 8
ROSTER_COLUMNS = ("username", "full_name", "student_id", "email")


class AccountError(ValueError):
    """Bad account data; the message says what and where."""


def hash_password(password: str, method: str = PASSWORD_METHOD) -> str:
    """A new Argon2id hash (passwords.py), computed outside the event loop under gevent."""
    return hash_in_thread(password, method)


def find_user(s: Session, username: str) -> User | None:
    # A name no account can have (NUL, too long) never reaches the database, which may refuse it.
    return s.scalar(select(User).where(User.username == username)) if USERNAME.match(username or "") else None


def usernames(s: Session) -> set[str]:
    return set(s.scalars(select(User.username)))


def generate_password() -> str:
    """16 random characters; the first a letter or digit, so a spreadsheet never reads one as a formula."""
    while True:
        password = secrets.token_urlsafe(12)
        if password[0].isalnum():
            return password


def passwords_csv(generated: list[tuple[str, str]]) -> str:
    """The generated passwords of a roster import as CSV: username,password (usernames start with a
    letter or digit, and so do generated passwords: no cell reads as a formula)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "password"])
    writer.writerows(generated)
    return out.getvalue()


def check_username(name: str) -> str:
    if not USERNAME.match(name or ""):
        raise AccountError(f"username {name!r}: use letters, digits and . _ @ + - (up to 100, starting with a letter or digit)")
    return name


def check_password(pw: str) -> str:
    if len(pw) < PASSWORD_MIN:
        raise AccountError(f"password: at least {PASSWORD_MIN} characters")
    return pw


def add_user(s: Session, username: str, role: str, password: str, full_name: str = "", student_id: str = "",
             email: str = "", method: str = PASSWORD_METHOD) -> User:
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


def rehash(s: Session, user_id: int, old_hash: str, new_hash: str) -> bool:
    """Replace an outdated hash of the same password (sessions and tokens go on); False when the
    password changed meanwhile, which then stays."""
    done = s.execute(update(User).where(User.id == user_id, User.password_hash == old_hash)
                     .values(password_hash=new_hash))
    return done.rowcount == 1


def students(s: Session) -> list[User]:
    """The roster: every student, by username."""
    return list(s.scalars(select(User).where(User.role == Role.STUDENT).order_by(User.username)))


def student(s: Session, user_id: int) -> User:
    """A student's account; 404 for anyone else."""
    user = s.get(User, user_id)
    if user is None or user.role != Role.STUDENT:
        raise ServiceError(404, f"no student {user_id}")
    return user


def open_attempts(s: Session, user_id: int) -> list[tuple[Attempt, str]]:
    """A user's attempts in progress, with their quiz's title (a reset logs the student out of them)."""
    return [(a, title) for a, title in s.execute(
        select(Attempt, Quiz.title).join(Quiz, Attempt.quiz_id == Quiz.id)
        .where(Attempt.user_id == user_id, Attempt.state == AttemptState.OPEN).order_by(Attempt.id))]


def reset_password(s: Session, user_id: int, password_hash: str) -> User:
    """Give a student a new password (hashed by the caller); 404 for anyone else."""
    user = student(s, user_id)
    set_password(s, user, password_hash)
    return user


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


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")  # a name and a host; whether mail arrives is the LMS's business


def _row_problems(n: int, row: dict[str, str]) -> list[str]:
    """Every problem of one roster row (line ``n``) that the row itself shows."""
    fields = {c: _field_problem(c, row.get(c, "")) for c in ROSTER_COLUMNS}
    problems = [f"line {n}: {p}" for p in fields.values() if p]
    if fields["username"] is None:
        try:
            check_username(row.get("username", ""))
        except AccountError as e:
            problems.append(f"line {n}: {e}")
    if fields["full_name"] is None and not row.get("full_name"):
        problems.append(f"line {n}: full_name is empty; give the student's name")
    email = row.get("email", "")
    if fields["email"] is None and email and not EMAIL.match(email):
        problems.append(f"line {n}: email {email!r} is not an address like name@example.org")
    pw = row.get("password") or None
    if pw is not None and len(pw) < PASSWORD_MIN:
        problems.append(f"line {n}: password: at least {PASSWORD_MIN} characters")
    return problems


def check_roster(text: str) -> tuple[list[RosterRow], list[str]]:
    """The roster's rows and every problem found in the text, each with its line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as e:
        return [], [f"line 1: not a CSV header ({e})"]
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        return [], [f"line 1: the header needs the columns {', '.join(ROSTER_COLUMNS)} "
                    f"(and optionally password); missing: {', '.join(missing)}"]
    extra = [h for h in header if h not in ROSTER_COLUMNS + ("password",)]
    if extra:
        return [], [f"line 1: unknown columns: {', '.join(extra)}"]
    rows, problems, seen = [], [], {}
    try:
        for n, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append(f"line {n}: more fields than columns")
                continue
            problems += _row_problems(n, row)
            name = row.get("username", "")
            if name in seen:
                problems.append(f"line {n}: username {name!r} repeats line {seen[name]}")
            seen.setdefault(name, n)
            rows.append(RosterRow(n, name, row.get("full_name", ""), row.get("student_id", ""), row.get("email", ""),
                                  row.get("password") or None))
    except csv.Error as e:
        problems.append(f"line {reader.line_num}: not valid CSV ({e})")
    if not rows and not problems:
        problems.append("line 2: the roster has no rows")
    return rows, problems


def _refuse(problems: list[str]) -> AccountError:
    more = len(problems) - PROBLEMS_SHOWN
    return AccountError("\n".join(problems[:PROBLEMS_SHOWN] + ([f"... and {more} more problems"] if more > 0 else [])))


def parse_roster(text: str) -> list[RosterRow]:
    """Check every row first; raise AccountError listing every problem with its line number."""
    rows, problems = check_roster(text)
    if problems:
        raise _refuse(problems)
    return rows


def hash_workers() -> int:
    """Threads that hash passwords at once (Argon2 releases the GIL), leaving a core to other requests."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def hash_passwords(passwords: list[str], method: str, budget_s: float | None = None,
                   progress: Callable[[int, int], Any] | None = None) -> list[str]:
    """Hash every password, a few at once, with no transaction open; ``progress(done, total)``.

    With ``budget_s``, give up (AccountError) as soon as the rate so far shows the whole list
    can't be hashed within it, saying how many rows would fit.
    """
    total, began, workers = len(passwords), time.monotonic(), hash_workers()
    hashes = [""] * total
    todo = iter(enumerate(passwords))
    with ThreadPoolExecutor(workers, thread_name_prefix="quizengine-hash") as pool:
        pending: dict = {}
        done = 0
        while True:
            # one password per thread at a time: the budget is judged after each, before the next starts
            for k, pw in islice(todo, workers - len(pending)):
                pending[pool.submit(hash_password, pw, method)] = k
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                hashes[pending.pop(f)] = f.result()
            done += len(finished)
            if progress is not None:
                progress(done, total)
            elapsed = time.monotonic() - began
            projected = elapsed * total / done  # (judged once every thread has finished one)
            if budget_s is not None and done < total and (elapsed > budget_s or (done >= workers and projected > budget_s)):
                pool.shutdown(cancel_futures=True)
                fits = max(1, int(done * budget_s / elapsed))
                raise AccountError(
                    f"hashing {total} passwords takes about {projected:.0f} s on this server, longer "
                    f"than a page can wait ({budget_s:.0f} s); nothing was imported: import at most {fits} rows "
                    "at a time here, or the whole roster with `quizengine users import ROSTER.csv`")
    return hashes


def clash_problems(s: Session, rows: list[RosterRow]) -> list[str]:
    """A problem for every row whose username exists already."""
    names = [r.username for r in rows if USERNAME.match(r.username)]
    taken = set(s.scalars(select(User.username).where(User.username.in_(names)))) if names else set()
    return [f"line {r.line}: username {r.username!r} exists already" for r in rows if r.username in taken]


def roster_clashes(s: Session, rows: list[RosterRow]) -> None:
    """AccountError listing every row whose username exists already."""
    clashes = clash_problems(s, rows)
    if clashes:
        raise AccountError("\n".join(clashes))


@dataclass
class ImportedRoster:
    students: int
    generated: list[tuple[str, str]]  # (username, password) of the rows that had no password


def import_roster(db: Database, text: str, method: str = PASSWORD_METHOD, budget_s: float | None = None,
                  progress: Callable[[int, int], Any] | None = None) -> ImportedRoster:
    """Create every student of the roster, or none (AccountError listing every problem).

    Every row is checked and every password hashed before the write transaction, which only
    inserts the rows (the hashing takes about 45 ms of CPU a password).
    """
    rows, problems = check_roster(text)
    if rows:
        with db.read() as s:
            problems += clash_problems(s, rows)
    if problems:  # every problem at once, in the file's order
        raise _refuse(sorted(problems, key=lambda p: int(p.split(":", 1)[0].removeprefix("line "))))
    passwords = [r.password or generate_password() for r in rows]
    hashes = hash_passwords(passwords, method, budget_s, progress)
    with db.write() as s:
        roster_clashes(s, rows)  # (an account may have been created meanwhile)
        t = now()
        s.add_all(User(username=r.username, role=Role.STUDENT, password_hash=h, full_name=r.full_name,
                       student_id=r.student_id, email=r.email, created_at=t) for r, h in zip(rows, hashes))
    return ImportedRoster(len(rows), [(r.username, pw) for r, pw in zip(rows, passwords) if r.password is None])
