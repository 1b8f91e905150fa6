"""ECF grading's plain-float short-cuts give what the numpy ways they replace give: the comparison
made once per Tolerance, zeroes, finite, the guard's shift with its spread made once per shape, a
part's marks as a list, the true key's feedback text kept per key and number floor. And whole
gradings (bank/ecf_grade.py with its short-cuts against ``shortcut=False``) on every shipped chain
with responses the table in test_ecf_shortcut.py does not have: non-finite, huge (saturating),
one entry off, the answers as strings, under another number floor."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from quizengine.bank import ecf
from quizengine.bank.ecf_grade import grade_parts, marks, share, true_shown
from quizengine.bank.numfmt import FLOOR
from quizengine.bank.variant import make_variant
from quizengine.tolerance import Tolerance, comparison, entries_close, scalar_close

from .test_ecf_shortcut import CATALOG, CHAINS, carried, slipped

TOLERANCES = [Tolerance(rel=1e-3, abs=1e-9), Tolerance(rel=0.0, abs=0.05), Tolerance(sigfigs=3),
              Tolerance(sigfigs=1), Tolerance(decimals=2), Tolerance(decimals=0)]


def numbers(rng, n: int) -> list[float]:
    """Numbers near each other and near 0, exact zeros, huge and tiny ones, infinities and NaN."""
    base = rng.normal(size=n) * 10.0 ** rng.integers(-14, 6, size=n)
    base[rng.random(n) < 0.1] = 0.0
    out = base.tolist() + [math.inf, -math.inf, math.nan, 1e308, -0.0, 5e-324]
    return out


def test_comparison_is_scalar_close_and_made_once_per_tolerance():
    rng = np.random.default_rng(1)
    for tol in TOLERANCES:
        close = comparison(tol)
        assert comparison(tol) is close
        assert comparison(Tolerance(**tol.model_dump())) is not close  # an equal tolerance is another object
        xs = numbers(rng, 300)
        for a in xs:
            for x in (a, a * (1 + 1e-4), a * 1.01, a + 1e-3, a + 0.5, 0.0, -a):
                assert close(x, a) == scalar_close(x, a, tol), (tol, x, a)


def reference_zeroes(value, truth, tol) -> bool:  # ecf.zeroes as it was written before the short-cut
    def zero_like(x):
        return abs(x) < 1e-12 or scalar_close(0.0, x, tol)

    return any((zero_like(float(x)) or abs(x) < 1e-3 * abs(t)) and not zero_like(float(t))
               for x, t in zip(np.ravel(value), np.ravel(truth)))


def test_zeroes_finite_and_marks_agree_with_the_numpy_ways():
    rng = np.random.default_rng(2)
    for tol in TOLERANCES:
        for _ in range(150):
            shape = [(), (3,), (2, 2), (1, 3)][rng.integers(4)]
            truth = np.asarray(rng.choice(numbers(rng, 12), size=shape), dtype=np.float64)
            with np.errstate(invalid="ignore", over="ignore"):  # (inf times 0)
                value = truth * rng.choice([1.0, 1.0005, 1e-4, 0.0, -1.0, 1.3], size=shape)
                assert ecf.zeroes(value, truth, tol) == reference_zeroes(value, truth, tol)
            assert ecf.finite(value) == bool(np.isfinite(value).all())
            ok = marks(value, truth, tol, True)
            full = entries_close(value, truth, tol)
            assert ok == full.ravel().tolist()
            assert marks(value, truth, tol) is not ok and (marks(value, truth, tol) == full).all()
            if np.size(truth):
                assert share(ok) == share(full)


@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 2), (3, 1), (2, 3)])
def test_the_guards_shift_is_the_formula_bit_for_bit(shape):
    rng = np.random.default_rng(3)
    for _ in range(20):
        v = np.asarray(rng.normal(size=shape) * 10.0 ** rng.integers(-5, 5), dtype=np.float64)
        for sign in (1.0, -1.0):
            got = ecf.shift(v, sign)
            want = v + sign * ecf.SPREAD * (np.abs(v) + 1.0) * (1.0 + 0.37 * np.arange(np.size(v)).reshape(np.shape(v)))
            assert np.shape(got) == np.shape(want) and np.asarray(got).tobytes() == np.asarray(want).tobytes()
    assert ecf.shift(v.tolist(), 1.0).tolist() == ecf.shift(v, 1.0).tolist()  # a plain list: the same numbers
    spread = ecf._spread(shape)
    assert not isinstance(spread, np.ndarray) or not spread.flags.writeable  # shared: nobody may write to it


def test_the_true_keys_text_follows_the_number_floor():
    key = [[0.0012345, 2.5], [-3.25, 1e-7]]
    plain = ecf.shown_value(key)
    assert true_shown(key) == plain and true_shown(key) == plain
    token = FLOOR.set(1e-6)
    try:
        floored = ecf.shown_value(key)
        assert floored != plain  # (the floor shows 1e-7 as 0)
        assert true_shown(key) == floored
    finally:
        FLOOR.reset(token)
    assert true_shown(key) == plain
    other = [[0.0012345, 2.5], [-3.25, 1e-7]]  # equal, another object: its own text, the same
    assert true_shown(other) == plain


def more_patterns(v):
    """Responses test_ecf_shortcut.patterns has not: (name, response)."""
    ks = v.payload.parts
    ids = [k.part.id for k in ks]
    true = [k.answer for k in ks]
    first = np.asarray(true[0], dtype=np.float64)
    out = [("a non-finite first part", {ids[0]: np.full_like(first, np.inf).tolist(),
                                        **{i: slipped(x) for i, x in zip(ids[1:], true[1:])}}),
           ("'nan' typed in the first part", {ids[0]: np.full(first.shape, "nan").tolist() if first.ndim else "nan",
                                              **dict(zip(ids[1:], true[1:]))}),
           ("the answers as strings", {i: np.asarray(x, dtype=np.float64).astype(str).tolist() for i, x in zip(ids, true)}),
           ("nothing", {}), ("not a dict", [1, 2, 3])]
    for factor in (1e4, 1e-5, 1e300):  # saturating, nearly zero, overflowing: the guards' cases
        chain = carried(v, {0: slipped(true[0], factor)})
        resp = {ids[0]: slipped(true[0], factor)}
        if chain is not None:
            resp.update(zip(ids[1:], chain[1:]))
        out.append((f"first part times {factor:g}, carried on where it computes", resp))
    chain = carried(v, {0: slipped(true[0])})
    if chain is not None:
        resp = dict(zip(ids, [slipped(true[0])] + chain[1:]))
        last = np.asarray(resp[ids[-1]], dtype=np.float64)
        last.flat[0] = last.flat[0] * 1.5 + 1.0  # one entry off in the last part
        out.append(("a slip carried on, one entry of the last part off", {**resp, ids[-1]: last.tolist()}))
        out.append(("a slip carried on, the last part missing", {i: x for i, x in resp.items() if i != ids[-1]}))
    return out


@pytest.mark.parametrize("item_id", CHAINS)
def test_fast_grading_is_plain_grading_on_more_responses(item_id):
    compared = 0
    for seed in range(6):
        v = make_variant(CATALOG.items[item_id], seed)
        for label, response in more_patterns(v):
            for floor in (None, 1e-3):
                token = FLOOR.set(floor) if floor is not None else None
                try:
                    fast = [r.to_json() for r in grade_parts(v, response)]
                    full = [r.to_json() for r in grade_parts(v, response, shortcut=False)]
                finally:
                    if token is not None:
                        FLOOR.reset(token)
                assert fast == full, f"{item_id} seed {seed}: {label} (floor {floor})"
                assert json.dumps(fast) == json.dumps(full)
                compared += 1
    assert compared >= 6 * 2 * 7
