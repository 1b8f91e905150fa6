"""Setting accommodations: a student's or a group's settings for one quiz, group memberships, and
the audit trail of every change (the CSV import and export are in accommodation_csv.py).

What an accommodation does to a quiz is in terms.py. Every change here is audited (who, when, the
settings before and after, and from where: the page, a CSV import or the API) and moves the
deadline of the open attempts it touches.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Role, User
from ..models_accommodation import Accommodation, AccommodationChange, AccommodationMember
from .clock import aware, now
from .errors import ServiceError
from .principal import Principal
from .quizzes import YEARS, get_quiz
from .terms import Settings, Terms, group_of, refresh_deadlines, terms_by_user

GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")  # as accounts.USERNAME
SETTING_FIELDS = ("time_multiplier", "extra_minutes", "extra_attempts", "closes_at", "untimed")
MAX_MULTIPLIER = 10.0
MAX_EXTRA_MINUTES = 7 * 24 * 60
MAX_EXTRA_ATTEMPTS = 100
KEEP = object()  # set_student: leave the student's group as it is
TRUE, FALSE = ("1", "true", "yes", "y"), ("", "0", "false", "no", "n")


class AccommodationError(ServiceError):
    """400: bad accommodation data; the message names the field (and the CSV line) and the bounds."""

    def __init__(self, message: str):
        super().__init__(400, message)


def _number(name: str, raw: Any, low: float, high: float, integer: bool = False) -> float | int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise AccommodationError(f"{name}: give a number from {low:g} to {high:g}, or nothing")
    try:
        value = float(raw.strip()[:40]) if isinstance(raw, str) else float(raw)
    except (ValueError, OverflowError):
        raise AccommodationError(f"{name}: {str(raw)[:40]!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise AccommodationError(f"{name}: give {kind} from {low:g} to {high:g}, or nothing")
    return int(value) if integer else value


def _date(raw: Any, timezone: str) -> datetime | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise AccommodationError("closes_at: give a date and time like 2026-12-04T09:00, or nothing")
    try:
        d = datetime.fromisoformat(raw.strip()[:40])
    except ValueError:
        raise AccommodationError("closes_at: give a date and time like 2026-12-04T09:00 (course time zone) "
                                 "or with an offset, or nothing") from None
    if not YEARS[0] <= d.year <= YEARS[1]:
        raise AccommodationError(f"closes_at: give a year from {YEARS[0]} to {YEARS[1]}")
    return aware(d) if d.tzinfo else d.replace(tzinfo=ZoneInfo(timezone))


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool) or raw is None:
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in TRUE + FALSE:
        return raw.strip().lower() in TRUE
    raise AccommodationError("untimed: give yes or no (true/false, 1/0)")


def parse_settings(values: Mapping[str, Any], timezone: str) -> Settings:
    """Settings from a form, a CSV row or a JSON body (text or JSON values; missing means none)."""
    return Settings(
        time_multiplier=_number("time_multiplier", values.get("time_multiplier"), 1.0, MAX_MULTIPLIER),
        extra_minutes=_number("extra_minutes", values.get("extra_minutes"), 0.0, MAX_EXTRA_MINUTES),
        extra_attempts=_number("extra_attempts", values.get("extra_attempts"), 0, MAX_EXTRA_ATTEMPTS, integer=True),
        closes_at=_date(values.get("closes_at"), timezone),
        untimed=_flag(values.get("untimed")))


JSON_TYPES = {"time_multiplier": (int, float), "extra_minutes": (int, float), "extra_attempts": (int,),
              "closes_at": (str,), "untimed": (bool,)}


def parse_body(data: Mapping[str, Any], timezone: str, allow_group: bool) -> tuple[Settings, Any]:
    """Settings (and a student's ``group``: KEEP when absent) from an API body of JSON values."""
    known = set(SETTING_FIELDS) | ({"group"} if allow_group else set())
    unknown = sorted(set(data) - known)
    if unknown:
        raise AccommodationError(f"unknown fields: {', '.join(unknown)[:200]} (use {', '.join(sorted(known))})")
    for name, types in JSON_TYPES.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            kind = {"closes_at": "a date-time string", "untimed": "true or false",
                    "extra_attempts": "an integer"}.get(name, "a number")
            raise AccommodationError(f"{name}: give {kind} or null")
    group = data.get("group", KEEP)
    if group is not KEEP and group is not None and not isinstance(group, str):
        raise AccommodationError("group: give a group name or null")
    return parse_settings(data, timezone), group


def check_group(name: str) -> str:
    if not GROUP.match(name or ""):
        raise AccommodationError(f"group {name[:100]!r}: use letters, digits and . _ - (up to 100, "
                                 "starting with a letter or digit)")
    return name


def find_student(s: Session, username: str) -> User:
    """The student, or 404."""
    user = s.scalar(select(User).where(User.username == username)) if USERNAME.match(username or "") else None
    if user is None or user.role != Role.STUDENT:
        raise ServiceError(404, f"no student {username[:100]!r}")
    return user


# ---------------------------------------------------------------- changes, each audited

def _audit(s: Session, quiz_id: str | None, user_id: int | None, group: str | None, old: Any, new: Any,
           source: str, actor: Principal, t: datetime) -> None:
    if old != new:
        s.add(AccommodationChange(quiz_id=quiz_id, user_id=user_id, group_name=group, old=old, new=new,
                                  source=source, changed_by=actor.id, changed_at=t))


def _store(s: Session, quiz_id: str, row: Accommodation | None, settings: Settings, t: datetime,
           **subject: Any) -> tuple[Any, Any]:
    """Write (or delete, when empty) one accommodation row; its settings before and after, as JSON."""
    old = None if row is None else Settings.of(row).as_json()
    if settings.is_empty():
        if row is not None:
            s.delete(row)
        return old, None
    if row is None:
        row = Accommodation(quiz_id=quiz_id, **subject)
        s.add(row)
    for name in SETTING_FIELDS:
        setattr(row, name, getattr(settings, name))
    row.updated_at = t
    return old, settings.as_json()


def set_membership(s: Session, user: User, group: str | None, actor: Principal, source: str,
                   t: datetime | None = None) -> None:
    """Put a student in an accommodation group (for every quiz), or in none; audited."""
    t = t or now()
    member = s.get(AccommodationMember, user.id)
    old = None if member is None else member.group_name
    if group is None and member is not None:
        s.delete(member)
    elif group is not None:
        if member is None:
            s.add(AccommodationMember(user_id=user.id, group_name=check_group(group)))
        else:
            member.group_name = check_group(group)
    _audit(s, None, user.id, None, None if old is None else {"group": old},
           None if group is None else {"group": group}, source, actor, t)
    s.flush()
    if old != group:
        refresh_deadlines(s, None, [user.id])


def set_student(s: Session, quiz_id: str, username: str, settings: Settings, actor: Principal, source: str,
                group: Any = KEEP, t: datetime | None = None) -> None:
    """Set a student's own accommodation at a quiz (empty settings remove it), and with ``group`` their
    group; audited; the student's open attempt gets its new deadline."""
    t = t or now()
    get_quiz(s, quiz_id)
    user = find_student(s, username)
    row = s.scalar(select(Accommodation).where(Accommodation.quiz_id == quiz_id, Accommodation.user_id == user.id))
    old, new = _store(s, quiz_id, row, settings, t, user_id=user.id)
    _audit(s, quiz_id, user.id, None, old, new, source, actor, t)
    if group is not KEEP:
        set_membership(s, user, group, actor, source, t)
    s.flush()
    refresh_deadlines(s, quiz_id, [user.id])


def set_group(s: Session, quiz_id: str, group: str, settings: Settings, actor: Principal, source: str,
              t: datetime | None = None) -> None:
    """Set an accommodation group's settings at a quiz (empty settings remove them); audited; the
    members' open attempts get their new deadlines."""
    t = t or now()
    get_quiz(s, quiz_id)
    check_group(group)
    row = s.scalar(select(Accommodation).where(Accommodation.quiz_id == quiz_id, Accommodation.group_name == group))
    old, new = _store(s, quiz_id, row, settings, t, group_name=group)
    _audit(s, quiz_id, None, group, old, new, source, actor, t)
    s.flush()
    refresh_deadlines(s, quiz_id, members(s, group))


def set_row(s: Session, quiz_id: str, username: str, group: str, settings: Settings, actor: Principal,
            source: str, t: datetime | None = None, has_group: bool = True) -> str:
    """One row as the CSV and the page give it: with a username, the student's own settings and (when
    ``has_group``) their group, empty for none; with only a group, the group's settings. Who it was."""
    if username:
        set_student(s, quiz_id, username, settings, actor, source, (group or None) if has_group else KEEP, t)
        return username
    if group:
        set_group(s, quiz_id, group, settings, actor, source, t)
        return f"group {group}"
    raise AccommodationError("give a username (a student's accommodation) or a group (a group's)")


def members(s: Session, group: str) -> list[int]:
    return list(s.scalars(select(AccommodationMember.user_id).where(AccommodationMember.group_name == group)))


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Entry:
    """One line of a quiz's accommodations: a student (own settings, group, terms) or a group."""

    username: str | None
    group: str | None
    settings: Settings
    terms: Terms | None = None  # what applies to the student, group included
    full_name: str = ""

    def as_json(self) -> dict[str, Any]:
        out = {"username": self.username, "group": self.group, **self.settings.as_json()}
        if self.terms is not None:
            out["effective"] = {"time_limit_s": self.terms.time_limit_s, "max_attempts": self.terms.max_attempts,
                                "closes_at": self.terms.closes_at.isoformat() if self.terms.closes_at else None}
        return out


def entries(s: Session, quiz_id: str) -> list[Entry]:
    """The quiz's group settings, then every student with an accommodation or a group, by name."""
    q = get_quiz(s, quiz_id)
    rows = list(s.scalars(select(Accommodation).where(Accommodation.quiz_id == quiz_id)))
    groups = sorted((r for r in rows if r.group_name is not None), key=lambda r: r.group_name)
    own = {r.user_id: Settings.of(r) for r in rows if r.user_id is not None}
    member_ids = set(s.scalars(select(AccommodationMember.user_id)))
    students = list(s.scalars(select(User).where(User.id.in_(set(own) | member_ids)).order_by(User.username)))
    terms = terms_by_user(s, q, [u.id for u in students])
    return [Entry(None, r.group_name, Settings.of(r)) for r in groups] + [
        Entry(u.username, terms[u.id].group, own.get(u.id, Settings()), terms[u.id], u.full_name) for u in students]


def student_entry(s: Session, quiz_id: str, username: str) -> Entry:
    q = get_quiz(s, quiz_id)
    user = find_student(s, username)
    row = s.scalar(select(Accommodation).where(Accommodation.quiz_id == quiz_id, Accommodation.user_id == user.id))
    return Entry(user.username, group_of(s, user.id), Settings.of(row), terms_by_user(s, q, [user.id])[user.id],
                 user.full_name)


def group_entry(s: Session, quiz_id: str, group: str) -> Entry:
    get_quiz(s, quiz_id)
    check_group(group)
    row = s.scalar(select(Accommodation).where(Accommodation.quiz_id == quiz_id, Accommodation.group_name == group))
    return Entry(None, group, Settings.of(row))


@dataclass(frozen=True)
class Change:
    """An audit row as the page shows it."""

    at: datetime
    by: str
    quiz_id: str | None
    subject: str  # a username, or "group NAME"
    old: Any
    new: Any
    source: str


def trail(s: Session, quiz_id: str, limit: int = 200) -> list[Change]:
    """The latest changes of this quiz's accommodations and of group memberships, newest first."""
    names = dict(s.execute(select(User.id, User.username)).all())
    rows = s.scalars(select(AccommodationChange)
                     .where((AccommodationChange.quiz_id == quiz_id) | AccommodationChange.quiz_id.is_(None))
                     .order_by(AccommodationChange.id.desc()).limit(limit))
    return [Change(aware(c.changed_at), names.get(c.changed_by, "?"), c.quiz_id,
                   names.get(c.user_id, "?") if c.user_id is not None else f"group {c.group_name}",
                   c.old, c.new, c.source) for c in rows]


def settings_form(settings: Settings, timezone: str) -> dict[str, str]:
    """Settings as the page's form fields (dates in the course time zone, as datetime-local wants)."""
    d = settings.closes_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M") if settings.closes_at else ""
    return {"time_multiplier": "" if settings.time_multiplier is None else f"{settings.time_multiplier:g}",
            "extra_minutes": "" if settings.extra_minutes is None else f"{settings.extra_minutes:g}",
            "extra_attempts": "" if settings.extra_attempts is None else str(settings.extra_attempts),
            "closes_at": d, "untimed": "yes" if settings.untimed else ""}

