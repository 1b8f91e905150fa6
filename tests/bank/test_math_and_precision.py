"""Math as students read it (plain-text names, accents, scrolling tables) and the numeric feedback
on precision: the accepted range and "close, but not precise enough" (issue 11)."""

from __future__ import annotations

import re

import numpy as np

import pytest

from quizengine.grading import grade
from quizengine.bank.render import markdown_to_html, markdown_to_text
from quizengine.tolerance import Tolerance, accepted_range, close_at_lower_precision, scalar_close


@pytest.mark.parametrize("source", [r"[0, \infty)", r"\hat{y} = \sqrt{x_1}", r"\frac{\partial L}{\partial w} < 1"])
def test_every_formula_is_named_by_its_source(source):
    html = markdown_to_html(f"Range ${source}$ here")
    tag = re.search(r"<math[^>]*>", html).group(0)
    escaped = source.replace("<", "&lt;")
    assert f'alttext="{escaped}"' in tag and f'aria-label="{escaped}"' in tag
    assert markdown_to_text(f"Range ${source}$ here") == f"Range {source} here"


def test_hat_and_infinity_render_as_ordinary_symbols():
    html = markdown_to_html(r"$\hat{y}$ and $[0, \infty)$")
    assert "<mo>\u02c6</mo></mover>" in html and "<mo>^</mo>" not in html  # a hat that doesn't stretch up
    assert "<mi>\u221e</mi>" in html  # no operator space before the bracket


def test_a_display_formula_breaks_into_pieces_at_its_top_level_quads():
    html = markdown_to_html(r"$$x = 1, \quad W = \begin{bmatrix}1, \quad 2\end{bmatrix}, \quad b = \{1, \quad 2\}, \quad y = 0$$")
    pieces = re.search(r'<span class="math-pieces">(.*)</span>', html, re.S).group(1)
    names = re.findall(r'<math alttext="([^"]*)"[^>]*display="block"', pieces)
    # the comma stays with the piece before it; quads inside an environment or braces stay put
    assert names == ["x = 1,", r"W = \begin{bmatrix}1, \quad 2\end{bmatrix},", r"b = \{1, \quad 2\},", "y = 0"]
    one = markdown_to_html(r"$$z = a W + b, \quad \text{row vectors}$$".replace(", \\quad", " \\quad"))
    assert "math-pieces" not in one and one.count("<math") == 1  # no comma before the quad: one formula


def test_tables_scroll_in_their_own_box():
    html = markdown_to_html("| $x_1$ | b |\n| --- | --- |\n| 1 | 2 |\n")
    assert html.startswith('<div class="scroll"><table>') and html.rstrip().endswith("</table></div>")


@pytest.mark.parametrize("key, tol, lo, hi", [
    # rel + abs: the larger of the two half-widths
    (2.0, Tolerance(rel=1e-3, abs=1e-9), 1.998, 2.002),
    (0.0, Tolerance(rel=1e-3, abs=0.01), -0.01, 0.01),
    # significant figures and decimals: half a unit in the last place, +2%
    (0.123456, Tolerance(sigfigs=3), 0.123456 - 0.00051, 0.123456 + 0.00051),
    (12.5, Tolerance(decimals=1), 12.449, 12.551),
])
def test_accepted_range_is_what_the_comparison_accepts(key, tol, lo, hi):
    got = accepted_range(key, tol)
    assert got == pytest.approx((lo, hi))
    inside = [got[0] + (got[1] - got[0]) * f for f in (0.01, 0.5, 0.99)]
    assert all(scalar_close(x, key, tol) for x in inside)
    assert not scalar_close(got[1] + (got[1] - got[0]) * 0.05, key, tol)


@pytest.mark.parametrize("x, key, tol, near", [
    # rounded too early: right to 2 figures, not to the tolerance
    (0.12, 0.123456, Tolerance(rel=1e-3, abs=1e-9), True),
    (-1.2e-3, -1.2345e-3, Tolerance(sigfigs=4), True),
    (0.1235, 0.123456, Tolerance(decimals=6), True),
    # right: not "close but"
    (0.1235, 0.123456, Tolerance(rel=1e-3, abs=1e-9), False),
    # simply wrong
    (0.13, 0.123456, Tolerance(rel=1e-3, abs=1e-9), False),
    (-0.12, 0.123456, Tolerance(rel=1e-3, abs=1e-9), False),
    (float("nan"), 0.5, Tolerance(rel=1e-3, abs=1e-9), False),
    (float("inf"), 0.5, Tolerance(rel=1e-3, abs=1e-9), False),
])
def test_close_at_lower_precision(x, key, tol, near):
    assert close_at_lower_precision(x, key, tol) is near


@pytest.mark.parametrize("response, feedback", [
    ("0.25", "Correct."),
    ("0.2501", "Correct."),  # decimals: 3
    ("0.2", ""),  # wrong, and not close at 2 figures either
    ("0.246", "Close, but not precise enough: the answer must be correct to 3 decimal places"),
    ("0.2549", "Close, but not precise enough"),
])
def test_numeric_feedback_says_close_but_not_precise_enough(variant, response, feedback):
    v = variant("s-num-static")  # key 0.25, tolerance {decimals: 3}
    r = grade(v, response)
    assert r.feedback.startswith(feedback) if feedback else r.feedback == ""
    assert v.kind.accepted(v) == "Accepted: from 0.24949 to 0.25051 (to 3 decimal places)."


def test_entries_close_but_not_precise_enough_are_counted(variant):
    v = variant("s-num-matrix")
    key = np.asarray(v.answer, dtype=float)
    assert v.model.tolerance == Tolerance(sigfigs=4) and abs(key[0, 0]) > 1e-3
    rounded = key.copy()
    rounded[0, 0] *= 1.004  # 0.4% off: outside 4 significant figures (at most 0.05%), inside 2 (at least 0.5%)
    r = grade(v, rounded.tolist())
    assert "3 of 4 entries are right. 1 more is close, but not precise enough." == r.feedback


@pytest.mark.parametrize("source, expected", [
    # a sign after a bracket, comma or relation is unary: no space as around a binary minus
    (r"(-1, 1)", '<mo stretchy="false">(</mo><mo form="prefix">\u2212</mo><mn>1</mn>'),
    (r"y = -x", '<mo>=</mo><mo form="prefix">\u2212</mo><mi>x</mi>'),
    (r"a - b", "<mi>a</mi><mo>\u2212</mo><mi>b</mi>"),
    # a function name and its argument get TeX's thin space
    (r"\tanh z", '<mi>tanh</mi><mspace width="0.1667em"></mspace><mi>z</mi>'),
    (r"\tanh^2 z", '</msup><mspace width="0.1667em"></mspace><mi>z</mi>'),
    (r"\max(0, z)", "<mo>max</mo><mo stretchy=\"false\">(</mo>"),  # no space before a bracket
])
def test_math_spacing_follows_tex(source, expected):
    assert expected in markdown_to_html(f"${source}$")
