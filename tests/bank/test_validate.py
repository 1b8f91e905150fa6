"""One small broken bank per validator rule, each asserting the exact line and column."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent, indent

import pytest

from quizengine.bank.validate import validate_paths

HEAD = "topic: t\ntitle: T\nitems:\n"
GOOD_ITEM = """  - id: ok
    type: true_false
    prompt: Fine.
    answer: true
    explanation: Yes.
"""


def lint(tmp_path: Path, body: str, quiz: str | None = None, seeds: int = 40) -> list[str]:
    banks = tmp_path / "banks"
    banks.mkdir(exist_ok=True)
    (banks / "t.yaml").write_text(HEAD + body)
    if quiz is not None:
        (banks / "quizzes").mkdir(exist_ok=True)
        (banks / "quizzes" / "q.yaml").write_text(dedent(quiz))
    cat = validate_paths([banks], seeds=seeds)
    return [str(p).replace(str(banks) + "/", "") for p in cat.problems]


def item(text: str) -> str:
    """Indent a dedented item by two spaces, as under `items:`."""
    return indent(dedent(text), "  ")


def test_valid_bank_has_no_problems(tmp_path):
    assert lint(tmp_path, GOOD_ITEM) == []


def test_yaml_syntax_error(tmp_path):
    out = lint(tmp_path, GOOD_ITEM + "  - id: [broken\n    type: x\n")
    assert len(out) == 1 and out[0].startswith("t.yaml:10:9: error: YAML syntax:")


def test_unknown_key_points_at_the_key_and_suggests(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("    answer: true\n", "    answer: true\n    explanaton: x\n"))
    assert out == ["t.yaml:8:5: error: ok: unknown key 'explanaton'; did you mean 'explanation'?"]


def test_wrong_value_type_points_at_the_value(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("answer: true", "answer: yes please"))
    assert out == ["t.yaml:7:13: error: ok: answer: Input should be a valid boolean (got 'yes please')"]


def test_missing_key_points_at_the_item(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("    prompt: Fine.\n", ""))
    assert out == ["t.yaml:4:5: error: ok: missing key 'prompt'"]


def test_unknown_type_suggests_the_closest(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("type: true_false", "type: truefalse"))
    assert len(out) == 1 and out[0].startswith("t.yaml:5:11: error: ok: unknown item type 'truefalse'; "
                                               "did you mean 'true_false'?")


def test_problems_from_several_items_are_all_reported(tmp_path):
    body = GOOD_ITEM + GOOD_ITEM.replace("id: ok", "id: ok2").replace("answer: true", "answer: 3") + \
        GOOD_ITEM.replace("id: ok", "id: ok3").replace("    prompt: Fine.\n", "")
    out = lint(tmp_path, body)
    assert [o.split(": error")[0] for o in out] == ["t.yaml:12:13", "t.yaml:14:5"]


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "banks").mkdir()
    (tmp_path / "banks" / "a.yaml").write_text("topic: a\ntitle: A\nitems:\n" + GOOD_ITEM)
    out = lint(tmp_path, GOOD_ITEM)
    assert out == ["t.yaml:4:9: error: duplicate id 'ok' (first defined at a.yaml:4:9)"]


def test_duplicate_yaml_key(tmp_path):
    out = lint(tmp_path, GOOD_ITEM + "    answer: false\n")
    assert out == ["t.yaml:9:5: error: duplicate key 'answer' (first at line 7)"]


@pytest.mark.parametrize("flags,message", [
    ((False, False), "has no correct choice; a single_choice item needs exactly one"),
    ((True, True), "has 2 correct choices (a, b); a single_choice item needs exactly one"),
])
def test_single_choice_needs_exactly_one_correct(tmp_path, flags, message):
    out = lint(tmp_path, item(f"""\
      - id: sc
        type: single_choice
        prompt: Pick.
        choices:
          - {{id: a, text: A, correct: {str(flags[0]).lower()}}}
          - {{id: b, text: B, correct: {str(flags[1]).lower()}}}
        explanation: x
    """))
    assert out == [f"t.yaml:8:7: error: sc: {message} (use multiple_select for several)"]


def test_multiple_select_with_every_choice_correct(tmp_path):
    out = lint(tmp_path, item("""\
      - id: ms
        type: multiple_select
        prompt: Pick.
        choices:
          - {id: a, text: A, correct: true}
          - {id: b, text: B, correct: true}
        explanation: x
    """))
    assert out == ["t.yaml:8:7: error: ms: every choice is correct, so ticking everything earns full marks; "
                   "add an incorrect choice"]


CALC_ITEM = """\
  - id: calc
    type: numeric
    prompt: "Compute with {{w}}, to 3 significant figures."
    params:
      w: {range: [RANGE], step: 0.5}
    calc:
      activation: {name: sigmoid}
      z: ["$w"]
    answer: derivative[0]
    tolerance: TOL
    mistakes: [derivative_as_value]
    explanation: x
