"""Seeded parameter draws, derived values, and substitution into specs and text.

Draws use SHA-256 of (item id, seed, parameter, draw number): the same seed gives the same
variant on every machine, Python and NumPy version (no hash(), no global random state).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from .expr import ParamError, Value, compile_expr, eval_tree
from .numfmt import FLOOR, fmt
from .schema import ParamSpec


NOISE = 1e-12  # a value below this share of the variant's largest value is floating-point residue: shown as 0
_FLOOR = FLOOR  # (numfmt.py: fmt reads it)


@contextmanager
def noise_floor(scale: float):  # type: ignore[no-untyped-def]
    """Within the block, ``fmt`` prints numbers below NOISE * ``scale`` in absolute value as 0."""
    token = _FLOOR.set(NOISE * scale)
    try:
        yield
    finally:
        _FLOOR.reset(token)


def largest(*values: Any) -> float:
    """The largest absolute finite number in nested values (lists, dicts, arrays); 0 when none."""
    out, stack = 0.0, list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
            finite = np.abs(v[np.isfinite(v)]) if v.size else v
            out = max(out, float(finite.max(initial=0.0)))
        elif isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v):
            out = max(out, abs(float(v)))
    return out


def denoise(v: Any, scale: float) -> Any:
    """``v`` (a number or nested lists) with every entry below NOISE * ``scale`` in absolute value set to 0."""
    if isinstance(v, list):
        return [denoise(x, scale) for x in v]
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < abs(v) < NOISE * scale:
        return 0.0
    return v


def rand_u64(*parts: object) -> int:
    """Return a deterministic 64-bit integer for the given parts."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big")


def shuffled(items: list, *parts: object) -> list:
    """Return a seeded Fisher-Yates shuffle of ``items``."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = rand_u64(*parts, i) % (i + 1)
        out[i], out[j] = out[j], out[i]
    return out


@lru_cache(maxsize=1024)
def _decimals(x: float) -> int:
    s = repr(float(x))
    if "e" in s:
        return 12
    return len(s.split(".")[1].rstrip("0"))


class _Stream:
    """Deterministic 64-bit integers from SHAKE-256 of the parts (a longer digest extends a shorter one)."""

    def __init__(self, parts: tuple, expected: int):
        self._hash = hashlib.shake_256("\x1f".join(map(str, parts)).encode())
        self._size = max(8, expected + 8)
        self.ints = _unpacker(self._size)(self._hash.digest(8 * self._size))  # every integer of the digest, in order
        self._pos = 0

    def next(self) -> int:
        if self._pos == self._size:
            self._size *= 2
            self.ints = _unpacker(self._size)(self._hash.digest(8 * self._size))
        u = self.ints[self._pos]
        self._pos += 1
        return u


@lru_cache(maxsize=64)
def _unpacker(n: int):  # type: ignore[no-untyped-def]
    """Reads ``n`` big-endian unsigned 64-bit integers (int.from_bytes of each 8 bytes, all at once)."""
    return struct.Struct(f">{n}Q").unpack


def _draw_one(spec: ParamSpec, stream: _Stream) -> float | Any:
    for _ in range(1000):
        u = stream.next()
        if spec.choice is not None:
            value = spec.choice[u % len(spec.choice)]
        else:
            value = _grid_value(spec, u)
        if not (isinstance(value, (int, float)) and value in spec.exclude):
            return value
    raise ParamError("every value of the grid is excluded")


@lru_cache(maxsize=4096)
def _grid(lo: float, hi: float, step: float) -> tuple[int, int]:
    """A grid's number of values and the decimals its values are rounded to."""
    return int(math.floor((hi - lo) / step + 1e-9)) + 1, max(_decimals(lo), _decimals(step))


def _grid_value(spec: ParamSpec, u: int) -> float:
    lo, hi = spec.range
    n, decimals = _grid(lo, hi, spec.step)
    value = round(lo + (u % n) * spec.step, decimals)
    return 0.0 if value == 0 else value  # no "-0" in a prompt


