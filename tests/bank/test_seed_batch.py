"""The batched calculator (calc/batch.py, calc/batch_mistakes.py) gives every seed the numbers the
per-seed calculator gives, bit for bit, on every shipped calculated item and all 200 seeds: the true
run (every quantity of the result), every buggy calculator, and every parameter slip the validator
patches in (bank/seedbatch.py), compared as bytes."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.core import _MEMO, VariantError, buggy_answers, calculate, memo, values_for
from quizengine.bank.rules import SeedChecks, _slips
from quizengine.bank.seedbatch import SKIP, SeedBatch
from quizengine.calc.batch import NetBatch, OptBatch, stack
from quizengine.calc.batch_mistakes import buggy, run
from quizengine.calc.engine import run_task
from quizengine.calc.mistakes import MISTAKES, buggy_result

BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = 200
pytestmark = pytest.mark.slow  # about a minute of CPU: every calculated item, 200 seeds


@pytest.fixture(scope="module")
def seeded():
    """(item, tasks, results, answers, specs, envs) of every calculated item whose seeds all calculate."""
    cat = load_catalog([BANKS])
    out = []
    for item in cat.items.values():
        if getattr(item.model, "calc", None) is None:
            continue
        rows = []
        with memo():
            try:
                for seed in range(SEEDS):
                    env = values_for(item, seed)
                    spec, task, result, answer = calculate(item, seed, env, read_answer=isinstance(item.model.answer, str)
                                                           if hasattr(item.model, "answer") else False)
                    rows.append((task, result, answer, spec, env))
            except VariantError:
                continue
        out.append((item, *[[r[i] for r in rows] for i in range(5)]))
    return out


@pytest.fixture(scope="module")
def plain_buggy(seeded):
    """mistakes.buggy_result of every seed's task and every mistake, run seed by seed once for the module."""
    return {(id(task), mistake): buggy_result(task, mistake)
            for _, tasks, *_ in seeded for task in tasks for mistake in MISTAKES}


def _bytes(v):
    """A value as bytes: its type and every float's 8 bytes (so -0.0 and 0.0 differ, as do NaNs)."""
    if isinstance(v, float):
        return b"f" + struct.pack(">d", v)
    if isinstance(v, list):
        return b"[" + b"".join(_bytes(x) for x in v) + b"]"
    if isinstance(v, np.ndarray):
        return b"a" + str(v.shape).encode() + v.astype(np.float64).tobytes()
    return repr(type(v)).encode() + repr(v).encode()


def _json(batch, res, s):
    """Seed s's result as run_task's JSON, read from a batched result."""
    if isinstance(batch, NetBatch):
        ex = (lambda v: v[s, 0].tolist()) if batch.single else (lambda v: v[s].tolist())
        layers = []
        for lr in res["layers"]:
            d = {"z": ex(lr["z"]), "a": ex(lr["a"]), "delta": ex(lr["delta"]), "dW": lr["dW"][s].tolist(),
                 "db": lr["db"][s].tolist()}
            if "W_new" in lr:
                d["W_new"], d["b_new"] = lr["W_new"][s].tolist(), lr["b_new"][s].tolist()
            layers.append(d)
        return {"output": ex(res["layers"][-1]["a"]), "loss": res["loss"][s], "layers": layers}
    if isinstance(batch, OptBatch):
        return {"steps": [{k: step[k][s].tolist() for k in ("gradient", "params", "velocity", "second_moment") if k in step}
                          for step in res]}
    return {"value": res["value"][s].tolist(), "derivative": res["derivative"][s].tolist()}