"""


def calc_item(rng: str = "-2.0, 2.0", tol: str = "{sigfigs: 3}") -> str:
    return CALC_ITEM.replace("RANGE", rng).replace("TOL", tol)


def test_calculated_item_is_valid(tmp_path):
    assert lint(tmp_path, calc_item()) == []


def test_saturated_sigmoid_makes_the_question_trivial(tmp_path):
    saturated = calc_item(rng="-9.0, 9.0").replace("[derivative_as_value]", "[]")
    out = [o for o in lint(tmp_path, saturated) if "unlisted slip" not in o]
    assert len(out) == 1
    assert out[0].startswith("t.yaml:8:7: error: calc: ") and "make the question trivial" in out[0]
    assert "allow_trivial" in out[0]
    allowed = saturated.replace("    explanation: x\n", "    explanation: x\n    allow_trivial: true\n")
    assert [o for o in lint(tmp_path, allowed) if "unlisted slip" not in o] == []


def test_dead_relu_makes_a_gradient_question_trivial(tmp_path):
    body = calc_item(rng="-2.0, -0.5").replace("sigmoid", "relu").replace("mistakes: [derivative_as_value]", "mistakes: []")
    out = lint(tmp_path, body)
    assert out[0].startswith("t.yaml:8:7: error: calc: ") and "every z <= 0" in out[0]
    # ...and issue 10's degeneracy rules see the same: a key of 0, a branch never reached
    rest = " ".join(out[1:])
    assert len(out) == 4 and "exactly 0 in 40 of 40" in rest and "relu only ever sees z <= 0" in rest
    assert "0 in every one of 40" in rest


def test_tolerance_loose_enough_to_accept_a_buggy_answer(tmp_path):
    out = [o for o in lint(tmp_path, calc_item(tol="{rel: 0.9, abs: 0.0}")) if "unlisted" not in o and "says" not in o]
    assert len(out) == 1
    assert out[0].startswith("t.yaml:13:16: error: calc: the tolerance accepts the 'derivative_as_value' answer in ")


def test_mistake_that_does_not_apply(tmp_path):
    out = lint(tmp_path, calc_item().replace("[derivative_as_value]", "[derivative_as_value, momentum_sign]"))
    assert out == ["t.yaml:14:37: error: calc: mistake 'momentum_sign' does not apply to this calculation "
                   "or answer path (derivative[0])"]


def test_answer_that_raises_for_some_seed(tmp_path):
    body = calc_item(rng="0.0, 2.0").replace('z: ["$w"]', 'z: ["$l"]').replace(
        "    calc:\n", "    derived:\n      l: \"log(w)\"\n    calc:\n")
    out = lint(tmp_path, body)
    assert len(out) == 1
    assert out[0].startswith("t.yaml:10:10: error: calc: seed ") and "derived 'l' = 'log(w)': cannot evaluate" in out[0]


def test_static_answer_that_is_not_finite(tmp_path):
    body = """  - id: num
    type: numeric
    prompt: How much?
    answer: .inf
    explanation: x
"""
    assert lint(tmp_path, body) == ["t.yaml:7:13: error: num: seed 0: the answer is not a finite number: inf"]


def test_derived_value_that_overflows(tmp_path):
    body = calc_item().replace("mistakes: [derivative_as_value]", "mistakes: []").replace('["$w"]', '["$big"]')
    body = body.replace("    calc:\n", "    derived:\n      big: \"(w + 3) * 1e308 * 10\"\n    calc:\n")
    out = lint(tmp_path, body)
    assert out == ["t.yaml:10:12: error: calc: seed 0: derived 'big' = '(w + 3) * 1e308 * 10': "
                   "the value is not finite (inf)"]


def test_answer_path_that_does_not_exist(tmp_path):
    out = lint(tmp_path, calc_item().replace("answer: derivative[0]", "answer: derivative[5]"))
    assert out == ["t.yaml:12:13: error: calc: seed 0: 'derivative[5]': derivative has 1 entries, so [5] does not exist"]


def test_undefined_parameter_references(tmp_path):
    body = calc_item().replace("Compute with {{w}},", "Compute with {{v}},").replace('["$w"]', '["$u"]')
    out = lint(tmp_path, body)
    assert out == [
        "t.yaml:6:13: error: calc: {{v}} refers to an undefined parameter (defined: w)",
        "t.yaml:10:7: error: calc: \"$u\" refers to an undefined parameter (defined: w)",
    ]


def test_missing_explanation_is_a_warning(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("    explanation: Yes.\n", ""))
    assert out == ["t.yaml:4:9: warning: ok: no explanation: students see only right or wrong"]


def test_math_that_cannot_render(tmp_path):
    out = lint(tmp_path, GOOD_ITEM.replace("prompt: Fine.", "prompt: 'Is $\\frac{1}{$ fine?'"))
    assert len(out) == 1 and out[0].startswith("t.yaml:6:13: error: ok: math that cannot be rendered")


QUIZ = """\
id: q
title: Q
slots:
  - {items: [ok, missing], count: 1}
  - {topic: t, count: 5}
  - {topic: nope, count: 1}
"""


def test_quiz_naming_missing_items_topics_and_overdrawing_pools(tmp_path):
    out = lint(tmp_path, GOOD_ITEM, quiz=QUIZ)
    assert out == [
        "quizzes/q.yaml:4:18: error: quiz q: no item 'missing' in the banks",
        "quizzes/q.yaml:5:23: error: quiz q: slot 2 draws 5 items from a pool of 1",
        "quizzes/q.yaml:6:13: error: quiz q: no bank has topic 'nope' (topics: t)",
    ]


def test_quiz_schema_errors_have_marks(tmp_path):
    out = lint(tmp_path, GOOD_ITEM, quiz="id: q\ntitle: Q\nscore_policy: highest\nslots:\n  - {topic: t}\n")
    assert len(out) == 1 and out[0].startswith("quizzes/q.yaml:3:15: error: quiz: score_policy: Input should be")
