"""Variants: seeded numbers, rendering, options that never reveal the key, worked solutions."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from quizengine.bank.params import draw, evaluate, fmt, latex, render_text, shuffled, substitute, ParamError
from quizengine.bank.schema import ParamSpec
from quizengine.bank.variant import resolve

from .conftest import SAMPLE

# -- parameter draws


def test_range_draws_stay_on_the_grid_and_honour_exclude():
    spec = ParamSpec(range=(-1.0, 1.0), step=0.05, exclude=[0.0])
    values = {draw("item", seed, "w", spec) for seed in range(400)}
    grid = {round(-1 + 0.05 * k, 2) for k in range(41)} - {0.0}
    assert values <= grid and len(values) > 30
    assert all(v == round(v, 2) for v in values)  # no 0.30000000000000004 in a prompt


def test_choice_and_shape_draws():
    assert {draw("i", s, "y", ParamSpec(choice=[0, 1])) for s in range(50)} == {0, 1}
    m = draw("i", 3, "W", ParamSpec(range=(0.1, 0.9), step=0.1, shape=[2, 3]))
    assert m.shape == (2, 3) and np.all((m >= 0.1) & (m <= 0.9))


def test_draws_depend_on_item_seed_and_name_only():
    spec = ParamSpec(range=(0, 1000), step=1)
    assert draw("a", 1, "x", spec) == draw("a", 1, "x", spec)
    assert len({draw("a", s, "x", spec) for s in range(20)}) > 15
    draws = [(draw("a", s, "x", spec), draw("b", s, "x", spec), draw("a", s, "y", spec)) for s in range(20)]
    # Another item, or another name, draws other values (two draws from 1001 agree 1 time in 1001).
    assert sum(a != b for a, b, _ in draws) >= 18
    assert sum(a != c for a, _, c in draws) >= 18


def test_shuffle_is_a_deterministic_permutation():
    items = list(range(10))
    a = shuffled(items, "x", 1)
    assert sorted(a) == items and a == shuffled(items, "x", 1) and a != items


@pytest.mark.parametrize("expr,expected", [
    ("w * x + b", 0.5 * 2 + 1), ("2 ** 3 - 1", 7), ("exp(0) + log(1)", 1.0), ("[w, x][1]", 2.0),
    ("max(w, x)", 2.0), ("round(1/3, 2)", 0.33), ("sigmoid(0)", 0.5), ("(M @ v)[0]", 5.0), ("M.T[0][1]", 3.0),
    ("1 if x > 1 else 0", 1),
])
def test_derived_expressions(expr, expected):
    env = {"w": 0.5, "x": 2.0, "b": 1.0, "M": np.array([[1.0, 2.0], [3.0, 4.0]]), "v": np.array([1.0, 2.0])}
    assert evaluate(expr, env) == pytest.approx(expected)


@pytest.mark.parametrize("expr,message", [
    ("__import__('os')", "only these functions"), ("x.__class__", "attribute"), ("y + 1", "undefined name 'y'"),
    ("'a'", "not a number"), ("lambda: 1", "not allowed"), ("1 +", "not an expression"), ("log(0) * 0", "cannot evaluate"),
])
def test_derived_expressions_refuse(expr, message):
    with pytest.raises(ParamError, match=message):
        evaluate(expr, {"x": 1.0})


def test_substitute_and_its_errors():
    env = {"w": 0.5, "W": np.eye(2)}
    assert substitute({"a": ["$w"], "b": "$W", "c": "text"}, env) == {"a": [0.5], "b": [[1.0, 0.0], [0.0, 1.0]], "c": "text"}
    with pytest.raises(ParamError, match="undefined parameter"):
        substitute(["$nope"], env)
    with pytest.raises(ParamError, match="not a reference"):
        substitute(["$w + 1"], env)


def test_latex_and_text_rendering():
    assert latex(0.5) == "0.5" and latex(-0.0) == "0"
    assert latex([1, 2]) == r"\begin{bmatrix}1 \\ 2\end{bmatrix}"
    assert latex([1, 2], transpose=True) == r"\begin{bmatrix}1 & 2\end{bmatrix}"
    assert latex(1.5e-7) == r"1.5 \times 10^{-7}"
    assert render_text("x = {{ x }}, v = {{v.T}}", {"x": 2.0, "v": np.array([1.0, 3.0])}) == \
        r"x = 2, v = \begin{bmatrix}1 & 3\end{bmatrix}"
    assert fmt(0.1 + 0.2) == "0.3" and fmt(12.0) == "12"


@pytest.mark.parametrize("path,expected", [
    ("layers[1].dW[0][1]", 5), ("layers[0].a", [1, 2]), ("loss", 0.5), ("layers[-1].a[0]", 3),
])
def test_resolve_paths(path, expected):
    result = {"loss": 0.5, "layers": [{"a": [1, 2]}, {"a": [3], "dW": [[4, 5]]}]}
    assert resolve(result, path) == expected


@pytest.mark.parametrize("path,message", [
    ("layers[2].a", "has 2 entries"), ("layers[0].dW", "has no 'dW'"), ("loss[0]", "is a number"), ("layers[x]", "cannot read"),
])
def test_resolve_errors_name_the_step(path, message):
    with pytest.raises(KeyError, match=re.escape(message)):
        resolve({"loss": 0.5, "layers": [{"a": [1, 2]}, {"a": [3]}]}, path)


# -- variants


def test_same_seed_same_variant_different_seed_different_numbers(variant):
    a, b = variant("s-num-delta", 4), variant("s-num-delta", 4)
    assert a.prompt == b.prompt and a.answer == b.answer
    prompts = {variant("s-num-delta", s).prompt for s in range(30)}
    assert len(prompts) > 20


def test_variants_are_identical_in_a_fresh_process(variant):
    # No hash() randomisation, no global random state: another interpreter gives the same numbers.
    ids = ["s-num-delta", "s-num-matrix", "s-momentum", "s-single", "s-match", "s-order", "s-computed-choice"]
    code = (
        "import json, sys\n"
        "from quizengine.bank.catalog import load_catalog\n"
        "from quizengine.bank.variant import make_variant\n"
        "from quizengine.bank.params import plain\n"
        f"cat = load_catalog([__import__('pathlib').Path({str(SAMPLE)!r})])\n"
        f"out = {{i: [make_variant(cat.items[i], s).prompt + json.dumps(plain(make_variant(cat.items[i], s).answer)) "
        f"for s in (0, 7, 123456)] for i in {ids!r}}}\n"
        "print(json.dumps(out))\n"
    )
    env = {"PYTHONHASHSEED": "12345"}
    import os
    theirs = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       env={**os.environ, **env}).stdout)
    from quizengine.bank.params import plain
    ours = {i: [variant(i, s).prompt + json.dumps(plain(variant(i, s).answer)) for s in (0, 7, 123456)] for i in ids}
    assert theirs == ours


def test_prompt_shows_the_students_numbers_but_never_the_answer(variant):
    for seed in range(20):
        v = variant("s-num-delta", seed)
        w = v.values["w"]
        assert fmt(w) in v.prompt
        html = v.prompt_html
        assert "<math" in html and "{{" not in html
        for shown in {fmt(v.answer, d) for d in (3, 4, 6)}:
            assert shown not in html


def test_public_view_has_no_key(variant):
    for item in ["s-single", "s-multi", "s-tf", "s-text", "s-match", "s-order", "s-num-delta", "s-computed-choice"]:
        v = variant(item, 3)
        public = json.dumps(v.public())
        for word in ("correct", "answer", "feedback", "mistake", "explanation"):
            assert f'"{word}' not in public
        if v.type == "true_false":
            assert "true" not in public.lower().replace("true_false", "")
    v = variant("s-num-delta", 3)
    assert fmt(v.answer) not in json.dumps(v.public())


def test_choice_ids_do_not_reveal_the_authored_order(variant):
    # Authors tend to put the right answer first; ids follow the shuffled display order instead.
    answers = {variant("s-single", s).answer for s in range(30)}
    assert len(answers) == 3
    assert all(c.id.startswith("c") for c in variant("s-single", 0).choices)


def test_matching_and_ordering_ids_do_not_reveal_the_key(variant):
    pairs = {tuple(sorted(variant("s-match", s).answer.items())) for s in range(30)}
    assert len(pairs) > 5
    for s in range(30):
        v = variant("s-order", s)
        assert v.answer != [o.id for o in v.options]  # never shown already in order


def test_worked_solution_uses_the_variants_own_numbers(variant):
    v = variant("s-num-delta", 9)
    sol = v.explanation
    assert "Worked solution with your numbers" in sol
    res = v.result["layers"][0]
    for value in (res["z"][0], res["a"][0], res["delta"][0]):
        assert fmt(value) in sol
    assert fmt(v.values["z"]) in sol  # the author's {{z}} in the explanation
    assert "<math" in v.explanation_html


def test_optimizer_solution_is_a_table_of_steps(variant):
    v = variant("s-momentum", 2)
    assert "| 2 |" in v.explanation and fmt(v.result["steps"][1]["params"]) in v.explanation
