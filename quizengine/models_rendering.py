"""The shared rendering cache (issue 14): what a student sees of one item version under one seed,
rendered once and read by every worker and every app server. Its own module, to keep models.py
under the size limit; imported by services/renderings.py and by migrations/env.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class Rendering(Base):
    """One variant's public view (prompt HTML, options, parts, the figures shown before submission).

    Keyed by (item version, seed, renderer format): an item version's content never changes, so a row
    is never stale; a bank edit makes a new item version (a new key), and a change to the renderer's
    output bumps ``RENDER_FORMAT`` (services/renderings.py). A view (``RENDER_FORMAT``) holds nothing of
    the answer key; ``solution_html`` (the explanation and worked solution) is read only once feedback
    is shown; the rows of other formats (the figures shown after submission, the grading keys) are read
    only with the feedback or by grading."""

    __tablename__ = "rendering"

    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_version.id", ondelete="CASCADE"), primary_key=True)
    seed: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    format: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    view: Mapped[dict[str, Any]]  # Variant.public() plus "figures": the figures shown before submission
    solution_html: Mapped[str | None] = mapped_column(Text)  # rendered ahead only (None: render when shown)
    created_at: Mapped[datetime]


class StartPlan(Base):
    """A student's next attempt at a quiz, drawn and rendered ahead (services/plans.py): what the start
    writes (``rows``) and the JSON of the questions it answers with (``questions``), so that a start
    is a read of one row and the attempt's write, with no draw and no views read.

    ``basis`` names everything the draw depended on (the banks' items and the quiz, the items the
    student met before, the server secret, the renderer's format): a start uses the plan only when
    the basis it computes now is the same, else it draws as always. A start deletes the plan it used."""

    __tablename__ = "start_plan"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    quiz_id: Mapped[str] = mapped_column(String(100), ForeignKey("quiz.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    basis: Mapped[str] = mapped_column(Text)
    rows: Mapped[str] = mapped_column(Text)  # JSON: [[slot, item version id, seed, points], ...]
    questions: Mapped[str] = mapped_column(Text)  # JSON: the fresh attempt view's "questions"
    created_at: Mapped[datetime]
