"""``quizengine grade``: one response against one variant, as a submitted attempt grades it (CONTRACT 3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from quizengine.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "sample"


def grade(runner, item: str, response: str, seed: int = 0):
    r = runner.invoke(main, ["grade", item, "--seed", str(seed), "--response", response, "--json",
                             "--banks", str(SAMPLE)])
    return r, (json.loads(r.stdout) if r.exit_code == 0 else None)


def preview(runner, item: str, seed: int = 0) -> dict:
    r = runner.invoke(main, ["preview", item, "--seed", str(seed), "--json", "--banks", str(SAMPLE)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_grade_a_calculated_answer_and_its_named_mistake(runner, seed):
    p = preview(runner, "s-num-delta", seed)["params"]
    a = sigmoid(p["w"] * p["x"] + p["b"])
    delta = (a - p["y"]) * a * (1 - a)  # the textbook rule, computed here rather than read back
    r, out = grade(runner, "s-num-delta", json.dumps(f"{delta:.4g}"), seed)
    assert r.exit_code == 0
    assert {k: out[k] for k in ("score", "max_score", "correct", "mistake", "format_error")} == {
        "score": 1.0, "max_score": 1.0, "correct": True, "mistake": None, "format_error": None}
    slip = (a - p["y"]) * a  # sigma' taken as sigma
    r, out = grade(runner, "s-num-delta", json.dumps(slip), seed)
    assert r.exit_code == 0 and out["score"] == 0 and out["correct"] is False
    assert out["mistake"] == "derivative_as_value" and "derivative" in out["feedback"]


def test_grade_exit_0_whatever_the_score(runner):
    r, out = grade(runner, "s-num-static", "0.2504")
    assert out["score"] == 1 and out["correct"] is True
    r, out = grade(runner, "s-num-static", "0.26")
    assert r.exit_code == 0 and out["score"] == 0 and out["correct"] is False and out["mistake"] is None


def test_grade_partial_credit_of_an_ordering(runner):
    key = preview(runner, "s-order")["answer"]
    swapped = [key[1], key[0]] + key[2:]
    r, out = grade(runner, "s-order", json.dumps(swapped))
    assert out["score"] == pytest.approx(2 / 3) and out["correct"] is False


def test_grade_unreadable_number_is_a_format_error_not_a_failure(runner):
    r, out = grade(runner, "s-num-static", '"abc"')
    assert r.exit_code == 0
    assert out["score"] == 0 and out["correct"] is False and "not a number" in out["format_error"]


def test_grade_unknown_item_names_the_closest_id(runner):
    r, _ = grade(runner, "s-num-statik", "1")
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: no item 's-num-statik'; did you mean 's-num-static'?"


@pytest.mark.parametrize("response", ["abc", "{'a': 1}", "", "[1,"])
def test_grade_response_that_is_not_json_is_exit_2(runner, response):
    r, _ = grade(runner, "s-num-static", response)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --response is not JSON")


@pytest.mark.parametrize("item, response, message", [
    ("s-num-static", "[1, 2]", "this answer is one number, not a list"),
    ("s-single", '"zz"', "'zz' is not an option of this question"),
    ("s-tf", '"yes"', "a true_false response must be true or false"),
    ("s-num-static", "NaN", "a numeric response must be"),
    ("s-text", '"a\\u0000b"', "control character"),
])
def test_grade_response_a_save_would_refuse_is_exit_2(runner, item, response, message):
    r, _ = grade(runner, item, response)
    assert r.exit_code == 2
    assert r.stderr.startswith("error: the response would be refused: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_grade_without_json_prints_a_readable_line(runner):
    r = runner.invoke(main, ["grade", "s-text", "--response", '"Hyper-parameters."', "--banks", str(SAMPLE)])
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "s-text seed 0: 1 / 1 (correct)"
