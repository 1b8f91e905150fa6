"""Issue 10's validator rules, one small broken bank each, asserting the exact line:col: stated
precision, slips the tolerance lets through, degenerate variants, families and residue."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent, indent

from quizengine.bank.catalog import load_catalog
from quizengine.bank.precision import significant_digits, stated_precision
from quizengine.bank.rules import residue
from quizengine.bank.validate import validate_paths
from quizengine.bank.variant import make_variant
from quizengine.cli import main
from quizengine.tolerance import Mode

HEAD = "topic: t\ntitle: T\nitems:\n"


def write(tmp_path: Path, body: str, quiz: str | None = None) -> Path:
    banks = tmp_path / "banks"
    banks.mkdir(exist_ok=True)
    (banks / "t.yaml").write_text(HEAD + indent(dedent(body), "  "))
    if quiz is not None:
        (banks / "quizzes").mkdir(exist_ok=True)
        (banks / "quizzes" / "q.yaml").write_text(dedent(quiz))
    return banks


def lint(tmp_path: Path, body: str, quiz: str | None = None, seeds: int = 200) -> list[str]:
    banks = write(tmp_path, body, quiz)
    return [str(p).replace(str(banks) + "/", "") for p in validate_paths([banks], seeds=seeds).problems]


SGD = """\
- id: s
  type: numeric
  prompt: One SGD step from $w = {{w}}$ with $g = {{g}}$ and rate 0.1. Give $w_1$.
  params:
    w: {range: [0.5, 2.0], step: 0.1}
    g: {range: [0.3, 1.5], step: 0.1}
  calc:
    optimizer: {name: sgd, learning_rate: 0.1}
    params: "$w"
    gradients: ["$g"]
  answer: steps[0].params
  tolerance: TOL
  explanation: $w_1 = w - 0.1 g$.
"""


# ---------------------------------------------------------------- (a) stated precision

def test_rule_a_a_prompt_that_states_no_precision(tmp_path):
    body = SGD.replace("Give $w_1$.", "Give $w_1$.").replace("rate 0.1", "rate 0.123").replace(
        "learning_rate: 0.1}", "learning_rate: 0.123}").replace("TOL", "{sigfigs: 4}")
    out = lint(tmp_path, body)
    assert len(out) == 1
    assert out[0].startswith("t.yaml:6:13: error: s: the prompt does not say what precision it grades to, "
                             "and keys such as ")


def test_rule_a_keys_of_three_digits_need_no_statement(tmp_path):
    assert lint(tmp_path, SGD.replace("TOL", "{sigfigs: 3}")) == []


def test_rule_a_the_tolerance_disagrees_with_the_statement(tmp_path):
    body = SGD.replace("Give $w_1$.", "Give $w_1$ to 3 significant figures.").replace(
        "TOL", "{rel: 0.001, abs: 1.0e-6}")
    assert lint(tmp_path, body) == [
        "t.yaml:15:16: error: s: the prompt says '3 significant figures' but the tolerance is "
        "{'rel': 0.001, 'abs': 1e-06}; grade with tolerance {sigfigs: 3}"]


def test_rule_a_a_static_key_rounded_as_stated_must_be_accepted(tmp_path):
    body = """\
    - id: v
      type: numeric
      prompt: What is 0.25 to the power 4? Give 2 significant figures.
      answer: 0.00390625
      tolerance: {sigfigs: 3}
      explanation: About 0.0039.
    """
    assert lint(tmp_path, body) == [
        "t.yaml:8:16: error: v: the prompt says '2 significant figures' but the tolerance is {'sigfigs': 3}; "
        "grade with tolerance {sigfigs: 2}"]


def test_rule_a_statement_patterns():
    assert stated_precision("to 4 significant figures") == [(Mode.SIGFIGS, 4, "4 significant figures")]
    assert stated_precision("Give three sig figs.") == [(Mode.SIGFIGS, 3, "three sig figs")]
    assert stated_precision("round to 2 decimal places") == [(Mode.DECIMALS, 2, "2 decimal places")]
    assert stated_precision("to the nearest integer") == [(Mode.DECIMALS, 0, "nearest integer")]
    assert stated_precision("Compute the loss.") == []
    assert [significant_digits(x) for x in (0.25, 0.00390625, 120.0, 0.1 + 0.2)] == [2, 6, 2, 1]


# ---------------------------------------------------------------- (b) every buggy calculator

def test_rule_b_an_unlisted_mistake_the_tolerance_accepts(tmp_path):
    # gradient ascent is not listed, and a tolerance of 50% accepts w + 0.1 g for w >= 0.5
    out = lint(tmp_path, SGD.replace("TOL", "{rel: 0.5}"))
    assert out[0].startswith("t.yaml:15:16: error: s: the tolerance accepts the answer of the unlisted slip "
                             "'gradient_ascent' in ")


def test_rule_b_report_prints_the_rate_for_each_item_and_mistake(tmp_path, runner):
    banks = write(tmp_path, SGD.replace("TOL", "{sigfigs: 3}"))
    r = runner.invoke(main, ["validate", str(banks), "--report", "--jobs", "1", "--seeds", "50"])
    assert r.exit_code == 0, r.output
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in r.stdout.splitlines()[1:]}
    assert rows[("s", "gradient_ascent")] == ["50", "0", "0.0%"]
    assert rows[("s", "no_update")] == ["50", "0", "0.0%"]


TWO = """\
- id: u
  type: numeric
  prompt: One SGD step from $w = ({{w}}, {{v}})$ with $g = ({{g}}, 0)$ and rate {{lr}}. Give $w_1$.
  params:
    w: {range: [0.5, 2.0], step: 0.1}
    v: {range: [0.5, 2.0], step: 0.1}
    g: {range: [0.3, 1.5], step: 0.1}
    lr: {choice: [LR]}
  calc:
    optimizer: {name: sgd, learning_rate: "$lr"}
    params: ["$w", "$v"]
    gradients: [["$g", 0.0]]
  answer: steps[0].params
  tolerance: TOL
  explanation: $w_1 = w - \\eta g$; the second entry has no gradient and stays.
