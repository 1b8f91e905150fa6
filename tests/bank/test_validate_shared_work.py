"""The validator's shared work outside the calculated-item rules gives what the plain way gives, on every
shipped item: a multi-part seed's ECF chains kept by their given values (one run per distinct chain),
a multi-part item's buggy answers compared with its keys without arrays, each formula's MathML
conversion tried once, a figure's numbers read without rendering the prompt, and, with several
processes, the sample figures drawn by the main process rather than by the workers."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from quizengine.bank import figures, render
from quizengine.bank.catalog import load_catalog
from quizengine.bank.core import Variant, calculate, values_for
from quizengine.bank.ecf import signature
from quizengine.bank.types import item_type
from quizengine.bank.types import multipart as multipart_type
from quizengine.bank.types.multipart_review import ECF_SEEDS, _slip_refused
from quizengine.bank.validate import check_item, validate_paths
from quizengine.bank.variant import make_variant
from quizengine.calc import engine
from quizengine.tolerance import numbers_match

BANKS = Path(__file__).resolve().parents[2] / "banks"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def _chain_variant(item, seed):
    kind = item_type("multipart")
    v = Variant(item=item, seed=seed, kind=kind, values=values_for(item, seed))
    v.spec, v.task, v.result, _ = calculate(item, seed, v.values, read_answer=False)
    kind.build(v, None)
    return v


def test_a_seeds_ecf_chains_shared_by_their_given_values_give_the_same_warnings(catalog, monkeypatch):
    runs = {"n": 0}
    real = engine.run_task

    def counted(task):
        runs["n"] += 1
        return real(task)

    monkeypatch.setattr("quizengine.bank.ecf.run_task", counted)
    chains = [i for i in catalog.items.values() if i.model.type == "multipart"]
    assert len(chains) >= 12
    checked = plain_runs = shared_runs = 0
    for item in chains:
        for seed in range(ECF_SEEDS):
            v = _chain_variant(item, seed)
            runs["n"] = 0
            plain = [_slip_refused(v, k) for k in v.payload.parts]
            plain_runs += runs["n"]
            runs["n"], kept = 0, {}
            shared = [_slip_refused(v, k, kept) for k in v.payload.parts]
            shared_runs += runs["n"]
            assert shared == plain, (item.id, seed)
            assert all(isinstance(s, tuple) and s[0] == "z" for s in kept)  # keys as ecf.signature makes them
            checked += len(plain)
    assert checked > 2000
    assert shared_runs < plain_runs / 3, (shared_runs, plain_runs)  # parts share their first dependency's slip


def test_the_signature_tells_given_values_apart_bit_for_bit():
    import numpy as np

    a = {"layers[0].a": np.array([0.1, 0.2])}
    b = {"layers[0].a": np.array([0.1, np.nextafter(0.2, 1.0)])}
    c = {"layers[0].z": np.array([0.1, 0.2])}
    assert len({signature(a, "z"), signature(b, "z"), signature(c, "z"), signature(a, "a")}) == 4


def test_every_shipped_chain_builds_the_same_buggy_answers_as_with_arrays(catalog, monkeypatch):
    chains = [i for i in catalog.items.values() if i.model.type == "multipart"]
    fast = {(i.id, s): _chain_variant(i, s).payload for i in chains for s in range(100)}
    monkeypatch.setattr(multipart_type, "match", lambda x, a, tol: numbers_match(x, a, tol))
    found = 0
    for (item_id, seed), payload in fast.items():
        plain = _chain_variant(catalog.items[item_id], seed).payload
        assert [(k.answer, k.mistakes) for k in payload.parts] == [(k.answer, k.mistakes) for k in plain.parts], \
            (item_id, seed)
        found += sum(len(k.mistakes) for k in plain.parts)
    assert found > 1000  # buggy answers told apart from the keys, not an empty comparison


def test_a_chains_parts_depend_on_the_parts_its_own_graph_says_on_every_seed(catalog):
    """Within the memo every seed of one calculator graph shares its parts' dependencies (ecf.graph_key):
    the same as asking ecf.depends of the seed's own task, part by part."""
    from quizengine.bank.core import memo
    from quizengine.bank.ecf import depends

    chains = [i for i in catalog.items.values() if i.model.type == "multipart"]
    pairs = 0
    for item in chains:
        parts = item.model.parts
        with memo():
            for seed in range(100):
                v = _chain_variant(item, seed)
                plain = [tuple(j for j, q in enumerate(parts[:i]) if q.id in p.depends_on) if p.depends_on is not None
                         else tuple(j for j, q in enumerate(parts[:i]) if depends(v.task, p.answer, q.answer))
                         for i, p in enumerate(parts)]
                assert [k.deps for k in v.payload.parts] == plain, (item.id, seed)
                pairs += sum(map(len, plain))
    assert pairs > 5000


