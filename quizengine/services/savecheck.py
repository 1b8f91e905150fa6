"""What an autosave checks an answer against, kept for every question of a class.

A save checks the answer against its question's variant (``bank.types.check_response``), but reads
only its type and a few ids or shapes: the choice, term and entry ids, the numeric answer's shape,
the parts' ids and shapes. The full variant (its prompt, its calculation, its buggy answers) is kept
in an LRU of 2,048 per process (services/banks.py), fewer than a class's 300 students x 20 questions,
so a save rotating over a class would rebuild it (about 1 ms). This keeps the variant's save view
(``ItemType.save_view``: a stand-in holding only what the checks read) instead, for every variant
the process has built: one per item version when no seed changes it (no params, derived values or
calculation: the ids are positions and the shapes the bank's), else one per seed, the identical
views shared (a class's 6,000 seeds are a few distinct views). Checking a response against the view
gives exactly what checking it against the variant gives (tests/bank/test_save_view.py).

A process that has not built the variant (the other worker, a question rendered ahead by `quizengine
warm`) takes the view from the question's rendering in the shared cache (``ItemType.view_from_public``:
the ids and shapes a student was shown), a read instead of a build (services/quicksave.py).
"""

from __future__ import annotations

import threading

from ..bank.core import Variant
from ..bank.loader import BankItem
from ..bank.schema import Calculated

SEEDED_MAX = 32_768  # seeds kept (a 1,000-student class on 20 questions: 20,000; about 80 bytes each)
VIEWS_MAX = 4096  # distinct views shared

_STATIC: dict[tuple[str, str], Variant] = {}  # (item id, version) -> its view, for items no seed changes
_SEEDED: dict[tuple[str, str], dict[int, Variant]] = {}  # (item id, version) -> seed -> view
_VIEWS: dict[tuple[str, str], Variant] = {}  # (type, the view's payload) -> the one shared view
_LOCK = threading.Lock()
_seeded = 0


def seed_free(item: BankItem) -> bool:
    """No seed changes what a save checks: nothing is drawn or calculated per variant (shuffles only
    reorder texts behind positional ids)."""
    m = item.model
    return not (isinstance(m, Calculated) and (m.params or m.derived or m.calc))


def save_view(item_id: str, version: str, seed: int) -> Variant | None:
    """The save view of a variant this process has built, else None."""
    key = (item_id, version)
    view = _STATIC.get(key)
    if view is None:
        seeds = _SEEDED.get(key)
        if seeds is not None:
            view = seeds.get(seed)
    return view


def remember(item_id: str, variant: Variant) -> Variant:
    """Keep the save view of a variant just built (or found); return it."""
    return keep(item_id, variant.item.version, variant.seed, variant.kind.save_view(variant), seed_free(variant.item))


def keep(item_id: str, version: str, seed: int, view: Variant, static: bool = False) -> Variant:
    """Keep ``view`` as the save view of (item id, version, seed); ``static``: of every seed. Returns
    the one shared view equal to it."""
    global _seeded
    shared = (view.kind.name, repr(view.payload))
    key = (item_id, version)
    with _LOCK:
        if len(_VIEWS) >= VIEWS_MAX:
            _VIEWS.clear()
        view = _VIEWS.setdefault(shared, view)
        if static:
            _STATIC[key] = view
            return view
        if _seeded >= SEEDED_MAX:
            _SEEDED.clear()
            _seeded = 0
        seeds = _SEEDED.setdefault(key, {})
        if seed not in seeds:
            _seeded += 1
        seeds[seed] = view
    return view


def forget() -> None:
    """Drop every view (tests)."""
    global _seeded
    with _LOCK:
        _STATIC.clear()
        _SEEDED.clear()
        _VIEWS.clear()
        _seeded = 0
