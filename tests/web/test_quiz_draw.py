"""module-04-prep's draw over many students: topic balance, the same number of calculated items for
everyone, and never two items of one family (issue 10 part 7)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from quizengine.bank.catalog import load_catalog
from quizengine.bank.families import distinct
from quizengine.models import Quiz
from quizengine.services.draw import draw_items

from .conftest import BANKS

STUDENTS = 300


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def test_distinct_takes_at_most_one_of_a_family():
    fam = {"a": "f", "b": "f", "c": None, "d": "g", "e": "g", "f": None}
    taken: set[str] = set()
    assert distinct("abcdef", 3, fam.get, taken) == ["a", "c", "d"]
    assert taken == {"f", "g"}
    assert distinct("bcef", 3, fam.get, taken) == ["c", "f"]  # a family taken earlier stays taken


def test_exactly_the_calculated_items_are_tagged_numeric(catalog):
    """Quiz slots count calculated items with tags: [numeric] / exclude_tags: [numeric]."""
    wrong = sorted(i for i, it in catalog.items.items()
                   if (getattr(it.model, "calc", None) is not None) != ("numeric" in it.model.tags))
    assert wrong == []


def test_module_04_prep_draws_the_same_mix_for_every_student(db, catalog):
    with db.read() as s:
        quiz = s.scalars(select(Quiz).where(Quiz.id == "module-04-prep")).one()
        slots = quiz.definition["slots"]
        mixes = Counter()
        for user_id in range(1, STUDENTS + 1):
            for number in (1, 2):
                drawn = [c.item_id for c, _ in draw_items(s, quiz, "a-secret", user_id, number)]
                models = [catalog.items[i].model for i in drawn]
                assert len(set(drawn)) == len(drawn) == sum(sl.get("count", 1) for sl in slots)
                families = [m.family for m in models if m.family]
                assert len(families) == len(set(families)), (user_id, families)
                topics = Counter(catalog.items[i].topic for i in drawn)
                calculated = sum(getattr(m, "calc", None) is not None for m in models)
                mixes[(tuple(sorted(topics.items())), calculated)] += 1
    # one mix for all 600 draws: 4 vocabulary, 4 activation (2 calculated), 3 optimizer (2), 4 backprop (2)
    # and one multi-part chain (calculated), and one each of weight initialization (not calculated), ReLU
    # backprop (calculated), schedules and regularization (calculated), tuning and Keras (not calculated):
    # 9 calculated in all
    assert mixes == Counter({((("activation-functions", 4), ("backpropagation", 4), ("chains", 1),
                               ("momentum-optimizers", 3), ("relu-backprop", 1), ("schedules-regularization", 1),
                               ("tuning-keras", 1), ("vocabulary", 4), ("weight-initialization", 1)), 9): 2 * STUDENTS})


def test_a_family_is_drawn_at_most_once_even_across_slots(db, catalog):
    """The two 'largest sigmoid derivative' items share a family; over many draws both appear, never together."""
    pair = {i for i, it in catalog.items.items() if it.model.family == "sigmoid-derivative-max"}
    assert len(pair) == 2
    seen: Counter = Counter()
    with db.read() as s:
        quiz = s.scalars(select(Quiz).where(Quiz.id == "module-04-prep")).one()
        for user_id in range(1, STUDENTS + 1):
            drawn = {c.item_id for c, _ in draw_items(s, quiz, "another-secret", user_id, 1)}
            assert len(drawn & pair) <= 1
            seen.update(drawn & pair)
    assert set(seen) == pair
