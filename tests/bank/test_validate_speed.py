"""The validator's shortcuts give what the long way gives: a slipped parameter patched into the parsed
task (bank.slip) answers as substituting and parsing the slipped spec does, and a buggy calculator
said to leave a quantity unchanged (calc.mistakes.unchanged_at) computes exactly the true value there.

Checked over every calculated item of the shipped banks, on a few seeds each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.core import VariantError, calculate, memo, parse_path, resolve, values_for
from quizengine.bank.rules import _downstream, _shown_values, _slips
from quizengine.bank.slip import Reparse, patcher, slipped_answer
from quizengine.calc.mistakes import MISTAKES, buggy_result, unchanged_at

BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = range(6)


@pytest.fixture(scope="module")
def calculated():
    cat = load_catalog([BANKS])
    return [i for i in cat.items.values() if getattr(i.model, "calc", None) is not None]


def _long_way(item, seed, env, name, value):
    slipped = dict(env)
    slipped[name] = value
    try:
        with np.errstate(all="ignore"):
            return calculate(item, seed, slipped)[3]
    except VariantError as e:
        return ("refused", str(e))


def test_a_patched_slip_answers_as_the_reparsed_spec(calculated):
    patched = 0
    for item in calculated:
        m = item.model
        if not isinstance(getattr(m, "answer", None), str):
            continue
        for name in _shown_values(m):
            patch = None if _downstream(m, name) else patcher(m.calc, name)
            if patch is None:
                continue
            for seed in SEEDS:
                env = values_for(item, seed)
                spec, task, _, _ = calculate(item, seed, env)
                for how, value in _slips(env[name]):
                    try:
                        with np.errstate(all="ignore"):
                            fast = slipped_answer(item, seed, patch, task, spec, value)
                    except Reparse:
                        continue
                    except VariantError as e:
                        fast = ("refused", str(e))
                    slow = _long_way(item, seed, env, name, value)
                    assert type(fast) is type(slow) and fast == slow, (item.id, seed, name, how)
                    patched += 1
    assert patched > 500  # the banks' weights, inputs, params and gradients are patched, not only reparsed


def test_a_parameter_the_spec_reaches_through_a_learning_rate_is_reparsed():
    calc = {"network": {"layers": [{"weights": "$W", "bias": [0.0], "activation": "linear"}], "loss": "mse"},
            "input": "$x", "target": [1.0], "update": {"learning_rate": "$W"}}
    assert patcher(calc, "W") is None
    assert patcher(calc, "x") is not None
    assert patcher(calc, "missing") is None


def test_a_mistake_said_to_leave_a_quantity_unchanged_computes_it_bit_for_bit(calculated):
    checked = 0
    for item in calculated:
        paths = [item.model.answer] if isinstance(getattr(item.model, "answer", None), str) else \
            [p.answer for p in getattr(item.model, "parts", [])]
        for seed in SEEDS:
            with memo():
                try:
                    _, task, result, _ = calculate(item, seed, values_for(item, seed), read_answer=False)
                except VariantError:
                    continue
                for path in paths:
                    for mistake in MISTAKES:
                        if not unchanged_at(task, mistake, parse_path(path)):
                            continue
                        res = buggy_result(task, mistake)
                        assert res is not None, (item.id, seed, mistake)
                        assert resolve(res, path) == resolve(result, path), (item.id, seed, path, mistake)
                        checked += 1
    assert checked > 200
