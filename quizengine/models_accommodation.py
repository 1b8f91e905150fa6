"""Typed ORM models of accommodations (issue 15): a student's or a group's settings per quiz, group
memberships, and the audit trail. Their own module, to keep models.py under the size limit; it
is imported by services/terms.py and by migrations/env.py, so the tables are always registered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class AccommodationMember(Base):
    """A student's accommodation group (at most one, for every quiz): the group's settings cover them."""

    __tablename__ = "accommodation_member"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), index=True)


class Accommodation(Base):
    """A student's or an accommodation group's extra time, attempts and close date for one quiz."""

    __tablename__ = "accommodation"
    __table_args__ = (UniqueConstraint("quiz_id", "user_id"), UniqueConstraint("quiz_id", "group_name"))

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[str] = mapped_column(ForeignKey("quiz.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))  # a student's, or
    group_name: Mapped[str | None] = mapped_column(String(100))  # a group's
    time_multiplier: Mapped[float | None] = mapped_column(Float)  # time limit x this ...
    extra_minutes: Mapped[float | None] = mapped_column(Float)  # ... + these minutes
    extra_attempts: Mapped[int | None]
    closes_at: Mapped[datetime | None]  # an extended close date (never earlier than the class's)
    untimed: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class AccommodationChange(Base):
    """The audit trail of accommodations and group memberships (who, when, old, new, from where)."""

    __tablename__ = "accommodation_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[str | None] = mapped_column(String(100), index=True)  # None for a group membership
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))  # the student, or
    group_name: Mapped[str | None] = mapped_column(String(100))  # the group
    old: Mapped[Any | None]  # the settings (or {"group": name}) before, None when there were none
    new: Mapped[Any | None]
    source: Mapped[str] = mapped_column(String(10))  # page | csv | api
    changed_by: Mapped[int] = mapped_column(ForeignKey("user.id"))
    changed_at: Mapped[datetime]
