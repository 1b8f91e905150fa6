"""How close a number must be to count: the Tolerance an item declares, and the comparisons.

Below ``bank/`` and ``grading``: variants filter buggy answers with it, validation measures it and
grading applies it. As in PrairieLearn's grading helpers, each comparison is a small pure function
named by method, with infinities and NaN refused explicitly.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Tolerance(BaseModel):
    """Numeric comparison: rel+abs (default), significant figures, or decimal digits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rel: float | None = Field(default=None, ge=0)
    abs: float | None = Field(default=None, ge=0)
    sigfigs: int | None = Field(default=None, ge=1, le=15)
    decimals: int | None = Field(default=None, ge=0, le=15)

    @model_validator(mode="after")
    def _one_mode(self) -> "Tolerance":
        modes = [self.rel is not None or self.abs is not None, self.sigfigs is not None, self.decimals is not None]
        if sum(modes) != 1:
            raise ValueError("give 'rel'/'abs', or 'sigfigs', or 'decimals' (exactly one kind)")
        return self


DEFAULT_TOLERANCE = Tolerance(rel=1e-3, abs=1e-9)


class Mode(Enum):
    REL_ABS = "rel_abs"
    SIGFIGS = "sigfigs"
    DECIMALS = "decimals"


def mode_of(tol: Tolerance) -> Mode:
    if tol.sigfigs is not None:
        return Mode.SIGFIGS
    if tol.decimals is not None:
        return Mode.DECIMALS
    return Mode.REL_ABS


def close_rel_abs(x: float, a: float, rel: float, abs_: float) -> bool:
    """|x - a| <= max(abs, rel * |a|)."""
    return abs(x - a) <= max(abs_, rel * abs(a))


def close_sigfigs(x: float, a: float, digits: int) -> bool:
    """x agrees with a to ``digits`` significant figures (half a unit in the last place, +2%)."""
    n = digits - 1 if a == 0 else -int(math.floor(math.log10(abs(a)))) + (digits - 1)
    return abs(x - a) < 0.51 * 10.0 ** (-n)


def close_decimals(x: float, a: float, decimals: int) -> bool:
    """x agrees with a to ``decimals`` digits after the point (half a unit, +2%)."""
    return abs(x - a) < 0.51 * 10.0 ** (-decimals)


def scalar_close(x: float, a: float, tol: Tolerance) -> bool:
    if not (math.isfinite(x) and math.isfinite(a)):
        return False
    mode = mode_of(tol)
    if mode is Mode.REL_ABS:
        return close_rel_abs(x, a, tol.rel or 0.0, tol.abs or 0.0)
    if mode is Mode.SIGFIGS:
        return close_sigfigs(x, a, tol.sigfigs)
    if mode is Mode.DECIMALS:
        return close_decimals(x, a, tol.decimals)
    raise AssertionError(mode)  # pragma: no cover - exhaustive


_COMPARISONS: dict[int, tuple[Tolerance, Callable[[float, float], bool]]] = {}  # id(tol) -> (tol, its comparison)


def comparison(tol: Tolerance) -> Callable[[float, float], bool]:
    """``scalar_close`` with ``tol`` looked up once: for comparing many entries (made once per
    Tolerance object: an item's tolerances live as long as its catalog)."""
    entry = _COMPARISONS.get(id(tol))
    if entry is not None and entry[0] is tol:
        return entry[1]
    if len(_COMPARISONS) >= 4096:
        _COMPARISONS.clear()
    close = _comparison(tol)
    _COMPARISONS[id(tol)] = (tol, close)  # (tol kept with it: its id cannot be another's while here)
    return close


def _comparison(tol: Tolerance) -> Callable[[float, float], bool]:
    mode = mode_of(tol)
    finite = math.isfinite
    if mode is Mode.REL_ABS:
        rel, abs_ = tol.rel or 0.0, tol.abs or 0.0
        return lambda x, a: finite(x) and finite(a) and close_rel_abs(x, a, rel, abs_)
    if mode is Mode.SIGFIGS:
        digits = tol.sigfigs
        return lambda x, a: finite(x) and finite(a) and close_sigfigs(x, a, digits)
    if mode is Mode.DECIMALS:
        decimals = tol.decimals
        return lambda x, a: finite(x) and finite(a) and close_decimals(x, a, decimals)
    raise AssertionError(mode)  # pragma: no cover - exhaustive


def entries_close(x: Any, a: Any, tol: Tolerance = DEFAULT_TOLERANCE) -> np.ndarray:
    """Return a boolean array: which entries of x are within tolerance of a (same shape)."""
    xs, as_ = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    close = comparison(tol)
    flat = [close(u, v) for u, v in zip(xs.ravel().tolist(), as_.ravel().tolist())]
    return np.array(flat, dtype=bool).reshape(as_.shape)


def numbers_match(x: Any, a: Any, tol: Tolerance = DEFAULT_TOLERANCE) -> bool:
    """True when x has a's shape and every entry is within tolerance."""
    return np.shape(x) == np.shape(a) and bool(np.all(entries_close(x, a, tol)))


def accepted_range(a: float, tol: Tolerance) -> tuple[float, float]:
    """The interval of answers ``scalar_close`` accepts around the key ``a`` (ends approximate for
    sigfigs and decimals, whose comparison is strict)."""
    mode = mode_of(tol)
    if mode is Mode.REL_ABS:
        half = max(tol.abs or 0.0, (tol.rel or 0.0) * abs(a))
    elif mode is Mode.SIGFIGS:
        n = tol.sigfigs - 1 if a == 0 else -int(math.floor(math.log10(abs(a)))) + (tol.sigfigs - 1)
        half = 0.51 * 10.0 ** (-n)
    elif mode is Mode.DECIMALS:
        half = 0.51 * 10.0 ** (-tol.decimals)
    else:  # pragma: no cover - exhaustive
        raise AssertionError(mode)
    return a - half, a + half


NEAR_SIGFIGS = 2  # "close": the answer agrees with the key to this many significant figures


def close_at_lower_precision(x: float, a: float, tol: Tolerance) -> bool:
    """x misses the tolerance but agrees with a to NEAR_SIGFIGS significant figures: rounded too
    early or written with too few digits ("close, but not precise enough")."""
    if not (math.isfinite(x) and math.isfinite(a)) or scalar_close(x, a, tol):
        return False
    return close_sigfigs(x, a, NEAR_SIGFIGS)
