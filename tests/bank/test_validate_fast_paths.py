"""The validator's per-seed fast paths give what the plain way gives, bit for bit, on every shipped
item: the seeded parameter draws (all integers of a digest read at once, a grid's cells drawn
without the per-cell loop, every seed of a parameter drawn at once), a spec substituted from its walk made once (params.substitute_spec) and
the calculator's records replaced without dataclasses' field walk (calc.records.replace), answers
compared without arrays (bank.seedcmp) and result paths followed without building error text (core.resolve)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank import seedcmp
from quizengine.bank.core import VariantError, buggy_answers, calculate, memo, values_for
from quizengine.bank.params import ParamError, draw, draw_seeds, substitute, substitute_spec
from quizengine.calc import records
from quizengine.calc.mistakes import MISTAKES
from quizengine.bank.schema import ParamSpec
from quizengine.tolerance import scalar_close

BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = range(200)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([BANKS])


def _plain_draw(item_id, seed, name, spec):
    """The draw written out plainly: one 8-byte integer of the SHAKE-256 digest after another (the digest
    doubled when used up), a grid value rounded to the grid's decimals, excluded values drawn again."""
    n = math.prod(spec.shape) if spec.shape is not None else 1
    h = hashlib.shake_256("\x1f".join(map(str, (item_id, seed, name))).encode())
    size, pos = max(8, n + 8), 0
    buf = h.digest(8 * size)

    def next_u():
        nonlocal size, pos, buf
        if pos == size:
            size *= 2
            buf = h.digest(8 * size)
        u = int.from_bytes(buf[8 * pos: 8 * pos + 8], "big")
        pos += 1
        return u

    def one():
        while True:
            u = next_u()
            if spec.choice is not None:
                v = spec.choice[u % len(spec.choice)]
            else:
                lo, hi = spec.range
                count = int(math.floor((hi - lo) / spec.step + 1e-9)) + 1
                dec = max(len(repr(float(x)).split(".")[1].rstrip("0")) if "e" not in repr(float(x)) else 12
                          for x in (lo, spec.step))
                v = round(lo + (u % count) * spec.step, dec)
                v = 0.0 if v == 0 else v
            if not (isinstance(v, (int, float)) and v in spec.exclude):
                return v

    if spec.shape is None:
        v = one()
        return np.array(v, dtype=np.float64) if isinstance(v, list) else v
    return np.array([one() for _ in range(n)], dtype=np.float64).reshape(spec.shape)


def _same(a, b):
    return type(a) is type(b) and (np.array_equal(a, b) and np.asarray(a).shape == np.asarray(b).shape
                                   if isinstance(a, np.ndarray) else a == b)


def test_every_shipped_parameter_draws_as_the_plain_way_on_200_seeds(catalog):
    """Seed by seed (draw) and every seed at once (draw_seeds, the validator's)."""
    drawn = 0
    for item in catalog.items.values():
        for name, spec in getattr(item.model, "params", {}).items():
            column = draw_seeds(item.id, len(SEEDS), name, spec)
            for seed in SEEDS:
                fast, plain = draw(item.id, seed, name, spec), _plain_draw(item.id, seed, name, spec)
                assert _same(fast, plain) and _same(column[seed], plain), (item.id, name, seed, fast, plain)
                drawn += 1
    assert drawn > 20000  # 126 items with params, 200 seeds


@pytest.mark.parametrize("spec", [
    {"range": [-1.0, 1.0], "step": 0.1, "shape": [3, 3]},
    {"range": [-1.0, 1.0], "step": 0.5, "shape": [16, 16], "exclude": [0.0, 0.5]},  # redraws past the first digest
    {"range": [0.25, 0.75], "step": 0.25, "shape": [4]},
    {"choice": [-2, 0, 3.5], "shape": [2, 5]},
    {"choice": [1, 2], "shape": [16, 16], "exclude": [1]},
    {"range": [-3.0, 3.0], "step": 1.5, "exclude": [0.0]},
    {"choice": [[1, 2], [3, 4]]},
    {"choice": [1, 2, 3], "exclude": [2]},  # a scalar from the digest's first 8 bytes, or drawn again
    {"choice": [0.5, 1.5, 2.5, True]},
    {"range": [-0.3, 0.3], "step": 0.1, "exclude": [-0.1, 0.2]},
])
def test_synthetic_grids_choices_and_exclusions_draw_as_the_plain_way(spec):
    p = ParamSpec(**spec)
    column = draw_seeds("x-item", 300, "w", p)
    for seed in range(300):
        plain = _plain_draw("x-item", seed, "w", p)
        assert _same(draw("x-item", seed, "w", p), plain) and _same(column[seed], plain), seed