def _value(spec: ParamSpec, u: int) -> Any:
    """The value an integer of the stream picks: a choice, or a point of the grid."""
    return spec.choice[u % len(spec.choice)] if spec.choice is not None else _grid_value(spec, u)


def _cells(spec: ParamSpec, us: list[int]) -> list:
    """``[_value(spec, u) for u in us]``, the grid looked up once."""
    if spec.choice is not None:
        choice, k = spec.choice, len(spec.choice)
        return [choice[u % k] for u in us]
    lo, step = spec.range[0], spec.step
    size, decimals = _grid(lo, spec.range[1], step)
    cells = [round(lo + (u % size) * step, decimals) for u in us]
    return [0.0 if v == 0 else v for v in cells]


def draw(item_id: str, seed: int, name: str, spec: ParamSpec) -> Value:
    """Draw one parameter (a scalar, or a vector/matrix of independent draws)."""
    if spec.shape is None:  # the common scalar: the digest's first integer (a longer digest starts with
        # the same 8 bytes), unless it is excluded and drawn again below
        u = int.from_bytes(hashlib.shake_256("\x1f".join(map(str, (item_id, seed, name))).encode()).digest(8), "big")
        v = _value(spec, u)
        if (type(v) is float or type(v) is int) and v not in spec.exclude:
            return v
    n = math.prod(spec.shape) if spec.shape is not None else 1
    stream = _Stream((item_id, seed, name), n)
    if spec.shape is None:
        v = _draw_one(spec, stream)
        return np.array(v, dtype=np.float64) if isinstance(v, list) else v
    if spec.exclude:
        cells = [_draw_one(spec, stream) for _ in range(n)]
    else:  # nothing is redrawn: cell i takes the stream's i-th integer (what _draw_one gives, without its loop)
        cells = _cells(spec, stream.ints[:n])
    return np.array(cells, dtype=np.float64).reshape(spec.shape)


def draw_seeds(item_id: str, seeds: int, name: str, spec: ParamSpec) -> list[Value]:
    """``[draw(item_id, seed, name, spec) for seed in range(seeds)]``, the same values (the same digests,
    read the same way) with the work that does not depend on the seed done once; ParamError as ``draw``
    raises it, at the first seed that raises it."""
    head, tail, shape = f"{item_id}\x1f", f"\x1f{name}", spec.shape
    if shape is None:  # the scalar of draw: the digest's first integer, unless excluded
        out: list[Value] = []
        for seed in range(seeds):
            v = _value(spec, int.from_bytes(hashlib.shake_256(f"{head}{seed}{tail}".encode()).digest(8), "big"))
            out.append(v if (type(v) is float or type(v) is int) and v not in spec.exclude else draw(item_id, seed, name, spec))
        return out
    if spec.exclude:
        return [draw(item_id, seed, name, spec) for seed in range(seeds)]
    n = math.prod(shape)
    unpack = _unpacker(n)  # cell i: the stream's i-th integer (a digest of n integers starts the longer one)
    return [np.array(_cells(spec, unpack(hashlib.shake_256(f"{head}{seed}{tail}".encode()).digest(8 * n))),
                     dtype=np.float64).reshape(shape) for seed in range(seeds)]


# ---------------------------------------------------------------- derived expressions (parsed and run by expr.py)

def evaluate(text: str, env: dict[str, Value]) -> Value:
    """Evaluate a derived expression over the values defined so far."""
    tree = compile_expr(text)
    try:
        with np.errstate(all="raise"):
            v = eval_tree(tree, env)
    except ParamError:
        raise
    except (ArithmeticError, FloatingPointError, ValueError, TypeError, IndexError) as e:
        raise ParamError(f"cannot evaluate: {e}") from None
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = float(v)
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        v = v.item()
    try:
        finite = bool(np.isfinite(np.asarray(v, dtype=np.float64)).all())
    except (TypeError, ValueError):
        raise ParamError(f"the value {v!r} is not a number or a list of numbers") from None
    if not finite:
        raise ParamError(f"the value is not finite ({plain(v)})")
    return v


# ---------------------------------------------------------------- substitution

REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def plain(v: Value) -> Any:
    """Return a JSON-ready copy of a value (lists for arrays)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def substitute(obj: Any, env: dict[str, Value]) -> Any:
    """Replace every ``"$name"`` string in a spec by that value."""
    t = type(obj)
    if t is float or t is int or t is bool:
        return obj  # the common leaf, answered before the isinstance tests below
    if isinstance(obj, dict):
        return {k: substitute(v, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, env) for v in obj]
    if isinstance(obj, str) and obj.startswith("$"):
        m = REF.match(obj)
        if not m:
            raise ParamError(f"{obj!r} is not a reference: write \"$name\" with a param or derived name")
        if m.group(1) not in env:
            raise ParamError(f"{obj!r} refers to an undefined parameter (defined: {', '.join(sorted(env)) or 'none'})")
        return plain(env[m.group(1)])
    return obj


_COMPILED: dict[int, tuple[Any, Any]] = {}  # id(spec) -> (spec, its substituter): the spec kept alive with it


def substitute_spec(obj: Any, env: dict[str, Value]) -> Any:
    """``substitute(obj, env)`` for a spec substituted again and again (an item's calc, once per seed):
    the spec is walked once (``substituter``), then each call only fills in the values."""
    hit = _COMPILED.get(id(obj))
    if hit is None or hit[0] is not obj:
        if len(_COMPILED) >= 4096:
            _COMPILED.clear()
        hit = _COMPILED[id(obj)] = (obj, substituter(obj))
    return hit[1](env)


def substituter(obj: Any) -> Any:
    """A function of ``env`` giving what ``substitute(obj, env)`` gives: new lists and dicts, the same
    leaves, each ``"$name"`` replaced (the same ParamError, for the first bad reference in the same order)."""
    const, fn = _compiled(obj)
    return (lambda env: const) if fn is None else fn


def _compiled(obj: Any) -> tuple[Any, Any]:
    """(obj, None) for a leaf substitute returns as it is, else (None, function of env)."""
    if isinstance(obj, dict):
        parts = [(k, *_compiled(v)) for k, v in obj.items()]
        if all(f is None for _, _, f in parts):
            return None, lambda env: dict(obj)
        return None, lambda env: {k: c if f is None else f(env) for k, c, f in parts}
    if isinstance(obj, list):
        items = [_compiled(v) for v in obj]
        if all(f is None for _, f in items):
            return None, lambda env: list(obj)
        return None, lambda env: [c if f is None else f(env) for c, f in items]
    if isinstance(obj, str) and obj.startswith("$"):
        m = REF.match(obj)
        name = m.group(1) if m else None
        return None, lambda env: plain(env[name]) if name in env else substitute(obj, env)  # (which raises)
    return obj, None


def references(obj: Any) -> set[str]:
    """Return the names that a spec refers to with ``"$name"``."""
    if isinstance(obj, dict):
        return set().union(*(references(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(references(v) for v in obj)) if obj else set()
    if isinstance(obj, str):
        m = REF.match(obj)
        return {m.group(1)} if m else set()
    return set()


def latex(v: Value, transpose: bool = False) -> str:
    """Typeset a value for math: a scalar plainly, a vector as a column, a matrix as a matrix."""
    if isinstance(v, str):
        return v
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return _tex_num(float(a))
    if a.ndim == 1:
        a = a[None, :] if transpose else a[:, None]
    elif transpose:
        a = a.T
    rows = [" & ".join(_tex_num(float(x)) for x in row) for row in a]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _tex_num(x: float) -> str:
    s = fmt(x)
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return s


TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)(\.T)?\s*\}\}")


def template_names(text: str) -> set[str]:
    return {m.group(1) for m in TEMPLATE.finditer(text)}


def render_text(text: str, env: dict[str, Value]) -> str:
    """Replace ``{{name}}`` / ``{{name.T}}`` by the typeset value."""

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name not in env:
            raise ParamError(f"{{{{{name}}}}} refers to an undefined parameter")
        return latex(env[name], transpose=bool(m.group(2)))

    return TEMPLATE.sub(repl, text)
