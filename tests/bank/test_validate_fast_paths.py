"""The validator's per-seed fast paths give what the plain way gives, bit for bit, on every shipped
item: the seeded parameter draws (all integers of a digest read at once, a grid's cells drawn
without the per-cell loop)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank.catalog import load_catalog
from quizengine.bank.params import draw
from quizengine.bank.schema import ParamSpec

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
    drawn = 0
    for item in catalog.items.values():
        for name, spec in getattr(item.model, "params", {}).items():
            for seed in SEEDS:
                fast, plain = draw(item.id, seed, name, spec), _plain_draw(item.id, seed, name, spec)
                assert _same(fast, plain), (item.id, name, seed, fast, plain)
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
])
def test_synthetic_grids_choices_and_exclusions_draw_as_the_plain_way(spec):
    p = ParamSpec(**spec)
    for seed in range(300):
        assert _same(draw("x-item", seed, "w", p), _plain_draw("x-item", seed, "w", p)), seed
