"""The shared rendering cache (issue 14): what a student sees of one item version under one seed,
rendered once and read by every worker and every app server. Its own module, to keep models.py
under the size limit; imported by services/renderings.py and by migrations/env.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class Rendering(Base):
    """One variant's public view (prompt HTML, options, parts, the figures shown before submission).

    Keyed by (item version, seed, renderer format): an item version's content never changes, so a row
    is never stale; a bank edit makes a new item version (a new key), and a change to the renderer's
    output bumps ``RENDER_FORMAT`` (services/renderings.py). ``view`` holds nothing of the answer key;
    ``solution_html`` (the explanation and worked solution) is read only once feedback is shown."""

    __tablename__ = "rendering"

    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_version.id", ondelete="CASCADE"), primary_key=True)
    seed: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    format: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    view: Mapped[dict[str, Any]]  # Variant.public() plus "figures": the figures shown before submission
    solution_html: Mapped[str | None] = mapped_column(Text)  # rendered ahead only (None: render when shown)
    created_at: Mapped[datetime]
