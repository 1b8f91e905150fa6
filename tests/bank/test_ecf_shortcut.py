"""The short-cuts of ECF grading (bank/ecf_fast.py: pruned givens, one shifted run for the constant
guard) give the same marks as grading without them: every chain in the shipped banks and some
made-up ones, many seeds, a table of response patterns (slips carried on or not, rounded, zeroed,
saturated, unreadable, missing, f' from the student's own a), compared part by part with the
reference graded with ``shortcut=False``. The short-cuts must also be taken, not stepped around."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank import ecf
from quizengine.bank.catalog import load_catalog
from quizengine.bank.ecf import recompute, shift, with_given
from quizengine.bank.ecf_fast import Shortcuts
from quizengine.bank.ecf_grade import grade_parts
from quizengine.bank.variant import make_variant, resolve
from quizengine.calc.engine import run_task

BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = range(4)


def slipped(x, factor: float = 1.2):
    return (np.asarray(x, dtype=np.float64) * factor + 0.05).tolist()


def carried(v, given: dict, derivative: str = "z"):
    """The chain from ``given`` (part index -> value): every part's value on it, or None."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            chain = run_task(with_given(v.task, {v.payload.parts[i].part.answer: x for i, x in given.items()}, derivative))
        return [resolve(chain, k.part.answer) for k in v.payload.parts]
    except Exception:  # noqa: BLE001 - a slip the calculator refuses: that pattern is left out
        return None


def patterns(v):
    """(name, response) pairs: each a way a student's answers can relate to the chains."""
    ks = v.payload.parts
    ids = [k.part.id for k in ks]
    true = [k.answer for k in ks]
    n = len(ks)
    out = [("all right", dict(zip(ids, true))),
           ("all wrong on their own", {i: slipped(x, 1.1) for i, x in zip(ids, true)}),
           ("every other part missing", {i: x for j, (i, x) in enumerate(zip(ids, true)) if j % 2} | {ids[0]: slipped(true[0])}),
           ("unreadable first part", {ids[0]: "abc", **{i: slipped(x) for i, x in zip(ids[1:], true[1:])}}),
           ("a zero first part", {ids[0]: (np.zeros_like(np.asarray(true[0], dtype=float))).tolist(),
                                  **{i: slipped(x) for i, x in zip(ids[1:], true[1:])}})]
    for j in range(n - 1):
        for name, factor in (("slip", 1.2), ("big slip", 40.0), ("sign slip", -1.0)):
            chain = carried(v, {j: slipped(true[j], factor)})
            if chain is None:
                continue
            resp = dict(zip(ids, true[:j] + [slipped(true[j], factor)] + chain[j + 1:]))
            out.append((f"{name} in part {j + 1} carried on", resp))
            rounded = {i: np.round(np.asarray(x, dtype=float), 3).tolist() for i, x in resp.items()}
            out.append((f"{name} in part {j + 1} carried on, rounded to 3 places", rounded))
            out.append((f"{name} in part {j + 1}, later parts true", {**dict(zip(ids, true)), ids[j]: resp[ids[j]]}))
            if j + 2 < n:  # a second slip two parts on, itself carried on
                second = carried(v, {j: slipped(true[j], factor), j + 2: slipped(chain[j + 2], 0.9)})
                if second is not None:
                    out.append((f"{name} in parts {j + 1} and {j + 3} carried on",
                                dict(zip(ids, true[:j] + [slipped(true[j], factor)] + chain[j + 1:j + 2]
                                         + [slipped(chain[j + 2], 0.9)] + second[j + 3:]))))
            own_a = carried(v, {j: slipped(true[j], factor)}, "a")
            if own_a is not None and own_a != chain:
                out.append((f"{name} in part {j + 1} carried on with f' from a",
                            dict(zip(ids, true[:j] + [slipped(true[j], factor)] + own_a[j + 1:]))))
    return out


def assert_same(v, response, label):
    fast = [r.to_json() for r in grade_parts(v, response)]
    full = [r.to_json() for r in grade_parts(v, response, shortcut=False)]
    assert fast == full, f"{v.item.model.id} seed {v.seed}: {label}"
    assert json.dumps(fast) == json.dumps(full)  # plain JSON (stored as it is), the same to the last digit


CATALOG = load_catalog([BANKS])
CHAINS = sorted(i for i, item in CATALOG.items.items() if item.model.type == "multipart")


def test_the_banks_have_chains():
    assert len(CHAINS) >= 12


@pytest.mark.parametrize("item_id", CHAINS)
def test_shortcuts_give_the_marks_of_the_full_recomputation(item_id):
    compared = 0
    for seed in SEEDS:
        v = make_variant(CATALOG.items[item_id], seed)
        for label, response in patterns(v):
            assert_same(v, response, label)
            compared += 1
    assert compared >= 4 * len(SEEDS) * (len(v.payload.parts) - 1)


