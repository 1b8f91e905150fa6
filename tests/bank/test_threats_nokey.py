"""Issue 9, "no answer without computing": computed choice keys that can be recognised unseen."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.params import fmt, shuffled
from quizengine.bank.variant import make_variant, resolve

from .test_validate import item, lint

BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = 200

ADAM = item("""\
    - id: adam-choice
      type: single_choice
      prompt: "Adam, rate {{lr}}, from {{w0}} with gradients {{g1}} then {{g2}}: the second weight after two steps?"
      params:
        w0: {range: [-1.0, 1.0], step: 0.5, shape: [2], exclude: [0]}
        lr: {choice: [0.1]}
        g1: {range: [-2.0, 2.0], step: 0.5, exclude: [0], shape: [2]}
        g2: {range: [-2.0, 2.0], step: 0.5, exclude: [0], shape: [2]}
      calc:
        optimizer: {name: adam, learning_rate: "$lr"}
        params: "$w0"
        gradients: ["$g1", "$g2"]
      answer: steps[1].params[1]
      mistakes: [no_bias_correction, gradient_ascent]
      explanation: Kingma and Ba, Algorithm 1.
""")

DELTA = item("""\
    - id: delta-choice
      type: single_choice
      prompt: "The output delta for x = {{x}}, w = {{w}}, y = {{y}}?"
      params:
        x: {range: [0.1, 1.0], step: 0.05}
        w: {range: [-1.0, 1.0], step: 0.05}
        y: {choice: [0, 1]}
      calc:
        network:
          layers:
            - {weights: [["$w"]], bias: [0.1], activation: sigmoid}
          loss: half_sse
        input: ["$x"]
        target: ["$y"]
      answer: layers[0].delta[0]
      mistakes: [derivative_as_value, loss_factor]
      explanation: Nielsen's BP1.
""")

SGD = item("""\
    - id: sgd-choice
      type: single_choice
      prompt: "SGD with rate 0.1 starts at w = {{w0}}; the gradient is 0.5. What is w after one step?"
      params:
        w0: {range: [-2.0, 2.0], step: 0.05}
      calc:
        optimizer: {name: sgd, learning_rate: 0.1}
        params: ["$w0"]
        gradients: [[0.5]]
      answer: steps[0].params[0]
      mistakes: [gradient_ascent]
      explanation: w - 0.1 g.
