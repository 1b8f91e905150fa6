"""The shared rendering cache: each variant's public view (prompt HTML with MathML, options, parts,
the figures shown before submission) rendered once per (item version, seed) and kept in the
database, so that every worker and every app server reads it, and a start is a draw and a few
inserts (issue 14).

A row is never stale: an item version's content never changes (a bank edit makes a new version,
hence a new key), and ``RENDER_FORMAT`` is part of the key, bumped whenever the renderer's output
changes. Rows hold only what a student sees before submission: never the answer key.
Rendering happens outside any transaction; storing is one short insert that ignores rows another
worker stored first.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from ..bank.figures import figures_for
from ..bank.variant import Variant
from ..db import Database
from ..models_rendering import Rendering
from .clock import now

RENDER_FORMAT = 1  # bump when the rendered HTML, MathML or SVG changes: old rows are then ignored
BATCH = 200  # keys per query or insert

Key = tuple[int, int]  # (item version id, seed)


def render(v: Variant) -> dict[str, Any]:
    """What a student sees of a variant before submission (figures drawn only if shown then)."""
    view = v.public()
    if v.model.figures:
        view["figures"] = [f.data() for f in figures_for(v, when="always")]
    return view


def solutions(s: Session, keys: Iterable[Key]) -> dict[Key, str]:
    """The stored explanations (with worked solutions) of these keys, where rendered ahead. Only for
    a view that shows feedback: they give the answer away."""
    wanted = list(dict.fromkeys(keys))
    out: dict[Key, str] = {}
    for k in range(0, len(wanted), BATCH):
        rows = s.execute(select(Rendering.item_version_id, Rendering.seed, Rendering.solution_html).where(
            Rendering.format == RENDER_FORMAT, Rendering.solution_html.is_not(None),
            tuple_(Rendering.item_version_id, Rendering.seed).in_(wanted[k:k + BATCH])))
        out.update({(r.item_version_id, r.seed): r.solution_html for r in rows})
    return out


def lookup(s: Session, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The stored views of these (item version, seed) keys; a key not rendered yet is absent."""
    wanted = list(dict.fromkeys(keys))
    out: dict[Key, dict[str, Any]] = {}
    for k in range(0, len(wanted), BATCH):
        rows = s.execute(select(Rendering.item_version_id, Rendering.seed, Rendering.view).where(
            Rendering.format == RENDER_FORMAT,
            tuple_(Rendering.item_version_id, Rendering.seed).in_(wanted[k:k + BATCH])))
        out.update({(r.item_version_id, r.seed): r.view for r in rows})
    return out


def stored(s: Session, keys: Iterable[Key]) -> set[Key]:
    """Which of these keys the cache holds (reads the keys only, not the views)."""
    wanted = list(dict.fromkeys(keys))
    out: set[Key] = set()
    for k in range(0, len(wanted), BATCH):
        out.update((r.item_version_id, r.seed) for r in s.execute(
            select(Rendering.item_version_id, Rendering.seed).where(
                Rendering.format == RENDER_FORMAT,
                tuple_(Rendering.item_version_id, Rendering.seed).in_(wanted[k:k + BATCH]))))
    return out


def store(db: Database, views: dict[Key, dict[str, Any]], solution: dict[Key, str | None] | None = None) -> None:
    """Keep rendered views and, when rendered ahead, their solutions (one short write per batch); a
    row another worker stored first is kept."""
    items = list(views.items())
    solution = solution or {}
    for k in range(0, len(items), BATCH):
        rows = [{"item_version_id": iv, "seed": seed, "format": RENDER_FORMAT, "view": view,
                 "solution_html": solution.get((iv, seed)), "created_at": now()}
                for (iv, seed), view in items[k:k + BATCH]]
        with db.write() as s:
            s.execute(_insert_ignoring(s).values(rows))


def _insert_ignoring(s: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session's database."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Rendering).on_conflict_do_nothing()
