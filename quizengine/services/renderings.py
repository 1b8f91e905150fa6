"""The shared rendering cache: each variant's public view (prompt HTML with MathML, options, parts,
the figures shown before submission) rendered once per (item version, seed) and kept in the
database, so that every worker and every app server reads it, and a start is a draw and a few
inserts (issue 14).

A row is never stale: an item version's content never changes (a bank edit makes a new version,
hence a new key), and ``RENDER_FORMAT`` is part of the key, bumped whenever the renderer's output
changes. The views hold only what a student sees before submission: never the answer key.
Rendering happens outside any transaction; storing is one short insert that ignores rows another
worker stored first.

The figures a question shows only after submission (an optimizer's path: it gives the key away)
are rendered ahead too, into rows of their own (``AFTER_FORMAT``, view ``{"figures": [...]}``) that
a start never reads: the results then need no drawing, so no drawing process runs during a class.
Each variant's grading key (a numeric item's answer, shape and mistakes' values) is kept likewise
(``KEY_FORMAT``, view ``{"key": ...}``), read only by grading: a submit then reads its keys with its
questions instead of building twenty variants (most of a submit's CPU, issue 14).
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from ..bank.figures import build, figures_for
from ..bank.variant import Variant
from ..db import Database, dialect_insert
from ..models_rendering import Rendering
from .clock import now

RENDER_FORMAT = 2  # bump when the rendered HTML, MathML or SVG changes: old rows are then ignored
AFTER_FORMAT = -RENDER_FORMAT  # the rows of the figures shown only after submission (read with the feedback)
# The rows of each variant's grading key (``ItemType.key_of``; view ``{"key": ...}``), read only by
# grading (services/attempt_rows): a submit then grades without building the variant. Bump it, as
# RENDER_FORMAT for the explanations (which show the answer too), when a type's key or a calculator's
# answers change: rows of other formats are then ignored, and pruned.
KEY_FORMAT = 1001
BATCH = 200  # keys per query or insert

Key = tuple[int, int]  # (item version id, seed)


def render(v: Variant) -> dict[str, Any]:
    """What a student sees of a variant before submission (figures drawn only if shown then)."""
    view = v.public()
    if v.model.figures:
        view["figures"] = [f.data() for f in figures_for(v, when="always")]
    return view


def after_figures(v: Variant) -> list[dict[str, Any]] | None:
    """The variant's figures shown only after submission, drawn now (not kept in this process's figure
    cache: they are for the shared one); None when it has none."""
    if not any(f.when != "always" for f in v.model.figures):
        return None
    return [f.data() for f in build(v, when="after_submission")]


def figures_after(s: Session, keys: Iterable[Key]) -> dict[Key, list[dict[str, Any]]]:
    """The stored after-submission figures of these keys, where rendered ahead (they give the answer away:
    only for a view that shows feedback)."""
    wanted = list(dict.fromkeys(keys))
    out: dict[Key, list[dict[str, Any]]] = {}
    for k in range(0, len(wanted), BATCH):
        rows = s.execute(select(Rendering.item_version_id, Rendering.seed, Rendering.view).where(
            Rendering.format == AFTER_FORMAT,
            tuple_(Rendering.item_version_id, Rendering.seed).in_(wanted[k:k + BATCH])))
        out.update({(r.item_version_id, r.seed): r.view["figures"] for r in rows})
    return out


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


def store(db: Database, views: dict[Key, dict[str, Any]], solution: dict[Key, str | None] | None = None,
          after: dict[Key, list[dict[str, Any]]] | None = None, keys: dict[Key, dict[str, Any]] | None = None) -> None:
    """Keep rendered views and, when rendered ahead, their solutions, after-submission figures and
    grading keys (one short write per batch); a row another worker stored first is kept."""
    solution = solution or {}
    rows = [{"item_version_id": iv, "seed": seed, "format": RENDER_FORMAT, "view": view,
             "solution_html": solution.get((iv, seed)), "created_at": now()} for (iv, seed), view in views.items()]
    rows += [{"item_version_id": iv, "seed": seed, "format": AFTER_FORMAT, "view": {"figures": figs},
              "solution_html": None, "created_at": now()} for (iv, seed), figs in (after or {}).items()]
    rows += [{"item_version_id": iv, "seed": seed, "format": KEY_FORMAT, "view": {"key": key},
              "solution_html": None, "created_at": now()} for (iv, seed), key in (keys or {}).items()]
    for k in range(0, len(rows), BATCH):
        with db.write() as s:
            s.execute(_insert_ignoring(s).values(rows[k:k + BATCH]))


def prune(db: Database) -> int:
    """Delete the rows of earlier formats (stored before ``RENDER_FORMAT`` was bumped: never read again),
    a batch per short write; return how many went. Run when the banks are loaded, before serving."""
    keep = (RENDER_FORMAT, -RENDER_FORMAT, KEY_FORMAT)
    key = tuple_(Rendering.item_version_id, Rendering.seed, Rendering.format)
    gone = 0
    while True:
        with db.write() as s:
            old = select(Rendering.item_version_id, Rendering.seed, Rendering.format).where(
                Rendering.format.not_in(keep)).limit(BATCH * 10)
            n = s.execute(delete(Rendering).where(key.in_(old))).rowcount
        gone += n
        if n < BATCH * 10:
            return gone


def _insert_ignoring(s: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session's database."""
    return dialect_insert(s.get_bind().dialect.name)(Rendering).on_conflict_do_nothing()
