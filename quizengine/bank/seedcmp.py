"""Comparing a seed's answers (floats, or nested lists of floats as a result's JSON holds them) without
building arrays: the validator compares every buggy and slipped answer with the key, hundreds of
thousands of times a run. Anything else goes through numpy as before, with the same verdicts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tolerance import Tolerance, scalar_close


def _flat(v: Any) -> tuple[tuple[int, ...], list[float]] | None:
    """(shape, entries in row-major order) of a float or of non-empty nested lists (1 or 2 levels) of
    finite floats, as np.asarray would see them; None for anything else (an array, ints, ragged lists,
    NaN or infinity, which numpy's reductions treat their own way)."""
    t = type(v)
    if t is float:
        return ((), [v]) if math.isfinite(v) else None
    if t is not list or not v:
        return None
    if type(v[0]) is list:
        n = len(v[0])
        if not n or not all(type(r) is list and len(r) == n for r in v):
            return None
        flat = [u for r in v for u in r]
        shape: tuple[int, ...] = (len(v), n)
    else:
        flat, shape = v, (len(v),)
    return (shape, flat) if all(type(u) is float for u in flat) and all(map(math.isfinite, flat)) else None


_LAST: tuple[Any, Any] = (None, None)  # (the last key flattened, its _flat): a seed's key is compared again and again


def _flat_key(v: Any) -> tuple[tuple[int, ...], list[float]] | None:
    """``_flat`` of the key (the second argument), computed once while the same key object is asked about
    (the cache holds it, so its id cannot be reused; answers are only read)."""
    global _LAST
    last = _LAST
    if last[0] is v:
        return last[1]
    flat = _flat(v)
    _LAST = (v, flat)
    return flat


def same(a: Any, b: Any) -> bool:
    """a and b are equal up to floating-point residue."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1.0)
    fa, fb = _flat(a), _flat_key(b)
    if fa is not None and fb is not None and fa[0] == fb[0]:  # the same test without arrays
        xs, ys = fa[1], fb[1]
        scale = max(max(abs(u) for u in ys), max(abs(u) for u in xs), 1.0)
        return max(abs(u - w) for u, w in zip(xs, ys)) <= 1e-12 * scale
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(y).max(initial=0.0)), float(np.abs(x).max(initial=0.0)), 1.0)
    return x.shape == y.shape and bool(np.abs(x - y).max(initial=0.0) <= 1e-12 * scale)


def match(x: Any, a: Any, tol: Tolerance) -> bool:
    """numbers_match, without arrays for two numbers (the common case, checked thousands of times)."""
    if isinstance(x, float) and isinstance(a, float):
        return scalar_close(x, a, tol)
    fx, fa = _flat(x), _flat_key(a)
    if fx is not None and fa is not None:
        return fx[0] == fa[0] and all(scalar_close(u, v, tol) for u, v in zip(fx[1], fa[1]))
    xs, as_ = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    return xs.shape == as_.shape and all(scalar_close(u, v, tol) for u, v in zip(xs.ravel().tolist(), as_.ravel().tolist()))


def limit(a: float, tol: Tolerance) -> float:
    """How far an entry may be from the key entry ``a`` (finite): ``scalar_close(x, a, tol)`` is
    ``abs(x - a) <= limit`` for a rel/abs tolerance (see ``strict``), ``abs(x - a) < limit`` otherwise:
    the same expressions as tolerance.close_rel_abs, close_sigfigs and close_decimals."""
    if tol.sigfigs is not None:
        n = tol.sigfigs - 1 if a == 0 else -int(math.floor(math.log10(abs(a)))) + (tol.sigfigs - 1)
        return 0.51 * 10.0 ** (-n)
    if tol.decimals is not None:
        return 0.51 * 10.0 ** (-tol.decimals)
    return max(tol.abs or 0.0, (tol.rel or 0.0) * abs(a))


def strict(tol: Tolerance) -> bool:
    return tol.sigfigs is not None or tol.decimals is not None


class Keys:
    """Every seed's key (finite floats, all of one shape) as a (seeds, entries) array with each entry's
    ``limit``: ``verdicts`` then compares a batch of answers with them as ``same`` and ``match`` compare
    one answer with its key, the same float operations on the same numbers."""

    def __init__(self, flats: list[list[float]], tol: Tolerance):
        self.keys = np.array(flats, dtype=np.float64)
        self.limits = np.array([[limit(a, tol) for a in row] for row in flats], dtype=np.float64)
        self.strict = strict(tol)

    @classmethod
    def of(cls, answers: list[Any], tol: Tolerance) -> "Keys | None":
        flats = [_flat(a) for a in answers]
        if not flats or any(f is None or f[0] != flats[0][0] for f in flats):
            return None
        return cls([f[1] for f in flats], tol)

    def verdicts(self, values: np.ndarray) -> tuple[list[bool], list[bool]] | None:
        """(differs: not ``same(value, key)``, leaks: differs and ``match(value, key, tol)``) per seed, for
        answers ``values`` (seeds, ...) of the keys' shape; None when their entries do not line up. Only
        the seeds whose answer is finite mean anything (``same`` and ``match`` are not asked about others)."""
        x = values.reshape(values.shape[0], -1) if values.ndim else values
        if x.shape != self.keys.shape:
            return None
        with np.errstate(all="ignore"):
            diff = np.abs(x - self.keys)
            scale = np.maximum(np.maximum(np.abs(self.keys).max(axis=1), np.abs(x).max(axis=1)), 1.0)
            differs = ~(diff.max(axis=1) <= 1e-12 * scale)
            close = (diff < self.limits) if self.strict else (diff <= self.limits)
        return differs.tolist(), (differs & close.all(axis=1)).tolist()
