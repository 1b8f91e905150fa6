"""The validator's memo filled from one batched run (bank/seedrun.py) leaves the checks' findings as
they are where the batch cannot cover every seed: a seed whose numbers overflow, whose loss is
infinite, whose derived value cannot be evaluated, or a chain with given values. Each small item is
checked twice, with the memo filled from the batch and the plain per-seed way, and both must give
the same problems and report rows. (That the filled memo holds every seed's numbers bit for bit, on
every shipped item: tests/bank/test_seed_batch.py.)"""

from __future__ import annotations

from textwrap import dedent, indent

import pytest

from quizengine.bank import validate
from quizengine.bank.catalog import load_catalog
from quizengine.bank.core import _MEMO, memo
from quizengine.bank.seedrun import prefill

SEEDS = 40
HEAD = "topic: t\ntitle: T\nitems:\n"

NETWORK = """\
- id: net
  type: numeric
  prompt: "x = {{x}}, w = {{w}}, y = {{y}}: what is dL/dw, to 3 significant figures?"
  explanation: x
  tolerance: {sigfigs: 3}
  allow_trivial: true
  params:
    x: {range: [0.5, 1.5], step: 0.5}
    w: {choice: WEIGHTS}
    y: {choice: [0.0, 1.0]}
  calc:
    network:
      layers:
        - {weights: [["$w"]], bias: [0.0], activation: ACT}
      loss: LOSS
    input: ["$x"]
    target: ["$y"]
  answer: layers[0].dW[0][0]
"""

CHAIN = """\
- id: chain
  type: multipart
  prompt: "x = {{x}}, w = {{w}}"
  explanation: x
  params:
    x: {range: [0.5, 1.5], step: 0.5}
    w: {choice: WEIGHTS}
  derived:
    inv: "1 / (w - 3)"
  calc:
    network:
      layers:
        - {weights: [["$w"]], bias: ["$inv"], activation: sigmoid}
      loss: mse
    input: ["$x"]
    target: [0.5]
  mistakes: [derivative_as_value, no_activation_derivative]
  parts:
    - {id: z, prompt: z?, answer: "layers[0].z[0]"}
    - {id: a, prompt: a?, answer: "layers[0].a[0]"}
    - {id: dw, prompt: dW?, answer: "layers[0].dW[0][0]"}
"""


def _catalog(tmp_path, body: str):
    (tmp_path / "t.yaml").write_text(HEAD + indent(dedent(body), "  "))
    cat = load_catalog([tmp_path])
    assert not cat.errors, [str(p) for p in cat.errors]
    return cat


def _both_ways(tmp_path, monkeypatch, body: str) -> tuple[list[str], list[tuple]]:
    """(problems, report rows) of every item, with the memo filled from the batch and without; both the same."""
    cat = _catalog(tmp_path, body)
    out = {}
    for batched in (True, False):
        monkeypatch.setattr(validate, "prefill", prefill if batched else (lambda *a: None))
        problems, report = [], []
        for item in cat.items.values():
            problems += [str(p) for p in validate.check_item(item, SEEDS, report)]
        out[batched] = problems, report
    assert out[True] == out[False]
    return out[True]


def _filled(cat, item_id: str, multipart: bool = False) -> list[int]:
    """The seeds whose calculation the batch put in the memo."""
    with memo():
        prefill(cat.items[item_id], SEEDS, multipart)
        return sorted(k[2] for k in _MEMO.get() if k[0] == "calculate")


def test_a_healthy_item_is_filled_for_every_seed_and_checked_the_same(tmp_path, monkeypatch):
    body = NETWORK.replace("WEIGHTS", "[-1.5, -0.5, 0.5, 1.5]").replace("ACT", "sigmoid").replace("LOSS", "mse")
    problems, report = _both_ways(tmp_path, monkeypatch, body)
    assert not any(": error: " in p for p in problems), problems
    assert report and all(row[4] == SEEDS for row in report)  # every buggy calculator that applies, on every seed
    assert _filled(_catalog(tmp_path, body), "net") == list(range(SEEDS))


@pytest.mark.parametrize("act, loss, weights", [
    ("linear", "mse", "[0.5, 1.0e200]"),  # z * z overflows in the loss on the seeds with the huge weight
    ("sigmoid", "binary_crossentropy", "[0.5, 60.0]"),  # sigmoid(60) is 1.0: an infinite loss
])
def test_seeds_the_calculator_refuses_are_left_to_the_per_seed_way(tmp_path, monkeypatch, act, loss, weights):
    body = NETWORK.replace("WEIGHTS", weights).replace("ACT", act).replace("LOSS", loss)
    problems, _ = _both_ways(tmp_path, monkeypatch, body)
    assert len(problems) == 1 and "the calculator refuses seed" in problems[0], problems
    assert _filled(_catalog(tmp_path, body), "net") == []  # the batch overflows as well: nothing filled


def test_a_derived_value_that_fails_on_a_later_seed_fills_only_the_seeds_before_it(tmp_path, monkeypatch):
    body = CHAIN.replace("WEIGHTS", "[0.5, 1.0, 1.5, 2.0, 2.5, 3.0]")  # w = 3 divides by zero
    problems, _ = _both_ways(tmp_path, monkeypatch, body)
    assert len(problems) == 1 and "derived 'inv' = '1 / (w - 3)'" in problems[0], problems
    first = int(problems[0].split("seed ")[1].split(":")[0])
    assert first > 1 and _filled(_catalog(tmp_path, body), "chain", multipart=True) == list(range(first))


def test_a_chain_is_filled_with_its_buggy_runs_and_checked_the_same(tmp_path, monkeypatch):
    body = CHAIN.replace("WEIGHTS", "[-1.5, -0.5, 0.5, 1.5]")
    problems, _ = _both_ways(tmp_path, monkeypatch, body)
    assert not any(": error: " in p for p in problems), problems
    cat = _catalog(tmp_path, body)
    with memo():
        prefill(cat.items["chain"], SEEDS, True)
        keys = list(_MEMO.get())
    assert sum(k[0] == "calculate" for k in keys) == SEEDS
    assert {k[2] for k in keys if k[0] == "buggy"} == {"derivative_as_value", "no_activation_derivative"}


def test_given_values_are_not_batched(tmp_path, monkeypatch):
    body = NETWORK.replace("WEIGHTS", "[-1.5, -0.5, 0.5, 1.5]").replace("ACT", "sigmoid").replace("LOSS", "mse")
    body = body.replace('    target: ["$y"]\n', '    target: ["$y"]\n    given: {"layers[0].a": [0.5]}\n')
    problems, report = _both_ways(tmp_path, monkeypatch, body)
    assert not any(": error: " in p for p in problems) and report, problems
    assert _filled(_catalog(tmp_path, body), "net") == []