"""


def test_rule_b_no_update_counts_only_entries_that_move(tmp_path):
    # the second entry's gradient is exactly 0: copying it is the right answer, not the slip
    assert lint(tmp_path, TWO.replace("LR", "0.1").replace("TOL", "{sigfigs: 3}")) == []
    # a step of 0.01 g moves the first entry by less than 2% of it: not updating it is accepted
    out = [line for line in lint(tmp_path, TWO.replace("LR", "0.01").replace("TOL", "{rel: 0.02}"))
           if "'no_update'" in line]
    assert len(out) == 1
    assert out[0].startswith("t.yaml:17:16: error: u: the tolerance accepts the answer of the unlisted slip "
                             "'no_update' in ")
    # an update that moves no entry at all (here: both gradients 0 in a third of the seeds) is the slip's answer
    zero = TWO.replace("LR", "0.1").replace("TOL", "{sigfigs: 3}").replace(
        "g: {range: [0.3, 1.5], step: 0.1}", "g: {choice: [0.0, 0.5, 1.0]}")
    out = [line for line in lint(tmp_path, zero) if "'no_update'" in line]
    assert len(out) == 1
    assert out[0].startswith("t.yaml:17:16: error: u: the tolerance accepts the answer of the unlisted slip "
                             "'no_update' in ")


# ---------------------------------------------------------------- (c) degenerate variants

def test_rule_c_a_scalar_key_of_exactly_0(tmp_path):
    body = """\
    - id: z
      type: numeric
      prompt: Give $\\tanh({{z}})$ to 3 significant figures.
      params:
        z: {choice: [0.0, 0.25, 0.5, -0.75]}
      calc:
        activation: {name: tanh}
        z: ["$z"]
      answer: value[0]
      tolerance: {sigfigs: 3}
      explanation: Take tanh.
    """
    out = lint(tmp_path, body)
    assert len(out) == 1 and out[0].startswith("t.yaml:8:7: error: z: the key is exactly 0 in ")


def test_rule_c_a_key_entry_identical_in_every_seed_and_a_branch_never_reached(tmp_path):
    body = """\
    - id: r
      type: numeric
      prompt: Give the ReLU derivatives at $z = ({{z}}, 2)$.
      params:
        z: {range: [0.5, 1.5], step: 0.25}
      calc:
        activation: {name: relu}
        z: ["$z", 2.0]
      answer: derivative
      tolerance: {sigfigs: 3}
      explanation: 1 for z > 0.
    """
    assert lint(tmp_path, body) == [
        "t.yaml:8:7: error: r: relu only ever sees z > 0 (the identity branch) over 200 seeds (z from 0.5 to 2): "
        "widen the params so that both branches occur",
        "t.yaml:12:13: error: r: the key entry [0] is 1 in every one of 200 seeds: it can be learnt, not computed; "
        "make it depend on the params",
        "t.yaml:12:13: error: r: the key entry [1] is 1 in every one of 200 seeds: it can be learnt, not computed; "
        "make it depend on the params",
    ]


def test_rule_c_a_parameter_the_answer_barely_depends_on(tmp_path):
    # the output weights are tiny, so the output hardly sees the hidden layer: W1 transposed passes
    body = """\
    - id: f
      type: numeric
      prompt: |
        $x = {{x.T}}$, $W^{(1)} = {{W1}}$, sigmoid units, $W^{(2)} = [0.01, -0.01]^T$.
        Give the output to 3 significant figures.
      params:
        x: {range: [0.1, 1.0], step: 0.1, shape: [2]}
        W1: {range: [-1.0, 1.0], step: 0.1, shape: [2, 2]}
      calc:
        network:
          layers:
            - {weights: "$W1", bias: [0.0, 0.0], activation: sigmoid}
            - {weights: [[0.01], [-0.01]], bias: [0.5], activation: sigmoid}
          loss: half_sse
        input: "$x"
        target: [1.0]
      answer: output[0]
      tolerance: {sigfigs: 3}
      explanation: Forward.
    """
    out = [line for line in lint(tmp_path, body) if "barely depends" in line]
    assert out and out[0].startswith("t.yaml:11:11: error: f: the answer barely depends on 'W1': with W1 transposed "
                                     "it is still accepted in ")


# ---------------------------------------------------------------- (e) families

STATIC = """\
- id: one
  type: numeric
  prompt: What is the largest value of the derivative of the sigmoid over all real z?
  answer: 0.25
  tolerance: {sigfigs: 3}
  explanation: At z = 0.
