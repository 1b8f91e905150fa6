"""What applies to one student at one quiz: the class's window, time limit and attempts, as the
student's accommodation changes them.

An accommodation is set per quiz, for a student or for an accommodation group; a student's own
settings win over their group's, field by field. An accommodation never makes a quiz harder: the
time limit is the class's x multiplier + extra minutes (untimed: none), the attempts the class's +
extra, and the close date the later of the class's and the student's (a quiz that never closes
stays open). The deadline of an attempt is its start + the time limit, or the close date if
sooner; ``refresh_deadlines`` recomputes it for open attempts when an accommodation changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Attempt, AttemptState, Quiz
from ..models_accommodation import Accommodation, AccommodationMember
from .clock import aware, iso


@dataclass(frozen=True)
class Settings:
    """One accommodation's settings; None (or False) where it changes nothing."""

    time_multiplier: float | None = None
    extra_minutes: float | None = None
    extra_attempts: int | None = None
    closes_at: datetime | None = None
    untimed: bool = False

    @classmethod
    def of(cls, row: Accommodation | None) -> Settings:
        if row is None:
            return cls()
        return cls(row.time_multiplier, row.extra_minutes, row.extra_attempts, aware(row.closes_at), bool(row.untimed))

    def is_empty(self) -> bool:
        return self == Settings()

    def over(self, base: Settings) -> Settings:
        """These settings where they are set, ``base``'s elsewhere (a student's over their group's)."""
        mine = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, False)}
        return replace(base, **mine)

    def as_json(self) -> dict[str, Any]:
        return {"time_multiplier": self.time_multiplier, "extra_minutes": self.extra_minutes,
                "extra_attempts": self.extra_attempts, "closes_at": iso(self.closes_at), "untimed": self.untimed}

    def describe(self) -> str:
        """One line for the gradebook and its CSV, e.g. ``time x1.5 and 10 min; 1 extra attempt``."""
        parts = []
        if self.untimed:
            parts.append("untimed")
        elif self.time_multiplier is not None or self.extra_minutes:
            extra = [f"x{self.time_multiplier:g}" if self.time_multiplier is not None else "",
                     f"{self.extra_minutes:g} min" if self.extra_minutes else ""]
            parts.append("time " + " and ".join(e for e in extra if e))
        if self.extra_attempts:
            parts.append(f"{self.extra_attempts} extra attempt{'s' if self.extra_attempts != 1 else ''}")
        if self.closes_at is not None:
            parts.append(f"closes {iso(self.closes_at)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Terms:
    """A quiz's window, time limit and attempts for one student (the class's when not accommodated)."""

    opens_at: datetime | None
    closes_at: datetime | None
    time_limit_s: int | None
    max_attempts: int | None
    settings: Settings
    group: str | None = None  # the student's accommodation group
    time_note: str | None = None  # "extended" or "untimed" when the accommodation changes the time limit
    close_extended: bool = False

    def window(self, t: datetime) -> str:
        """``open``, ``not_open`` (before opens_at) or ``closed``."""
        if self.opens_at and t < self.opens_at:
            return "not_open"
        if self.closes_at and t >= self.closes_at:
            return "closed"
        return "open"

    def deadline(self, started_at: datetime) -> datetime | None:
        """When an attempt started then ends: its time limit, or the close date if sooner."""
        ends = [x for x in (aware(started_at) + timedelta(seconds=self.time_limit_s) if self.time_limit_s else None,
                            self.closes_at) if x]
        return min(ends) if ends else None


def apply(q: Quiz, settings: Settings = Settings(), group: str | None = None) -> Terms:
    """The quiz's terms under ``settings`` (the class's with the default)."""
    limit = q.time_limit_s
    if settings.untimed:
        limit = None
    elif limit:
        limit = round(limit * (settings.time_multiplier or 1.0) + (settings.extra_minutes or 0.0) * 60)
    closes = aware(q.closes_at)
    if closes is not None and settings.closes_at is not None:
        closes = max(closes, settings.closes_at)
    attempts = q.max_attempts + (settings.extra_attempts or 0) if q.max_attempts is not None else None
    note = None if limit == q.time_limit_s else "untimed" if limit is None else "extended"
    return Terms(aware(q.opens_at), closes, limit, attempts, settings, group, note,
                 closes != aware(q.closes_at))


def group_of(s: Session, user_id: int) -> str | None:
    return s.scalar(select(AccommodationMember.group_name).where(AccommodationMember.user_id == user_id))


def terms_for(s: Session, q: Quiz, user_id: int) -> Terms:
    """The quiz's terms for one student: their own accommodation over their group's."""
    group = group_of(s, user_id)
    whose = Accommodation.user_id == user_id
    if group is not None:
        whose = whose | (Accommodation.group_name == group)
    return terms_of(q, s.scalars(select(Accommodation).where(Accommodation.quiz_id == q.id, whose)), user_id, group)


def terms_of(q: Any, rows: Iterable[Any], user_id: int, group: str | None) -> Terms:
    """The quiz's terms for one student from the accommodations of the student and of their group
    (``rows``: anything with Accommodation's fields)."""
    mine = theirs = None
    for row in rows:
        if row.user_id == user_id:
            mine = row
        else:
            theirs = row
    return apply(q, Settings.of(mine).over(Settings.of(theirs)), group)


def terms_by_user(s: Session, q: Quiz, user_ids: Iterable[int]) -> dict[int, Terms]:
    """The quiz's terms for many students (the gradebook's rows), in two queries."""
    ids = list(user_ids)
    groups = dict(s.execute(select(AccommodationMember.user_id, AccommodationMember.group_name)
                            .where(AccommodationMember.user_id.in_(ids))).all()) if ids else {}
    own, by_group = {}, {}
    for row in s.scalars(select(Accommodation).where(Accommodation.quiz_id == q.id)):
        if row.user_id is not None:
            own[row.user_id] = Settings.of(row)
        else:
            by_group[row.group_name] = Settings.of(row)
    return {u: apply(q, own.get(u, Settings()).over(by_group.get(groups.get(u), Settings())), groups.get(u))
            for u in ids}


def last_close(s: Session, q: Quiz) -> datetime | None:
    """When the last student's window closes (feedback "after_close" waits for it, so that a student
    with an extended close date can't be told the key by a classmate); None if the quiz never closes."""
    if q.closes_at is None:
        return None
    latest = s.scalar(select(func.max(Accommodation.closes_at)).where(Accommodation.quiz_id == q.id))
    return max(aware(q.closes_at), aware(latest)) if latest is not None else aware(q.closes_at)


def refresh_deadlines(s: Session, quiz_id: str | None, user_ids: Iterable[int] | None) -> int:
    """Give the open attempts of these students (every student with None) at this quiz (every quiz
    with None) the deadline their terms give now; how many changed. The expiry sweep reads
    Attempt.expires_at, so an attempt started before a change ends at the new deadline."""
    stmt = select(Attempt).where(Attempt.state == AttemptState.OPEN)
    if quiz_id is not None:
        stmt = stmt.where(Attempt.quiz_id == quiz_id)
    if user_ids is not None:
        stmt = stmt.where(Attempt.user_id.in_(list(user_ids)))
    changed = 0
    for a in s.scalars(stmt.with_for_update()):
        deadline = terms_for(s, s.get(Quiz, a.quiz_id), a.user_id).deadline(a.started_at)
        if aware(a.expires_at) != deadline:
            a.expires_at = deadline
            changed += 1
    s.flush()
    return changed
