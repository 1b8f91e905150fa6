"""``items`` and ``preview`` for multi-part chains (CONTRACT section 3a), and the shipped chains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from quizengine.bank.catalog import load_catalog
from quizengine.bank.ecf import with_given
from quizengine.bank.variant import make_variant, resolve
from quizengine.calc.engine import run_task
from quizengine.cli import main
from quizengine.grading import grade

BANKS = Path(__file__).resolve().parents[1] / "banks"


def test_items_lists_the_chains_as_multipart(runner):
    r = runner.invoke(main, ["items", "--topic", "chains", "--json", "--banks", str(BANKS)])
    assert r.exit_code == 0, r.output
    items = json.loads(r.output)
    assert len(items) >= 12 and {i["type"] for i in items} == {"multipart"}
    assert all(i["calculated"] and i["parametrized"] for i in items)


def test_preview_gives_the_parts_and_the_spec_with_this_seeds_numbers(runner):
    r = runner.invoke(main, ["preview", "chain-opt-momentum", "--seed", "3", "--json", "--banks", str(BANKS)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["type"] == "multipart" and [p["id"] for p in d["parts"]] == ["v1", "w1", "v2", "w2"]
    for p in d["parts"]:
        assert {"id", "prompt", "answer", "answer_path", "tolerance", "points", "ecf"} <= set(p)
        assert d["answer"][p["id"]] == p["answer"]
    spec = d["spec"]
    assert "$" not in json.dumps(spec)  # every parameter substituted
    # the key follows from the spec by the momentum rule: v1 = -lr g1, w1 = w0 + v1
    lr, w0, g1 = spec["optimizer"]["learning_rate"], np.array(spec["params"]), np.array(spec["gradients"][0])
    assert np.allclose(d["parts"][0]["answer"], -lr * g1) and np.allclose(d["parts"][1]["answer"], w0 - lr * g1)
    assert [p["depends_on"] for p in d["parts"]] == [[], ["v1"], ["v1"], ["v1", "w1", "v2"]]


def test_the_shipped_chains_cover_the_issue():
    cat = load_catalog([BANKS / "chains.yaml"])
    items = list(cat.items.values())
    networks = [i for i in items if "network" in i.model.calc]
    optimizers = [i for i in items if "optimizer" in i.model.calc]
    assert len(networks) >= 8 and len(optimizers) >= 4
    acts = {l["activation"] for i in networks for l in i.model.calc["network"]["layers"]}
    assert {"relu", "softmax"} <= acts
    assert any(i.model.calc["network"]["loss"] == "categorical_crossentropy" for i in networks)
    names = {i.model.calc["optimizer"]["name"] for i in optimizers}
    assert "adam" in names and any(i.model.calc["optimizer"].get("momentum") for i in optimizers)
    for i in items:  # every part states its precision in its prompt, and the page states the tolerance
        for p in i.model.parts:
            assert "significant figures" in p.prompt or "decimal places" in p.prompt, (i.id, p.id)


def test_every_shipped_chain_gives_ecf_after_a_slip_in_its_first_part():
    """No degenerate variants: a 20% slip in part 1, carried on correctly, keeps most of the points."""
    cat = load_catalog([BANKS / "chains.yaml"])
    for item in cat.items.values():
        for seed in range(5):
            v = make_variant(item, seed)
            first = v.payload.parts[0]
            wrong = np.asarray(first.answer, dtype=np.float64) * 1.2 + 0.05
            result = run_task(with_given(v.task, {first.part.answer: wrong}))
            response = {first.part.id: wrong.tolist()}
            response.update({k.part.id: resolve(result, k.part.answer) for k in v.payload.parts[1:]})
            g = grade(v, response)
            lost = sum(p["max_score"] - p["score"] for p in g.parts)
            assert lost <= first.part.points + 1e-9, (item.id, seed, [p for p in g.parts if p["score"] < p["max_score"]])
