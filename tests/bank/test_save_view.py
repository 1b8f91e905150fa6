"""An autosave checks answers against a variant's save view (ItemType.save_view, kept per class by
services/savecheck.py): it must accept, note and refuse exactly what the full variant does, on every
shipped item and on bad inputs."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.core import VariantError
from quizengine.bank.types import MAX_RESPONSE_BYTES, ResponseRefused, check_response
from quizengine.bank.variant import make_variant
from quizengine.services import savecheck
from quizengine.services.attempts import check_value
from quizengine.services.errors import ServiceError

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (0, 7, 123456789)

ODD = ["", " ", "c1 ", "C1", "c0", "c99", "ｃ1", "c\u200b1", "c1\u0000", "\u202ec1", "١٢٣", "1e999999", "-0", "NaN",
       "inf", "1,5", "abc", "9" * 5000, "1" + "0" * 400, "0x1F", "1_000", "٣.١٤", "²", "x" * (MAX_RESPONSE_BYTES + 10),
       "é" * (MAX_RESPONSE_BYTES // 2 + 1)]
SCALARS = [True, False, 0, 1, -1, 1.5, 10**400, -(10**400), 1e308, 2**63, 5e-324, *ODD]


def ids(v) -> list[str]:
    """Every id the variant shows (choices, terms and options, entries, parts)."""
    p = v.payload
    found = []
    for attr in ("choices", "lefts", "rights", "options"):
        found += [o.id for o in getattr(p, attr, None) or []]
    found += [k.part.id for k in getattr(p, "parts", None) or []]
    return found


def responses(v) -> list:
    """The right answer, the public ids in every arrangement a save might send, and bad inputs."""
    own = ids(v)
    values = [v.answer, own, own[::-1], own[:1], own + own[:1], own + ["zz"], [own], {}, [], [[]], [[1, 2], [3]],
              [1, 2], [[1, 2], [3, 4]], [1, "2", "x"], [[1e999 if False else 1, "a"]], {"a": 1}, {"x": "y"},
              {o: o for o in own}, {o: "1.5" for o in own}, {o: [1, 2] for o in own}, {o: None for o in own},
              {o: "9" * 5000 for o in own}, {o: 10**400 for o in own}, {o: "abc" for o in own}, {o: True for o in own},
              {o: "r1" for o in own if o.startswith("l")}, {"l1": "r99"}, {"l99": "r1"}, {"l1": 1},
              [o.upper() for o in own], ["c1"] * 3, ["c1", "c2"], ["o1"] * len(own), *SCALARS, *([x] for x in SCALARS)]
    if isinstance(v.answer, dict):
        values += [{k: "abc" for k in v.answer}, {**v.answer, "zz": 1}, {k: [x] for k, x in v.answer.items()},
                   {k: str(x) for k, x in v.answer.items()}, {k: "1e999999" for k in v.answer}]
    if isinstance(v.answer, list):
        values += [v.answer[:-1], v.answer + v.answer[:1], [str(x) for x in v.answer], [v.answer], v.answer[::-1]]
    return values


def outcome(v, value):
    """What a save makes of the value: its checks (check_value, then the variant's), as the fast lane runs them."""
    try:
        check_value(value)
    except ServiceError as e:
        return "refused", e.status, str(e)
    try:
        return "note", check_response(v, value)
    except ResponseRefused as e:
        return "refused", e.status, str(e)


def variants():
    for folder in (ROOT / "banks", ROOT / "tests" / "data" / "sample"):
        cat = load_catalog([folder])
        assert not cat.errors
        for item in cat.items.values():
            for seed in SEEDS:
                try:
                    yield item, make_variant(item, seed)
                except VariantError:
                    continue


@cache
def shipped() -> list:
    """Every item of the shipped and sample banks at each seed, made once, when a test first needs
    them (not at collection, which every pytest-xdist worker repeats)."""
    return list(variants())


def test_every_shipped_type_is_covered():
    assert {v.kind.name for _, v in shipped()} == {"numeric", "single_choice", "multiple_select", "true_false", "short_text",
                                             "matching", "ordering", "multipart"}


@pytest.mark.parametrize("kind", ["numeric", "single_choice", "multiple_select", "true_false", "short_text",
                                  "matching", "ordering", "multipart"])
def test_the_save_view_accepts_notes_and_refuses_as_the_variant_does(kind):
    checked = refused = 0
    for _, v in shipped():
        if v.kind.name != kind:
            continue
        view = v.kind.save_view(v)
        assert view.item is None and view.kind is v.kind
        for value in responses(v):
            want = outcome(v, value)
            assert outcome(view, value) == want, (v.item.id, v.seed, value)
            checked += 1
            refused += want[0] == "refused"
    assert checked and refused  # bad inputs were among them (and good ones: the right answer is always there)


def test_the_view_from_what_was_shown_is_the_views_equal():
    """A process that never built the variant reads the view from its rendering (``Variant.public()``,
    stored as JSON): the same view, for every shipped item at every seed."""
    for _, v in shipped():
        shown = json.loads(json.dumps(v.public()))
        view = v.kind.view_from_public(shown)
        assert view.kind is v.kind and view.item is None, v.item.id
        assert repr(view.payload) == repr(v.kind.save_view(v).payload), (v.item.id, v.seed)


def test_the_right_answer_is_accepted_by_every_view():
    for _, v in shipped():
        assert outcome(v.kind.save_view(v), v.answer)[0] == "note", v.item.id


def test_items_no_seed_changes_have_one_view():
    """An item kept once per version (no params, derived values or calculation) shows the same ids and
    shapes under every seed."""
    free = [(item, v) for item, v in shipped() if savecheck.seed_free(item)]
    assert {v.kind.name for _, v in free} >= {"single_choice", "multiple_select", "matching", "ordering", "numeric"}
    first: dict[str, str] = {}
    for item, v in free:
        seen = repr(v.kind.save_view(v).payload)
        assert first.setdefault(item.id, seen) == seen, item.id


def test_remembered_views_are_found_by_item_version_and_seed_and_shared():
    savecheck.forget()
    try:
        calc = [(item, v) for item, v in shipped() if not savecheck.seed_free(item) and v.kind.name == "numeric"]
        free = next((item, v) for item, v in shipped() if savecheck.seed_free(item))
        item, v = calc[0]
        other = next(w for i, w in calc if i is item and w.seed != v.seed)
        assert savecheck.save_view(item.id, item.version, v.seed) is None
        view = savecheck.remember(item.id, v)
        assert savecheck.save_view(item.id, item.version, v.seed) is view
        assert savecheck.save_view(item.id, item.version, other.seed) is None  # another seed: not known yet
        assert savecheck.save_view(item.id, "another version", v.seed) is None
        if repr(other.kind.save_view(other).payload) == repr(view.payload):
            assert savecheck.remember(item.id, other) is view  # identical views are one object
        fitem, fv = free
        fview = savecheck.remember(fitem.id, fv)
        assert savecheck.save_view(fitem.id, fitem.version, 424242) is fview  # any seed
    finally:
        savecheck.forget()


def test_the_seeded_views_are_bounded(monkeypatch):
    savecheck.forget()
    monkeypatch.setattr(savecheck, "SEEDED_MAX", 2)
    try:
        item = next(i for i, _ in shipped() if not savecheck.seed_free(i) and i.model.type == "numeric")
        for seed in (1, 2, 3):
            savecheck.remember(item.id, make_variant(item, seed))
        known = [s for s in (1, 2, 3) if savecheck.save_view(item.id, item.version, s) is not None]
        assert known == [3]  # full at 2: dropped, then the third kept
    finally:
        savecheck.forget()
