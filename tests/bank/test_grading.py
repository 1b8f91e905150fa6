"""Grading tables per item type: within tolerance, outside, format errors, edge values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quizengine.bank.types.ordering import longest_increasing_run
from quizengine.grading import grade
from quizengine.parsing import FormatError, parse_number, parse_numeric
from quizengine.tolerance import Tolerance, close_decimals, close_rel_abs, close_sigfigs, scalar_close


# -- parsing numbers

@pytest.mark.parametrize("text,value", [
    ("0.25", 0.25), (".5", 0.5), ("-0", 0.0), ("1e-3", 1e-3), ("2.5E+2", 250.0), ("1/3", 1 / 3), ("-3/4", -0.75),
    (" 7 ", 7.0), ("\u22121.5", -1.5), ("+2", 2.0), (3, 3.0), (0.125, 0.125), ("1 000", 1000.0),
])
def test_parse_number_accepts(text, value):
    assert parse_number(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text,message", [
    # format errors: the student is told what to fix
    ("", "no answer"), ("   ", "no answer"), ("abc", "is not a number"), ("1,5", "use a dot"),
    ("1/0", "divides by zero"), ("1/x", "fraction"), ("2..5", "is not a number"), ("e5", "is not a number"),
    # non-finite values are refused
    ("nan", "not a finite"), ("NaN", "not a finite"), ("inf", "not a finite"), ("-Infinity", "not a finite"),
    ("1e400", "not finite"), ("1e999", "too long a number"), (float("nan"), "not finite"), (float("inf"), "not finite"),
    # wrong JSON types
    (None, "enter a number"), (True, "enter a number"), ([1], "enter a number"),
])
def test_parse_number_refuses(text, message):
    with pytest.raises(FormatError, match=message):
        parse_number(text)


@pytest.mark.parametrize("value,shape,message", [
    ([1, 2, 3], (2,), "vector of shape 2"),
    ("1", (2,), "vector of shape 2"),
    ([[1, 2], [3]], (2, 2), "row 2 needs 2 entries"),
    ([1, 2, 3, 4], (2, 2), "matrix of shape 2 x 2"),
    ([[1, 2], 3], (2, 2), "row 2 needs 2 entries"),
    (["1", "x"], (2,), "entry 2"),
])
def test_parse_numeric_shape_errors(value, shape, message):
    with pytest.raises(FormatError, match=message):
        parse_numeric(value, shape)


# -- comparisons

@pytest.mark.parametrize("x,a,rel,abs_,ok", [
    # within
    (1.0005, 1.0, 1e-3, 0.0, True), (-2.0019, -2.0, 1e-3, 0.0, True), (1e-10, 0.0, 1e-3, 1e-9, True),
    # outside
    (1.0011, 1.0, 1e-3, 0.0, False), (1e-8, 0.0, 1e-3, 1e-9, False), (-1.0, 1.0, 1e-3, 1e-9, False),
])
def test_close_rel_abs(x, a, rel, abs_, ok):
    assert close_rel_abs(x, a, rel, abs_) is ok


@pytest.mark.parametrize("x,a,digits,ok", [
    # within: agree when both round to `digits` significant figures
    (0.0347, 0.0347795, 3, False), (0.0348, 0.0347795, 3, True), (12300, 12345, 3, True),
    (0.12345, 0.123449, 5, True), (-0.568, -0.567826, 3, True),
    # outside
    (0.035, 0.0347795, 3, False), (12400, 12345, 3, False),
    # zero answer
    (0.0, 0.0, 3, True), (0.004, 0.0, 3, True), (0.02, 0.0, 3, False),
])
def test_close_sigfigs(x, a, digits, ok):
    assert close_sigfigs(x, a, digits) is ok


@pytest.mark.parametrize("x,a,decimals,ok", [
    (0.25, 0.2504, 3, True), (0.2509, 0.2504, 3, True), (0.251, 0.2504, 3, False), (44, 44, 0, True),
    (44.4, 44, 0, True), (45, 44, 0, False),
])
def test_close_decimals(x, a, decimals, ok):
    assert close_decimals(x, a, decimals) is ok


@pytest.mark.parametrize("x,a", [(math.nan, 1.0), (1.0, math.nan), (math.inf, math.inf), (1.0, math.inf)])
def test_non_finite_never_matches(x, a):
    assert not scalar_close(x, a, Tolerance(rel=1.0, abs=1.0))


# -- grading whole items

def test_single_choice(variant):
    v = variant("s-single", 5)
    wrong = next(c.id for c in v.choices if c.id != v.answer)
    assert grade(v, v.answer).score == 1.0 and grade(v, v.answer).correct
    r = grade(v, wrong)
    assert r.score == 0.0 and r.format_error is None
    picked_iteration = next(c.id for c in v.choices if c.text.startswith("One weight update"))
    assert grade(v, picked_iteration).feedback == "That is an iteration."
    for bad in ("zz", None, 3, ["c1"]):
        r = grade(v, bad)
        assert r.format_error and r.score == 0.0


@pytest.mark.parametrize("pick,expected", [
    # correct: ReLU, tanh (C = 2); wrong: Adam, Dropout (I = 2)
    (["ReLU", "tanh"], 1.0),
    (["ReLU"], 0.5),
    (["ReLU", "tanh", "Adam"], 0.5),
    (["ReLU", "Adam"], 0.0),
    (["ReLU", "tanh", "Adam", "Dropout"], 0.0),  # ticking everything earns nothing
    ([], 0.0),
    (["Adam", "Dropout"], 0.0),  # never negative
])
def test_multiple_select_partial_credit(variant, pick, expected):
    v = variant("s-multi", 2)
    ids = {c.text: c.id for c in v.choices}
    assert grade(v, [ids[t] for t in pick]).score == pytest.approx(expected)


def test_multiple_select_format_errors(variant):
    v = variant("s-multi")
    assert grade(v, "c1").format_error and grade(v, ["c1", "nope"]).format_error


@pytest.mark.parametrize("response,score,format_error", [
    (False, 1.0, False), (True, 0.0, False), ("false", 1.0, False), ("True", 0.0, False),
    ("maybe", 0.0, True), (0, 0.0, True), (None, 0.0, True),
])
def test_true_false(variant, response, score, format_error):
    r = grade(variant("s-tf"), response)
    assert r.score == score and bool(r.format_error) is format_error


@pytest.mark.parametrize("response,score", [
    # accepted answers, normalised
    ("hyperparameter", 1.0), ("  Hyper-Parameter ", 1.0), ("HYPERPARAMETER", 1.0),
    # the pattern also counts
    ("hyperparameters", 1.0),
    # wrong
    ("parameter", 0.0), ("hyper parameter s", 0.0), ("weights", 0.0),
])
def test_short_text(variant, response, score):
    assert grade(variant("s-text"), response).score == score


def test_short_text_empty_is_a_format_error(variant):
    assert grade(variant("s-text"), "   ").format_error


def test_matching_credit_per_pair(variant):
    v = variant("s-match", 3)
    assert grade(v, v.answer).score == 1.0
    one_wrong = dict(v.answer)
    distractor = next(o.id for o in v.rights if o.id not in v.answer.values())
    one_wrong["l1"] = distractor
    assert grade(v, one_wrong).score == pytest.approx(2 / 3)
    assert grade(v, {}).score == 0.0
    assert grade(v, {"l1": "r99"}).format_error
    assert grade(v, ["r1"]).format_error


@pytest.mark.parametrize("order,expected", [
    ([0, 1, 2, 3], 1.0),
    ([1, 0, 2, 3], 2 / 3),  # one item out of place costs one position
    ([0, 2, 3, 1], 2 / 3),
    ([3, 2, 1, 0], 0.0),  # fully reversed
    ([1, 0, 3, 2], 1 / 3),
])
def test_ordering_partial_credit(variant, order, expected):
    v = variant("s-order", 4)
    assert grade(v, [v.answer[i] for i in order]).score == pytest.approx(expected)


def test_ordering_format_errors(variant):
    v = variant("s-order")
    assert grade(v, v.answer[:-1]).format_error
    assert grade(v, v.answer[:-1] + v.answer[:1]).format_error


def test_longest_increasing_run():
    assert longest_increasing_run([0, 1, 2]) == 3
    assert longest_increasing_run([2, 1, 0]) == 1
    assert longest_increasing_run([1, 0, 3, 2, 4]) == 3


@pytest.mark.parametrize("response,score", [
    ("0.25", 1.0), (".25", 1.0), ("1/4", 1.0), ("0.2504", 1.0), ("0.2", 0.0), ("-0.25", 0.0), (0.25, 1.0),
])
def test_static_numeric(variant, response, score):
    assert grade(variant("s-num-static"), response).score == score


def test_calculated_numeric_within_and_outside_tolerance(variant):
    v = variant("s-num-delta", 11)
    a = v.answer
    assert grade(v, a).correct
    assert grade(v, f"{a:.4g}").correct  # the 4 significant figures the item asks for
    assert not grade(v, f"{a:.3g}").correct  # -0.122 for -0.12180: 3 are not enough
    assert grade(v, str(a * 1.02)).score == 0.0
    assert grade(v, "1,5").format_error and grade(v, "1,5").score == 0.0


def test_numeric_buggy_answer_names_the_mistake(variant):
    # s-num-delta, seed 11: w = 0.15, x = 1, b = -0.1, y = 1, so z = 0.05 and a = sigma(z); by hand:
    # delta = (a - y) a (1 - a); sigma' taken as sigma gives (a - y) a; no derivative gives a - y.
    v = variant("s-num-delta", 11)
    assert {k: v.values[k] for k in "wxby"} == {"w": 0.15, "x": 1.0, "b": -0.1, "y": 1}
    a = 1 / (1 + math.exp(-0.05))  # 0.512497...
    assert v.answer == pytest.approx((a - 1) * a * (1 - a), rel=1e-12)  # -0.121800
    by_hand = {"derivative_as_value": (a - 1) * a, "no_activation_derivative": a - 1}  # -0.249844, -0.487503
    assert v.buggy == pytest.approx(by_hand, rel=1e-12)
    for mistake, typed in [("derivative_as_value", "-0.2498"), ("no_activation_derivative", "-0.4875")]:
        r = grade(v, typed)
        assert r.score == 0.0 and r.mistake == mistake
        assert "what you get if you" in r.feedback
    assert grade(v, "-0.1218").correct and grade(v, "-0.1218").mistake is None


def test_matrix_answer_scores_per_entry(variant):
    v = variant("s-num-matrix", 2)
    a = np.asarray(v.answer)
    assert grade(v, a.tolist()).correct
    wrong = a.copy()
    wrong[0, 1] += 1.0
    r = grade(v, wrong.tolist())
    assert r.score == pytest.approx(0.75) and "3 of 4 entries" in r.feedback
    r = grade(v, a.T.tolist())
    assert r.mistake == "transposed_gradient"
    assert grade(v, a.reshape(-1).tolist()).format_error  # wrong shape costs nothing


def test_computed_choice_feedback_names_the_mistake(variant):
    # s-computed-choice, seed 1: z = -2.5. The key sigma'(z) = sigma(z)(1 - sigma(z)) = 0.07010; taking
    # sigma for sigma' (derivative_as_value) gives sigma(-2.5) = 0.07586.
    v = variant("s-computed-choice", 1)
    assert v.values == {"z": -2.5}
    s = 1 / (1 + math.exp(2.5))
    by_text = {float(c.text): c.id for c in v.choices}
    assert len(v.choices) == 4  # the key, the mistake and two decoys (MIN_OPTIONS)
    key_id = next(cid for x, cid in by_text.items() if x == pytest.approx(s * (1 - s), rel=1e-3))
    buggy_id = next(cid for x, cid in by_text.items() if x == pytest.approx(s, rel=1e-3))
    r = grade(v, buggy_id)
    assert r.score == 0 and r.mistake == "derivative_as_value" and "f(z) where its derivative" in r.feedback
    assert grade(v, key_id).correct and grade(v, key_id).mistake is None
    assert [grade(v, c.id).score for c in v.choices].count(1.0) == 1


def test_points_scale_the_score(catalog):
    from quizengine.bank.variant import make_variant

    item = catalog.items["s-single"]
    scaled = item.model.model_copy(update={"points": 3.0})
    v = make_variant(item, 0)
    v.item = type(item)(**{**item.__dict__, "model": scaled})
    assert grade(v, v.answer).score == 3.0 and grade(v, v.answer).max_score == 3.0