def _plain_math_errors(text):
    bad = []
    for tok in render._markdown().parse(text):
        for t in tok.children or [tok]:
            if t.type.startswith("math"):
                try:
                    render.latex_to_mathml(t.content)
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{t.content!r} ({type(e).__name__}: {e})")
    return bad


def test_math_errors_tried_once_per_formula_say_what_converting_each_says(catalog):
    texts = [getattr(i.model, k) or "" for i in catalog.items.values() for k in ("prompt", "explanation")]
    texts += ["$\\frac{1}{$ and $x^$ then $\\frac{1}{$ again", "$$\\begin{bmatrix} 1 \\\\ $$ and $\\sigma(z)$"]
    for _ in range(2):  # the second time from the cache
        for text in texts:
            assert render.math_errors(text) == _plain_math_errors(text), text
    assert len(render.math_errors(texts[-2])) == 3


def _figure_items(catalog):
    return [i for i in catalog.items.values() if i.model.figures]


def test_every_shipped_figure_reads_the_numbers_of_the_whole_variant_on_200_seeds(catalog):
    items = _figure_items(catalog)
    assert len(items) >= 28 and any(not item_type(i.model.type).single_answer_path for i in items)
    for item in items:
        for seed in range(200):
            v = make_variant(item, seed)
            fast = figures.prepare(item, *figures._numbers(item, seed))
            assert pickle.dumps(fast) == pickle.dumps(figures.prepare(item, v.values, v.task, v.result)), (item.id, seed)


def test_figures_left_for_later_are_the_ones_drawn_in_place(catalog):
    for item in _figure_items(catalog):
        later: list = []
        assert figures.check(item, 20, later) == figures.check(item, 20) == []
        assert [s for s, _ in later] == list(figures.DRAW_SEEDS)
        for seed, drawings in later:
            drawn_later = figures.draw(item, seed, pickle.loads(pickle.dumps(drawings)))  # as a worker sends them
            assert drawn_later == figures.build(make_variant(item, seed))
        assert check_item(item, 3, [], later=[]) == check_item(item, 3, [])


def test_with_two_processes_the_main_process_draws_every_sample_figure(tmp_path, monkeypatch):
    folder = tmp_path / "banks"
    folder.mkdir()
    shutil.copy(BANKS / "activation-functions.yaml", folder)
    shutil.copy(BANKS / "momentum-optimizers.yaml", folder)
    log = tmp_path / "drawn"
    real = figures.draw

    def logged(item, seed, drawings, when=None):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {item.id}\n")
        return real(item, seed, drawings, when)

    monkeypatch.setattr(figures, "draw", logged)
    one = validate_paths([folder], seeds=10, jobs=1)
    log.unlink()
    two = validate_paths([folder], seeds=10, jobs=2)
    assert [str(p) for p in two.problems] == [str(p) for p in one.problems]
    assert two.report == one.report
    drawn = [line.split() for line in log.read_text().splitlines()]
    with_figures = sorted(i.id for i in two.items.values() if i.model.figures)
    assert len(with_figures) >= 8
    assert sorted(item_id for _, item_id in drawn) == with_figures  # each once (DRAW_SEEDS is one seed)
    assert {int(pid) for pid, _ in drawn} == {os.getpid()}  # by this process, none by a worker