""")


@pytest.fixture(scope="module")
def shipped():
    return load_catalog([BANKS])


def computed_choice_items(cat) -> list:
    return [i for i in cat.items.values() if i.model.type == "single_choice" and i.model.calc is not None]


def key_rank(v) -> tuple[int, int]:
    values = [float(o.text) for o in v.choices]
    key = float(next(o.text for o in v.choices if o.id == v.answer))
    return sum(x < key for x in values), len(values)


def old_builder(key, mistakes, n, digits, salt, distinct):
    """The options as they were built before issue 9: the key and the mistakes, shuffled."""
    entries = {fmt(key, digits): ("key", key)}
    for name, value in mistakes.items():
        entries.setdefault(fmt(value, digits), (name, value))
    return [(source, value, text) for text, (source, value) in shuffled(list(entries.items()), *salt, "choices")]


# -- key always the middle option


def test_threat_key_always_middle_option_is_flagged(tmp_path, monkeypatch):
    monkeypatch.setattr("quizengine.bank.types.single_choice.computed_options", old_builder)
    out = lint(tmp_path, ADAM, seeds=SEEDS)
    assert out == ["t.yaml:17:15: error: adam-choice: the key's rank among the options sorted by value is far from "
                   "uniform over 200 seeds (smallest 0, 2nd 200, largest 0; uniform: about 67 each, chi-square "
                   "p < 0.001); a student can pick by position without computing"]


def test_threat_key_always_middle_option_no_longer_built(tmp_path, shipped):
    assert lint(tmp_path, ADAM, seeds=SEEDS) == []
    for bank_item in computed_choice_items(shipped) + [None]:
        if bank_item is None:  # the small item above, as the builder makes it now
            bank_item = load_catalog([tmp_path / "banks"]).items["adam-choice"]
        ranks = Counter(key_rank(make_variant(bank_item, seed)) for seed in range(SEEDS))
        n = {size for _, size in ranks}
        assert n == {4}, (bank_item.id, ranks)
        # every rank, smallest to largest, about a quarter of the time (50 expected; 3.5 sd is 21)
        assert all(29 <= ranks[(r, 4)] <= 71 for r in range(4)), (bank_item.id, ranks)


# -- "the option whose double is also shown"


def double_heuristic(v) -> float:
    """Chance that picking an option X whose double 2X is also shown (else guessing) finds the key."""
    values = {o.id: float(o.text) for o in v.choices}
    picks = [i for i, x in values.items() if any(j != i and abs(y - 2 * x) <= 0.01 * abs(y) for j, y in values.items())]
    if not picks:
        return 1 / len(values)
    return (v.answer in picks) / len(picks)


def test_threat_double_also_shown_heuristic_is_flagged(tmp_path):
    out = [o for o in lint(tmp_path, DELTA, seeds=SEEDS) if ": error: " in o]
    assert [o.split(": error: ")[0] for o in out] == ["t.yaml:19:15", "t.yaml:19:37"]
    assert "picking the option X such that 2X is also shown finds the key in" in out[0]
    assert "(chance: 25%)" in out[0]


def test_threat_double_also_shown_heuristic_finds_the_key_only_by_chance(shipped):
    for bank_item in computed_choice_items(shipped):
        hit = sum(double_heuristic(make_variant(bank_item, seed)) for seed in range(SEEDS)) / SEEDS
        assert hit < 0.25 + 0.1, (bank_item.id, hit)
    bp = shipped.items["bp-output-delta-choice"]
    assert "loss_factor" not in bp.model.mistakes  # the mistake that was always 2x the key


# -- a distractor at a fixed ratio or offset of the key


@pytest.mark.parametrize("body,expected", [
    # loss_factor with one output unit: mse's delta is exactly twice half_sse's
    (DELTA, "t.yaml:19:37: error: delta-choice: distractor 'loss_factor' is always 2 x the key (in "),
    # one SGD step with a fixed gradient: ascent lands exactly 2 * 0.1 * 0.5 above the key
    (SGD, "t.yaml:14:16: error: sgd-choice: distractor 'gradient_ascent' is always the key + 0.1 (in "),
])
def test_threat_fixed_ratio_distractor_is_flagged(tmp_path, body, expected):
    out = lint(tmp_path, body, seeds=SEEDS)
    assert [o for o in out if o.startswith(expected)], out
    assert all("seeds that show it); spotting the pair gives the key away" in o for o in out if "always" in o)


def test_threat_fixed_ratio_distractor_none_in_the_shipped_options(shipped):
    for bank_item in computed_choice_items(shipped):
        ratios: dict[str, list[float]] = {}
        for seed in range(SEEDS):
            v = make_variant(bank_item, seed)
            key = v.sources[v.answer][1]
            for oid, (source, value) in v.sources.items():
                if oid != v.answer and key != 0:
                    ratios.setdefault(source, []).append(value / key)
        for source, r in ratios.items():
            assert max(r) - min(r) > 0.05 * max(abs(x) for x in r), (bank_item.id, source)


def test_computed_options_keep_the_calculator_key_and_never_print_the_same(shipped):
    for bank_item in computed_choice_items(shipped):
        for seed in range(SEEDS):
            v = make_variant(bank_item, seed)
            texts = [o.text for o in v.choices]
            assert len(set(texts)) == len(texts) and len({float(t) for t in texts}) == len(texts)
            shown = next(o.text for o in v.choices if o.id == v.answer)
            assert shown == fmt(resolve(v.result, bank_item.model.answer), bank_item.model.digits)
            for mistake, oid in v.buggy.items():  # a shown mistake is graded as that mistake
                assert oid in {o.id for o in v.choices} and oid != v.answer


# -- attempt 2 repeats attempt 1's items: the validator says when a pool cannot avoid it

GOOD = item("""\
    - {id: a1, type: true_false, prompt: A?, answer: true, explanation: Yes.}
    - {id: a2, type: true_false, prompt: B?, answer: true, explanation: Yes.}
    - {id: a3, type: true_false, prompt: C?, answer: true, explanation: Yes.}
""")


@pytest.mark.parametrize("quiz,expected", [
    # 3 attempts of 2 items each from a pool of 3
    ("id: q\ntitle: Q\nmax_attempts: 3\nslots:\n  - {topic: t, count: 2}\n",
     ["quizzes/q.yaml:3:15: warning: quiz q: with repeats: avoid, 3 attempts run out of slot 1's pool of 3 items "
      "(it draws 2 per attempt); later attempts redraw the items a student met longest ago: widen the pool, "
      "lower max_attempts, or set repeats: allow"]),
    # said to be intended, or one attempt only: nothing to say
    ("id: q\ntitle: Q\nmax_attempts: 3\nrepeats: allow\nslots:\n  - {topic: t, count: 2}\n", []),
    ("id: q\ntitle: Q\nmax_attempts: 1\nslots:\n  - {topic: t, count: 2}\n", []),
    # two slots that fit alone but not together
    ("id: q\ntitle: Q\nmax_attempts: 2\nslots:\n  - {topic: t, count: 1}\n  - {items: [a1, a2], count: 1}\n",
     ["quizzes/q.yaml:3:15: warning: quiz q: with repeats: avoid, 2 attempts run out of the pools' 3 items "
      "together (2 per attempt); later attempts redraw the items a student met longest ago: widen the pool, "
      "lower max_attempts, or set repeats: allow"]),
])
def test_threat_attempt_2_repeats_attempt_1_items_when_the_pool_is_too_small(tmp_path, quiz, expected):
    assert lint(tmp_path, GOOD, quiz=quiz) == expected
