"""Time: every stored time is UTC; SQLite hands datetimes back naive."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(d: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return d if d is None or d.tzinfo else d.replace(tzinfo=timezone.utc)


def iso(d: datetime | None) -> str | None:
    return None if d is None else aware(d).isoformat()