- id: two
  type: numeric
  prompt: Over all real z, what largest value does the sigmoid's derivative take?
  answer: 0.25
  tolerance: {sigfigs: 3}
  explanation: At z = 0.
- id: three
  type: true_false
  prompt: Over all real z, what largest value does the sigmoid's derivative take? Is it 0.25?
  answer: true
  explanation: Yes.
"""
QUIZ = """\
id: q
title: Q
slots:
  - {topic: t, count: 2}
"""


def test_rule_e_pairs_that_give_each_other_away_in_one_pool(tmp_path):
    assert lint(tmp_path, STATIC, QUIZ) == [
        "t.yaml:10:9: warning: two: the same key under the same stem (67% of their content words shared) with one, "
        "and quiz q can draw both in one attempt: give both the same family (family: NAME)",
        "t.yaml:16:9: warning: three: near-identical prompts (difflib ratio 0.92) with two, and quiz q can draw both "
        "in one attempt: give both the same family (family: NAME)",
    ]
    family = STATIC.replace("  type: numeric\n", "  type: numeric\n  family: max\n").replace(
        "  type: true_false\n", "  type: true_false\n  family: max\n")
    assert lint(tmp_path, family, QUIZ.replace("count: 2", "count: 1")) == []
    assert lint(tmp_path, family, QUIZ) == [
        "quizzes/q.yaml:4:23: error: quiz q: slot 1 draws 2 items from a pool of 3 in only 1 families "
        "(a draw takes at most one item of a family)"]


def test_rule_e_a_slot_mixing_calculated_and_other_items(tmp_path):
    body = SGD.replace("TOL", "{sigfigs: 3}") + STATIC.replace("  type: numeric\n", "  type: numeric\n  family: m\n"
                                                                ).replace("  type: true_false\n", "  type: true_false\n  family: m\n")
    assert lint(tmp_path, body, QUIZ) == [
        "quizzes/q.yaml:4:5: warning: quiz q: slot 1's pool mixes 1 calculated items with 3 others, so students get "
        "different numbers of calculated items: filter it (tags: [numeric] or exclude_tags: [numeric])"]


# ---------------------------------------------------------------- (f) residue

def test_rule_f_residue_is_printed_and_keyed_as_0(tmp_path):
    body = """\
    - id: n
      type: numeric
      prompt: A linear unit gets $z = 0.1 x_1 + 0.2 x_2 - 0.3$ at $x = (1, 1)$. Give $z$.
      calc:
        network:
          layers:
            - {weights: [[0.1], [0.2]], bias: [-0.3], activation: linear}
          loss: half_sse
        input: [1.0, 1.0]
        target: [0.0]
      answer: layers[0].z[0]
      tolerance: {sigfigs: 3}
      explanation: $z = {{answer}}$.
    """
    banks = write(tmp_path, body)
    v = make_variant(load_catalog([banks]).items["n"], 0)
    assert 0.1 + 0.2 - 0.3 != 0  # the calculator's float64 sum leaves a residue...
    assert v.answer == 0.0  # ...which the key drops
    assert "e-17" not in v.explanation and "10^{-17}" not in v.explanation
    assert "$z = 0$" in v.explanation


def test_rule_f_residue_finds_what_would_print():
    assert residue("a = 0.5 and z = -5.55112e-17") == "-5.55112e-17"
    assert residue(r"$z = 1.2 \times 10^{-17}$ and $w = 2$") == r"1.2 \times 10^{-17}"
    assert residue("epsilon 1e-7 and w 0.5") is None