def test_a_grid_with_every_value_excluded_raises_seed_by_seed_and_at_once():
    p = ParamSpec(choice=[1, 2], exclude=[1, 2])
    for way in (lambda: draw("x-item", 0, "w", p), lambda: draw_seeds("x-item", 5, "w", p)):
        with pytest.raises(ParamError, match="every value of the grid is excluded"):
            way()


def _identical(a, b):
    """The same nested value: same types all the way down, equal leaves (arrays bit for bit)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b or (a != a and b != b)


def test_every_shipped_spec_substitutes_as_the_plain_walk_on_200_seeds(catalog):
    done = 0
    for item in catalog.items.values():
        calc = getattr(item.model, "calc", None)
        if calc is None:
            continue
        for seed in SEEDS:
            env = values_for(item, seed)
            fast = substitute_spec(calc, env)
            assert _identical(fast, substitute(calc, env)), (item.id, seed)
            done += 1
    assert done >= 114 * 200


def test_a_substituted_spec_is_new_every_time_and_bad_references_raise_as_before():
    spec = {"a": [[1.0, 2.0], [3.0, "$w"]], "b": {"c": [0.5, 0.25]}, "d": "$x", "e": "plain", "f": None}
    one, two = substitute_spec(spec, {"w": 4.0, "x": np.array([1.0, 2.0])}), substitute_spec(spec, {"w": 5.0, "x": 1.5})
    assert one == {"a": [[1.0, 2.0], [3.0, 4.0]], "b": {"c": [0.5, 0.25]}, "d": [1.0, 2.0], "e": "plain", "f": None}
    assert two["a"][1][1] == 5.0 and two["d"] == 1.5
    one["b"]["c"].append(9.0)
    one["a"][0][0] = -1.0
    assert substitute_spec(spec, {"w": 4.0, "x": 1.0})["b"]["c"] == [0.5, 0.25]
    assert spec["b"]["c"] == [0.5, 0.25] and spec["a"][0][0] == 1.0
    for bad, env in ((dict(spec, d="$y"), {"w": 1.0, "x": 1.0}), (dict(spec, e="$1x"), {"w": 1.0, "x": 1.0}),
                     (spec, {"x": 1.0})):
        with pytest.raises(ParamError) as plain:
            substitute(bad, env)
        with pytest.raises(ParamError) as fast:
            substitute_spec(bad, env)
        assert str(fast.value) == str(plain.value)


def test_records_replace_makes_what_dataclasses_replace_makes(catalog):
    """Every buggy calculator's result (each built with records.replace) on a few seeds of every shipped
    calculated item equals the one dataclasses.replace gives."""
    import quizengine.calc.mistakes as mistakes_module

    compared = 0
    for item in catalog.items.values():
        if getattr(item.model, "calc", None) is None:
            continue
        for seed in range(3):
            with memo():
                try:
                    _, task, _, _ = calculate(item, seed, values_for(item, seed), read_answer=False)
                except VariantError:
                    continue
                for name in MISTAKES:
                    fast = mistakes_module.buggy_result(task, name)
                    mistakes_module.replace = dataclasses.replace
                    try:
                        plain = mistakes_module.buggy_result(task, name)
                    finally:
                        mistakes_module.replace = records.replace
                    assert _identical(fast, plain), (item.id, seed, name)
                    compared += fast is not None
    assert compared > 300


def _numpy_same(a, b):
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(y).max(initial=0.0)), float(np.abs(x).max(initial=0.0)), 1.0)
    return x.shape == y.shape and bool(np.abs(x - y).max(initial=0.0) <= 1e-12 * scale)


def _numpy_match(x, a, tol):
    xs, as_ = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    return xs.shape == as_.shape and all(scalar_close(u, v, tol) for u, v in zip(xs.ravel().tolist(), as_.ravel().tolist()))


def test_answers_compare_as_with_arrays_on_every_shipped_item(catalog):
    """Every buggy answer against the key (and the key against itself nudged by residue and by a step the
    tolerance sees), on 5 seeds of every calculated item: the same verdicts as the comparisons with arrays."""
    compared = 0
    for item in catalog.items.values():
        m = item.model
        if getattr(m, "calc", None) is None or not isinstance(getattr(m, "answer", None), str):
            continue
        for seed in range(5):
            with memo():
                try:
                    _, task, result, key = calculate(item, seed, values_for(item, seed))
                except VariantError:
                    continue
                others = [v for _, v in buggy_answers(task, m.answer, key, list(MISTAKES), result)]
                nudged = np.asarray(key, dtype=np.float64)
                others += [(nudged * (1 + 1e-13)).tolist(), (nudged * (1 + 1e-4)).tolist(), (nudged + 1e-3).tolist()]
                for other in others:
                    assert seedcmp.same(other, key) == _numpy_same(other, key), (item.id, seed, other, key)
                    assert seedcmp.match(other, key, m.tolerance) == _numpy_match(other, key, m.tolerance)
                    compared += 1
    assert compared > 2000


@pytest.mark.parametrize("a, b", [
    ([1.0, 2.0], [1.0, 2.0 + 1e-13]), ([1.0, 2.0], [1.0, 2.1]), ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]),
    ([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0, 3.0, 4.0]), ([1.0, float("nan")], [1.0, 2.0]), ([float("nan"), 1.0], [5.0, 1.0]),
    ([float("inf"), 1.0], [float("inf"), 1.0]), ([1, 2], [1.0, 2.0]), ([1.0], 1.0), ([[1.0], [2.0, 3.0]], [[1.0], [2.0, 3.0]]),
    ([], []), ([0.0, -0.0], [-0.0, 0.0]), ([1e300, -1e300], [-1e300, 1e300]), (np.array([1.0, 2.0]), [1.0, 2.0]),
])
def test_odd_answers_compare_as_with_arrays(a, b):
    import warnings

    from quizengine.tolerance import Tolerance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expect = _numpy_same(a, b)
        except ValueError:  # ragged lists: np.asarray refuses them
            expect = None
        if expect is not None:
            assert seedcmp.same(a, b) == expect
        for tol in (Tolerance(sigfigs=3), Tolerance(rel=1e-6, abs=0.0)):
            try:
                expect = _numpy_match(a, b, tol)
            except ValueError:
                continue
            assert seedcmp.match(a, b, tol) == expect


@pytest.mark.parametrize("tol", [{"sigfigs": 1}, {"sigfigs": 3}, {"sigfigs": 5}, {"decimals": 0}, {"decimals": 2},
                                 {"rel": 1e-3, "abs": 1e-9}, {"rel": 0.05}, {"abs": 0.01}, {"rel": 0.0, "abs": 0.0}])
def test_answers_of_all_seeds_compare_with_their_keys_as_one_by_one(tol):
    """seedcmp.Keys.verdicts (the validator's comparisons over a batch of seeds) gives, seed by seed, what
    same and match give: on keys of every magnitude and 0, with answers at the tolerance's edge, a float
    either side of it, residue away and far off; scalar keys and 2x2 ones."""
    from quizengine.tolerance import Tolerance

    t = Tolerance(**tol)
    rng = np.random.default_rng(7)
    seen = set()
    for shape in ((), (2, 2)):
        keys = rng.choice([0.0, -0.0, 1.0, -2.5, 1e-7, 3.14159e5], size=(64, *shape)) * rng.uniform(0.5, 2.0, (64, *shape))
        keys.reshape(64, -1)[:8] = 0.0
        flat = keys.reshape(64, -1)
        lim = np.array([[seedcmp.limit(a, t) for a in row] for row in flat.tolist()]).reshape(keys.shape)
        for move in (lim, -lim, np.nextafter(keys + lim, np.inf) - keys, np.nextafter(keys + lim, -np.inf) - keys,
                     1e-13 * np.abs(keys), 0.0 * keys, 10.0 * lim + 1.0, rng.normal(0.0, 1.0, keys.shape) * lim):
            values = keys + move
            answers = keys.tolist() if shape else [float(k) for k in keys]
            got = seedcmp.Keys.of(answers, t).verdicts(values)
            for s in range(64):
                x, a = (values[s].tolist(), answers[s]) if shape else (float(values[s]), answers[s])
                differs = not seedcmp.same(x, a)
                assert (got[0][s], got[1][s]) == (differs, differs and seedcmp.match(x, a, t)), (tol, s, x, a)
                seen.add((got[0][s], got[1][s]))
    assert seen >= {(True, True), (True, False), (False, False)} or t.rel == t.abs == 0.0, seen


def test_result_paths_resolve_as_the_long_way_and_bad_ones_raise_the_same_error(catalog):
    from quizengine.bank.core import _resolve, resolve

    checked = 0
    for item in catalog.items.values():
        m = item.model
        if getattr(m, "calc", None) is None:
            continue
        paths = [m.answer] if isinstance(getattr(m, "answer", None), str) else [p.answer for p in getattr(m, "parts", [])]
        with memo():
            try:
                _, _, result, _ = calculate(item, 0, values_for(item, 0), read_answer=False)
            except VariantError:
                continue
        for path in paths + ["nothing", "layers[9].dW", "output[0][0][0]", "steps[-99].params", "loss.x"]:
            try:
                expect = ("ok", _resolve(result, path))
            except KeyError as e:
                expect = ("error", str(e))
            try:
                got = ("ok", resolve(result, path))
            except KeyError as e:
                got = ("error", str(e))
            assert got == expect and (got[0] == "error" or got[1] is expect[1]), (item.id, path)
            checked += 1
    assert checked > 600
