"""Load the banks into the database as versioned item snapshots, and rebuild items from them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..bank.catalog import ITEM_ADAPTER, BankItem, Catalog, load_catalog
from ..bank.loader import Document
from ..bank.variant import Variant, make_variant
from ..models import CurrentItem, ItemVersion, Quiz
from .clock import aware, now
from .savecheck import remember


class BankLoadError(RuntimeError):
    """The banks have errors; nothing was loaded."""


@dataclass
class SyncReport:
    items: int
    new_versions: int
    quizzes: int


def sync_catalog(s: Session, cat: Catalog) -> SyncReport:
    """Store every item version and quiz of the catalog; mark the versions the banks hold now."""
    if cat.errors:
        raise BankLoadError(f"{len(cat.errors)} errors in the banks; first: {cat.errors[0]} (run quizengine validate)")
    t = now()
    existing = {(iv.item_id, iv.version): iv for iv in s.scalars(select(ItemVersion))}
    current = {c.item_id: c for c in s.scalars(select(CurrentItem))}
    new, changed = 0, False  # changed: the current items differ from before (every quiz's draw may change)
    for bi in cat.items.values():
        iv = existing.get((bi.id, bi.version))
        if iv is None:
            iv = ItemVersion(item_id=bi.id, version=bi.version, topic=bi.topic, type=bi.model.type, data=bi.raw,
                             bank_source=bi.bank_source, created_at=t)
            s.add(iv)
            s.flush()
            new += 1
        row = current.pop(bi.id, None)
        if row is None:
            s.add(CurrentItem(item_id=bi.id, item_version_id=iv.id, topic=bi.topic, tags=list(bi.model.tags)))
            changed = True
        elif (row.item_version_id, row.topic, list(row.tags or [])) != (iv.id, bi.topic, list(bi.model.tags)):
            row.item_version_id, row.topic, row.tags = iv.id, bi.topic, list(bi.model.tags)
            changed = True
    for gone in current.values():  # items removed from the banks: old attempts keep their versions
        s.delete(gone)
        changed = True
    for qd in cat.quizzes.values():
        q = qd.model
        row = s.get(Quiz, q.id)
        definition = q.model_dump(mode="json")
        fields = dict(title=q.title, description=q.description or "", definition=definition,
                      score_policy=q.score_policy, feedback=q.feedback)
        # The course's schedule: from the YAML until an instructor sets it in the app.
        schedule = dict(opens_at=q.opens_at, closes_at=q.closes_at, max_attempts=q.max_attempts,
                        time_limit_s=int(q.time_limit_min * 60) if q.time_limit_min else None)
        if row is None:
            s.add(Quiz(id=q.id, dates_locked=False, updated_at=t, **fields, **schedule))
        else:
            kept = (row.definition or {}).get("repeats") if row.dates_locked else None  # set in the app
            if kept is not None:
                fields["definition"] = {**definition, "repeats": kept}
            if not row.dates_locked:
                fields.update(schedule)
            # The load's time stamps a quiz (draw.STAMP) only when it or the items changed: a load of the
            # same banks (every `serve` start) keeps the draws planned ahead (services/plans.py) valid.
            if changed or any(not _same(getattr(row, k), v) for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(row, k, v)
                row.updated_at = t
    return SyncReport(items=len(cat.items), new_versions=new, quizzes=len(cat.quizzes))


def _same(old: object, new: object) -> bool:
    """Equal as stored: a datetime read back from SQLite has lost its zone (``clock.aware``)."""
    if isinstance(old, datetime) and isinstance(new, datetime):
        return aware(old) == aware(new)
    return old == new


def load_banks(s: Session, path: Path) -> SyncReport:
    """Validate-load the banks folder and sync it; raise BankLoadError when it has errors."""
    return sync_catalog(s, load_catalog([path]))


_ITEMS: dict[tuple[str, str], BankItem] = {}
_VARIANTS: OrderedDict[tuple[str, str, int], Variant] = OrderedDict()
# Built variants kept per worker. A class's saves check the save views (savecheck.py), not these; 2048
# held about 11 MiB more per worker than 512 under load.py's PostgreSQL class (RSS sum 308 -> 285 MiB).
_VARIANT_CACHE_SIZE = 512
_LOCK = threading.Lock()


def bank_item(iv: ItemVersion) -> BankItem:
    """Rebuild the item of a stored version; cached by (item id, content hash), which never change."""
    key = (iv.item_id, iv.version)
    item = _ITEMS.get(key)
    if item is None:
        model = ITEM_ADAPTER.validate_python(iv.data)
        item = BankItem(model=model, topic=iv.topic, path="<database>", doc=Document("<database>", iv.data), index=0,
                        raw=iv.data, version=iv.version, bank_source=iv.bank_source)
        _ITEMS[key] = item
    return item


def cached_item(item_id: str, version: str) -> BankItem | None:
    return _ITEMS.get((item_id, version))


def cached(item_id: str, version: str, seed: int) -> Variant | None:
    """The variant if this process has built it already, else None."""
    with _LOCK:
        return _VARIANTS.get((item_id, version, seed))


def variant_of(iv: ItemVersion, seed: int) -> Variant:
    """The variant of a stored item version for a seed (an LRU cache per process)."""
    return variant_of_item(iv.item_id, bank_item(iv), seed)


def variant_of_item(item_id: str, item: BankItem, seed: int) -> Variant:
    """The variant of an item (from ``bank_item`` or ``cached_item``) for a seed, through the same cache."""
    key = (item_id, item.version, seed)
    with _LOCK:
        v = _VARIANTS.get(key)
        if v is not None:
            _VARIANTS.move_to_end(key)
            return v
    v = make_variant(item, seed)
    remember(item_id, v)  # what a save checks, kept for a whole class (services/savecheck.py)
    with _LOCK:
        _VARIANTS[key] = v
        if len(_VARIANTS) > _VARIANT_CACHE_SIZE:
            _VARIANTS.popitem(last=False)
    return v


def cached_variant(s: Session, item_version_id: int, item_id: str, version: str, seed: int) -> Variant:
    """The variant from the process cache, loading the item version only when this process has not
    rebuilt its item yet (``bank_item``'s cache: then only the variant for this seed is built)."""
    v = cached(item_id, version, seed)
    if v is not None:
        return v
    item = cached_item(item_id, version)
    if item is not None:
        return variant_of_item(item_id, item, seed)
    return variant_of(s.get(ItemVersion, item_version_id), seed)
