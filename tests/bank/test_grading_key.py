"""A submit grades a numeric question from its grading key kept ahead (``ItemType.key_of``, stored as
JSON by services/renderings) instead of building the variant: the stand-in (``ItemType.from_key``)
must grade every response and show every feedback field exactly as the variant does, on every
shipped numeric item at several seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quizengine.bank.types import item_type
from quizengine.grading import grade
from quizengine.services.views import feedback_of
from tests.bank.test_save_view import shipped


def numeric_responses(v) -> list:
    """The key, each mistake's value, near misses at and below the tolerance, a wrong shape, junk."""
    answer = np.asarray(v.answer, dtype=np.float64)
    out = [v.answer, answer.tolist(), (answer * (1 + 1e-4)).tolist(), (answer * 1.001).tolist(),
           (answer * 1.2 + 0.05).tolist(), (answer + 1e-9).tolist(), np.round(answer, 2).tolist(),
           np.round(answer, 4).tolist(), (-answer).tolist(), "abc", "1e999999", [], [[1, 2], [3]], 0, "0"]
    out += [np.asarray(x, dtype=np.float64).tolist() for x in v.payload.mistakes.values()]
    if answer.ndim:
        wrong_one = answer.copy()
        wrong_one.flat[0] = wrong_one.flat[0] * 3 + 1
        out += [wrong_one.tolist(), [str(x) for x in answer.ravel().tolist()] if answer.ndim == 1 else "x"]
    return out


def test_only_numeric_keeps_a_key_and_every_other_type_builds():
    kept = {v.kind.name for _, v in shipped() if v.kind.key_of(v) is not None}
    assert kept == {"numeric"}


def test_the_stand_in_grades_and_explains_as_the_variant_does():
    checked = mistakes = 0
    for item, v in shipped():
        key = v.kind.key_of(v)
        if key is None:
            continue
        stored = json.loads(json.dumps(key))  # as the database gives it back
        stand_in = item_type(item.model.type).from_key(item, v.seed, stored)
        for value in numeric_responses(v):
            want = grade(v, value)
            assert grade(stand_in, value) == want, (item.id, v.seed, value)
            result = {"feedback": want.feedback, "mistake": want.mistake, "correct": want.correct}
            assert feedback_of(stand_in, result, value, 2.0, "<p>kept</p>") == \
                feedback_of(v, result, value, 2.0, "<p>kept</p>"), (item.id, v.seed)
            checked += 1
            mistakes += want.mistake is not None
    assert checked > 1000 and mistakes > 50  # the mistakes' values were recognised from the key too


def test_a_key_holds_only_json_numbers_and_the_answer_as_shown():
    for item, v in shipped():
        key = v.kind.key_of(v)
        if key is None:
            continue
        assert set(key) == {"answer", "shape", "mistakes"}
        assert json.loads(json.dumps(key, allow_nan=False)) == key, item.id  # finite, exact through JSON
        assert key["answer"] == json.loads(json.dumps(feedback_of(v, {}, None, 1.0, "")["correct_answer"]))


@pytest.mark.parametrize("bad", [{}, {"answer": 1.0}, {"answer": 1.0, "shape": 3, "mistakes": {}},
                                 {"answer": 1.0, "shape": [], "mistakes": [1, 2]}])
def test_a_malformed_key_is_refused_so_that_the_variant_is_built(bad):
    item, v = next((i, v) for i, v in shipped() if v.kind.name == "numeric")
    with pytest.raises((KeyError, TypeError, ValueError)):
        v.kind.from_key(item, v.seed, bad)