def count_runs(monkeypatch) -> list[int]:
    runs = [0]
    real = ecf.run_task

    def counted(task):
        runs[0] += 1
        return real(task)

    monkeypatch.setattr(ecf, "run_task", counted)
    monkeypatch.setattr("quizengine.bank.ecf_fast.run_task", counted)
    return runs


def test_a_slip_carried_on_takes_the_shortcuts(monkeypatch):
    """A slip in part 1 carried through a 9-part chain: two runs (its chain, and the chain moved by
    the constant guard), not two per part on ECF as without the short-cuts."""
    v = make_variant(CATALOG.items["chain-bp-221-sigmoid"], 0)
    ks = v.payload.parts
    chain = carried(v, {0: slipped(ks[0].answer)})
    response = {k.part.id: x for k, x in zip(ks, [slipped(ks[0].answer)] + chain[1:])}
    runs = count_runs(monkeypatch)
    fast = grade_parts(v, response)
    shortcut_runs, runs[0] = runs[0], 0
    full = grade_parts(v, response, shortcut=False)
    assert [r.to_json() for r in fast] == [r.to_json() for r in full]
    assert sum(r.ecf for r in fast) >= len(ks) - 2  # (a later part may be right on the true chain too)
    assert shortcut_runs == 2
    assert runs[0] >= 2 * sum(r.ecf for r in fast)  # its own chain and a moved one for each part on ECF


# Chains the banks do not have: parts out of the calculator's order, partial paths, the same
# quantity twice, explicit depends_on, dropout, a spec with its own given value, an optimizer with
# weight decay (its moments depend on the parameters), adam (two moments computed together) and
# adamw with an L1 penalty.
ODD = """
  - id: odd-net
    type: multipart
    prompt: Parts out of order.
    calc:
      network:
        layers:
          - {weights: [[0.1, -0.2], [0.3, 0.4]], bias: [0.05, 0.0], activation: tanh, dropout: {rate: 0.5, mask: [1, 0]}}
          - {weights: [[0.5, 0.2], [-0.5, 0.1]], bias: [0.0, 0.1], activation: softmax}
        loss: categorical_crossentropy
      input: [1.0, 2.0]
      target: [0.0, 1.0]
      update: {learning_rate: 0.5}
    parts:
      - {id: a1, prompt: a1, answer: "layers[0].a"}
      - {id: z1, prompt: z1, answer: "layers[0].z"}
      - {id: z2a, prompt: z2 first, answer: "layers[1].z[0]"}
      - {id: z2b, prompt: z2 second, answer: "layers[1].z[1]", depends_on: [a1, z2a]}
      - {id: out, prompt: output, answer: "output"}
      - {id: a2, prompt: a2 again, answer: "layers[1].a"}
      - {id: loss, prompt: loss, answer: loss}
      - {id: d2, prompt: d2, answer: "layers[1].delta"}
      - {id: db2, prompt: db2, answer: "layers[1].db"}
      - {id: w1new, prompt: W1 new, answer: "layers[0].W_new"}
      - {id: d1, prompt: d1, answer: "layers[0].delta", depends_on: [d2]}
      - {id: b2new, prompt: b2 new, answer: "layers[1].b_new"}
  - id: odd-given
    type: multipart
    prompt: A spec with its own given value.
    calc:
      network:
        layers:
          - {weights: [[0.1, 0.2], [0.3, 0.4]], bias: [0.0, 0.0], activation: sigmoid}
          - {weights: [[0.5], [-0.5]], bias: [0.0], activation: sigmoid}
        loss: binary_crossentropy
      input: [[1.0, 2.0], [0.5, -1.0]]
      target: [[1.0], [0.0]]
      given: {"layers[0].z[1]": [0.2, -0.3]}
    parts:
      - {id: z1, prompt: z1, answer: "layers[0].z"}
      - {id: a1, prompt: a1, answer: "layers[0].a"}
      - {id: yhat, prompt: yhat, answer: "output"}
      - {id: loss, prompt: loss, answer: loss}
      - {id: d2, prompt: d2, answer: "layers[1].delta"}
      - {id: dw1, prompt: dW1, answer: "layers[0].dW"}
  - id: odd-decay
    type: multipart
    prompt: Momentum with weight decay on a quadratic.
    calc:
      optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9, weight_decay: 0.1}
      params: [1.0, -2.0]
      objective: {quadratic: {A: [[2.0, 0.5], [0.5, 1.0]], b: [1.0, 0.0]}}
      steps: 3
    parts:
      - {id: g1, prompt: g1, answer: "steps[0].gradient"}
      - {id: v1, prompt: v1, answer: "steps[0].velocity"}
      - {id: w1, prompt: w1, answer: "steps[0].params"}
      - {id: g2, prompt: g2, answer: "steps[1].gradient"}
      - {id: w2, prompt: w2, answer: "steps[1].params"}
      - {id: v3, prompt: v3, answer: "steps[2].velocity"}
      - {id: w3, prompt: w3, answer: "steps[2].params[1]"}
  - id: odd-adam
    type: multipart
    prompt: Adam, two moments.
    calc:
      optimizer: {name: adam, learning_rate: 0.1}
      params: [1.0, -2.0]
      gradients: [[0.5, -0.1], [0.4, 0.2], [0.1, 0.3]]
    parts:
      - {id: m1, prompt: m1, answer: "steps[0].velocity"}
      - {id: s1, prompt: s1, answer: "steps[0].second_moment"}
      - {id: w1, prompt: w1, answer: "steps[0].params"}
      - {id: s2, prompt: s2, answer: "steps[1].second_moment"}
      - {id: m2, prompt: m2, answer: "steps[1].velocity"}
      - {id: w2, prompt: w2, answer: "steps[1].params"}
      - {id: w3, prompt: w3, answer: "steps[2].params"}
  - id: odd-adamw-l1
    type: multipart
    prompt: AdamW with an L1 penalty (it couples the moments to w; w1[0] is near 0, so moving it flips its sign).
    calc:
      optimizer: {name: adamw, learning_rate: 0.1, weight_decay: 0.1, l1: 0.05}
      params: [0.02, -2.0]
      gradients: [[0.5, -0.1], [0.4, 0.2]]
    parts:
      - {id: m1, prompt: m1, answer: "steps[0].velocity"}
      - {id: w1, prompt: w1, answer: "steps[0].params"}
      - {id: s2, prompt: s2, answer: "steps[1].second_moment"}
      - {id: m2, prompt: m2, answer: "steps[1].velocity"}
      - {id: w2, prompt: w2, answer: "steps[1].params"}
"""


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    (folder / "odd.yaml").write_text("topic: odd\ntitle: Odd chains\nitems:\n" + textwrap.dedent(ODD))
    cat = load_catalog([folder])
    assert not [p for p in cat.problems if p.severity == "error"], [str(p) for p in cat.problems]
    return cat