def _same_json(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    return _bytes(a) == _bytes(b)


def test_the_true_run_and_every_buggy_calculator_give_every_seed_its_own_numbers(seeded, plain_buggy):
    batched = compared = 0
    for item, tasks, results, _, _, _ in seeded:
        batch = stack(tasks)
        if batch is None:
            continue
        batched += 1
        with np.errstate(all="raise"):
            true = run(batch)
        for s in range(len(tasks)):
            assert _same_json(_json(batch, true, s), results[s]), (item.id, s)
        for mistake in MISTAKES:
            res, applies = buggy(batch, mistake)
            for s, task in enumerate(tasks):
                plain = plain_buggy[(id(task), mistake)]
                assert applies[s] == (plain is not None), (item.id, mistake, s)
                if plain is not None:
                    assert _same_json(_json(batch, res, s), plain), (item.id, mistake, s)
                    compared += 1
    assert batched >= 90  # networks, optimizers and activations; a multi-part item's chain too
    assert compared > 80_000


def test_the_validator_gets_each_seeds_buggy_answers_and_slips_as_the_per_seed_way(seeded, plain_buggy):
    """SeedBatch.buggy is core.buggy_answers, and every slip the batch answers is what SeedChecks._slipped
    (the patch or the reparse) answers, or SKIP where that raises or is not finite; each seed's
    comparisons made for all seeds at once (SeedBatch.verdicts, slip_verdict) are seedcmp.same's and match's."""
    from quizengine.bank.core import finite
    from quizengine.bank.seedcmp import match, same

    def verdict(value, key, tol):
        differs = not same(value, key)
        return differs, differs and match(value, key, tol)

    slips = buggies = verdicts = 0
    for item, tasks, results, answers, specs, envs in seeded:
        m = item.model
        if not isinstance(getattr(m, "answer", None), str):
            continue
        batch = SeedBatch(item, tasks, results, answers, specs)
        checks = SeedChecks(item, len(tasks))
        checks.prepare(batch, envs)
        for s, task in enumerate(tasks):
            fast = batch.buggy(s)
            with memo():  # the per-seed buggy results, run once for the module
                _MEMO.get().update({("buggy", id(task), k): (task, plain_buggy[(id(task), k)]) for k in MISTAKES})
                plain = list(buggy_answers(task, m.answer, answers[s], list(MISTAKES), results[s]))
            assert [k for k, _ in fast] == [k for k, _ in plain], (item.id, s)
            assert all(_bytes(a) == _bytes(b) for (_, a), (_, b) in zip(fast, plain)), (item.id, s)
            assert batch.verdicts(s) == [(k, *verdict(v, answers[s], m.tolerance)) for k, v in plain], (item.id, s)
            buggies += len(fast)
        for (s, name, how), got in batch.slips.items():
            value = dict(_slips(envs[s][name]))[how]
            with memo():
                try:
                    want = checks._slipped(s, envs[s], name, value, tasks[s], specs[s])
                    want = want if finite(want) else SKIP
                except (VariantError, ValueError, FloatingPointError):
                    want = SKIP
            assert (got is SKIP) == (want is SKIP) and (got is SKIP or _bytes(got) == _bytes(want)), (item.id, s, name, how)
            compared = batch.slip_verdict(s, name, how)
            assert compared is None or compared == verdict(want, answers[s], m.tolerance), (item.id, s, name, how)
            slips += 1
            verdicts += compared is not None
    assert buggies > 50_000
    assert slips > 30_000 and verdicts > 30_000


def test_the_memo_filled_from_one_batched_run_holds_each_seeds_own_calculation(seeded, plain_buggy, monkeypatch):
    """bank.seedrun.prefill puts in the memo, for every seed, the values, spec, result and answer the
    per-seed values_for and calculate give, and for a chain or a single-choice item every listed
    mistake's buggy result (mistakes.buggy_result). Compared as pickles: every float's 8 bytes (-0.0
    apart from 0.0), every type, the order of the keys. (The parsed specs are the plain way's, reused:
    prefill parses with the same function.)"""
    from quizengine.bank import seedrun
    from quizengine.bank.types import item_type

    items = filled = buggies = 0
    for item, tasks, results, answers, specs, envs in seeded:
        multipart = not item_type(item.model.type).single_answer_path
        monkeypatch.setattr(seedrun, "parsed", lambda _, seed, env: (specs[seed], tasks[seed], None))
        with memo():
            cache = _MEMO.get()
            seedrun.prefill(item, SEEDS, multipart)
            for s, env in enumerate(envs):  # every parameter drawn for all seeds at once (params.draw_seeds)
                assert pickle.dumps(cache[("values", id(item), s)][1]) == pickle.dumps(env), (item.id, s)
            mine = [cache.get(("calculate", id(item), s, not multipart)) for s in range(len(tasks))]
            items += mine[0] is not None
            for s, hit in enumerate(mine):
                if hit is None:
                    continue
                spec, task, result, answer = hit
                assert type(task) is type(tasks[s]), (item.id, s)
                assert pickle.dumps((spec, result, answer)) == pickle.dumps((specs[s], results[s], answers[s])), (item.id, s)
                filled += 1
            for key, (task, res) in [(k, v) for k, v in cache.items() if k[0] == "buggy"]:
                assert pickle.dumps(res) == pickle.dumps(plain_buggy[(id(task), key[2])]), (item.id, key[2])
                buggies += 1
    assert items >= 90 and filled == items * SEEDS  # every network, optimizer and activation item, every seed
    assert buggies > 3000  # the chains' listed mistakes