@pytest.mark.parametrize("item_id", ["odd-net", "odd-given", "odd-decay", "odd-adam", "odd-adamw-l1"])
def test_shortcuts_agree_on_chains_out_of_the_usual_shape(odd, item_id):
    v = make_variant(odd.items[item_id], 0)
    cases = patterns(v)
    assert len(cases) > 3 * len(v.payload.parts)
    for label, response in cases:
        assert_same(v, response, label)


def same(a, b) -> bool:
    return (a is None) == (b is None) and (a is None or (a.shape == b.shape and a.tobytes() == b.tobytes()))


@pytest.fixture
def checked(monkeypatch):
    """Every pruned given and every moved value a short-cut gives, checked bit for bit against the
    recomputation it stands for (with an empty cache); counts how often each short-cut was taken."""
    seen = {"pruned": 0, "moved": 0}
    pruned, moved = Shortcuts.pruned, Shortcuts.moved

    def check_pruned(self, given, derivative):
        out = pruned(self, given, derivative)
        for k in v_parts[0]:
            if k.part.answer not in given:
                assert same(recompute(self.task, out, k.part.answer, None, derivative),
                            recompute(self.task, given, k.part.answer, None, derivative)), (k.part.id, list(given))
        seen["pruned"] += len(out) < len(given)
        return out

    def check_moved(self, path, given, derivative):
        out = moved(self, path, given, derivative)
        if out is not None:
            full = recompute(self.task, {p: shift(x, 1.0) for p, x in given.items()}, path, None, derivative)
            assert full is None or same(out, full), (path, list(given))
            seen["moved"] += 1
        return out

    v_parts: list = [[]]
    monkeypatch.setattr(Shortcuts, "pruned", check_pruned)
    monkeypatch.setattr(Shortcuts, "moved", check_moved)
    return seen, v_parts


@pytest.mark.parametrize("where, item_id", [("odd", "odd-net"), ("odd", "odd-given"), ("odd", "odd-decay"),
                                            ("odd", "odd-adam"), ("odd", "odd-adamw-l1"),
                                            ("banks", "chain-bp-322-relu-softmax"),
                                            ("banks", "chain-bp-221-sigmoid"), ("banks", "chain-opt-adam")])
def test_each_shortcut_gives_the_numbers_it_stands_for(odd, checked, where, item_id):
    """Not only the marks: the pruned chain's value at every other part, and the moved key read
    from the shared run, are bit for bit what the full recomputation gives."""
    seen, v_parts = checked
    v = make_variant((odd if where == "odd" else CATALOG).items[item_id], 1)
    v_parts[0] = v.payload.parts
    for _, response in patterns(v):
        grade_parts(v, response)
    assert seen["pruned"] > 0 and seen["moved"] > 0, seen
