"""Seeded parameter draws, derived values, and substitution into specs and text.

Draws use SHA-256 of (item id, seed, parameter, draw number): the same seed gives the same
variant on every machine, Python and NumPy version (no hash(), no global random state).
"""

from __future__ import annotations

import ast
import hashlib
import math
import operator
import re
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from .schema import ParamSpec

Value = Any  # float | np.ndarray | other choice values


class ParamError(ValueError):
    """A parameter, derived expression or reference that cannot be evaluated."""


NOISE = 1e-12  # a value below this share of the variant's largest value is floating-point residue: shown as 0
_FLOOR: ContextVar[float] = ContextVar("noise_floor", default=0.0)


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
        self._buf = self._hash.digest(8 * self._size)
        self._pos = 0

    def next(self) -> int:
        if self._pos == self._size:
            self._size *= 2
            self._buf = self._hash.digest(8 * self._size)
        u = int.from_bytes(self._buf[8 * self._pos: 8 * self._pos + 8], "big")
        self._pos += 1
        return u


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


def _grid_value(spec: ParamSpec, u: int) -> float:
    lo, hi = spec.range
    n = int(math.floor((hi - lo) / spec.step + 1e-9)) + 1
    value = round(lo + (u % n) * spec.step, max(_decimals(lo), _decimals(spec.step)))
    return 0.0 if value == 0 else value  # no "-0" in a prompt


def draw(item_id: str, seed: int, name: str, spec: ParamSpec) -> Value:
    """Draw one parameter (a scalar, or a vector/matrix of independent draws)."""
    n = int(np.prod(spec.shape)) if spec.shape is not None else 1
    stream = _Stream((item_id, seed, name), n)
    if spec.shape is None:
        v = _draw_one(spec, stream)
        return np.array(v, dtype=np.float64) if isinstance(v, list) else v
    cells = [_draw_one(spec, stream) for _ in range(n)]
    return np.array(cells, dtype=np.float64).reshape(spec.shape)


# ---------------------------------------------------------------- derived expressions

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.MatMult: operator.matmul, ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


# Budgets for one derived expression, so that a short one can't make a large amount of work
# (`(10**10**6) % 7` took 37 s over 200 seeds); stated in banks/README.md.
MAX_EXPR_CHARS = 1000
MAX_INT_DIGITS = 100  # |integer| <= 10**100, checked before `**` and after every operation
MAX_INT = 10**MAX_INT_DIGITS
MAX_ELEMENTS = 10_000  # elements of any array, checked before it is made
MAX_EXPR_DEPTH = 100  # levels of nesting of the syntax tree (the evaluator recurses over it)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _int_too_big(v: Any) -> ParamError:
    digits = len(str(abs(int(v)))) if abs(int(v)) < 10**(4 * MAX_INT_DIGITS) else f"more than {4 * MAX_INT_DIGITS}"
    return ParamError(f"an integer of {digits} digits: integers in expressions are limited to "
                      f"10**{MAX_INT_DIGITS} in absolute value")


def _too_many(n: int) -> ParamError:
    return ParamError(f"an array of {n:,} elements: arrays in expressions are limited to {MAX_ELEMENTS:,} elements")


def _checked(v: Any) -> Any:
    """Return ``v`` if it is within the integer and array budgets, else raise ParamError."""
    if _is_int(v) and abs(int(v)) > MAX_INT:
        raise _int_too_big(v)
    if isinstance(v, np.ndarray) and v.size > MAX_ELEMENTS:
        raise _too_many(v.size)
    return v


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(int(d) for d in shape)


def _check_pow(a: Any, b: Any) -> None:
    """Refuse an integer power whose result would be over the budget, before computing it."""
    if _is_int(a) and _is_int(b) and b > 0 and abs(int(a)) > 1:
        digits = int(b) * math.log10(abs(int(a)))
        if digits > MAX_INT_DIGITS:
            shown = f"{math.floor(digits) + 1:,}" if digits < 1e15 else "astronomically many"
            raise ParamError(f"the power {_short(a)} ** {_short(b)} would have about {shown} digits: integers in "
                             f"expressions are limited to 10**{MAX_INT_DIGITS} in absolute value")


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 20 else f"{s[:8]}...({len(s)} digits)"


def _check_broadcast(*values: Any) -> None:
    """Refuse an elementwise operation whose broadcast result would be over the array budget."""
    shapes = [np.shape(v) for v in values if isinstance(v, np.ndarray)]
    if len(shapes) < 2:
        return
    try:
        n = _size(np.broadcast_shapes(*shapes))
    except ValueError:
        return  # the operation itself reports the mismatch
    if n > MAX_ELEMENTS:
        raise _too_many(n)


def _check_product(a: Any, b: Any) -> None:
    """Refuse a matrix product (``@``, ``dot``) whose result would be over the array budget."""
    sa, sb = np.shape(a), np.shape(b)
    n = _size(sa[:-1]) * _size(sb[:-2] + sb[-1:]) if sa and sb else _size(sa or sb)
    if n > MAX_ELEMENTS:
        raise _too_many(n)


def _check_call(name: str, args: list[Any]) -> None:
    """Refuse a function call that would make an array over the budget, before it is made."""
    try:
        if name in ("zeros", "ones") and args:
            n = _size(tuple(np.ravel(args[0])))
        elif name == "eye" and args:
            n = int(args[0]) * int(args[1] if len(args) > 1 else args[0])
        elif name == "outer" and len(args) == 2:
            n = int(np.size(args[0])) * int(np.size(args[1]))
        elif name == "dot" and len(args) == 2:
            return _check_product(*args)
        else:
            return _check_broadcast(*args)
    except (TypeError, ValueError, OverflowError):
        return  # the function itself reports bad arguments
    if n > MAX_ELEMENTS:
        raise _too_many(n)


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "abs": np.abs, "sigmoid": _sigmoid,
    "round": lambda x, n=0: np.round(x, int(n)), "min": lambda *a: np.min(a[0]) if len(a) == 1 else min(a),
    "max": lambda *a: np.max(a[0]) if len(a) == 1 else max(a), "sum": np.sum, "mean": np.mean,
    "floor": np.floor, "ceil": np.ceil, "sign": np.sign, "array": lambda x: np.asarray(x, dtype=np.float64),
    "zeros": np.zeros, "ones": np.ones, "eye": np.eye, "outer": np.outer, "dot": np.dot, "transpose": np.transpose,
    "where": np.where, "int": int, "float": float,
}


@lru_cache(maxsize=4096)
def compile_expr(text: str) -> ast.expr:
    """Parse an expression and check that it only uses allowed syntax and numbers within the budget."""
    if len(text) > MAX_EXPR_CHARS:
        raise ParamError(f"an expression of {len(text):,} characters: the limit is {MAX_EXPR_CHARS:,}")
    too_deep = ParamError(f"the expression is nested more than {MAX_EXPR_DEPTH} levels deep (the limit)")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ParamError(f"not an expression: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise too_deep from None
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            raise too_deep
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(node)]
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.List, ast.Tuple, ast.Call,
                               ast.Subscript, ast.Attribute, ast.Compare, ast.IfExp, ast.Slice, ast.Load,
                               ast.operator, ast.unaryop, ast.cmpop))
        if not ok:
            raise ParamError(f"{type(node).__name__} is not allowed in an expression")
        if isinstance(node, ast.Attribute) and node.attr != "T":
            raise ParamError(f"attribute .{node.attr} is not allowed (only .T, the transpose)")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise ParamError(f"only these functions may be called: {', '.join(sorted(FUNCTIONS))}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ParamError(f"constant {node.value!r} is not a number")
        if isinstance(node, ast.Constant):
            _checked(node.value)
        if isinstance(node, ast.operator) and type(node) not in _BINOPS:
            raise ParamError(f"the operator {type(node).__name__} is not allowed (only + - * / // % ** @)")
        if isinstance(node, ast.cmpop) and type(node) not in _CMPOPS:
            raise ParamError(f"the comparison {type(node).__name__} is not allowed (only < <= > >= == !=)")
    return tree


def _eval(node: ast.expr, env: dict[str, Value]) -> Value:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise ParamError(f"undefined name {node.id!r} (defined so far: {', '.join(env) or 'none'})")
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.MatMult):
            a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
            _check_product(a, b)
        elif isinstance(node.op, ast.Pow):
            _check_pow(a, b)
        _check_broadcast(a, b)
        return _checked(_BINOPS[type(node.op)](a, b))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if isinstance(node.op, ast.USub):
            return _checked(-v)
        if isinstance(node.op, ast.UAdd):
            return +v
        raise ParamError("only - and + are allowed as unary operators")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, env) for e in node.elts]
        try:
            return _checked(np.array(items, dtype=np.float64))
        except ValueError:
            raise ParamError("a list whose rows have different lengths") from None
    if isinstance(node, ast.Call):
        args = [_eval(a, env) for a in node.args]
        _check_call(node.func.id, args)
        return _checked(FUNCTIONS[node.func.id](*args))
    if isinstance(node, ast.Attribute):
        return np.asarray(_eval(node.value, env)).T
    if isinstance(node, ast.Subscript):
        base = np.asarray(_eval(node.value, env))
        return base[_index(node.slice, env)]
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        result = True
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, env)
            _check_broadcast(left, right, result)
            result = result & _CMPOPS[type(op)](left, right)
            left = right
        return result
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    raise ParamError(f"{type(node).__name__} is not allowed")  # pragma: no cover - compile_expr stops it


def _index(node: ast.expr, env: dict[str, Value]) -> Any:
    if isinstance(node, ast.Tuple):
        return tuple(_index(e, env) for e in node.elts)
    if isinstance(node, ast.Slice):
        parts = [None if p is None else int(_eval(p, env)) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)
    return int(_eval(node, env))


def evaluate(text: str, env: dict[str, Value]) -> Value:
    """Evaluate a derived expression over the values defined so far."""
    tree = compile_expr(text)
    try:
        with np.errstate(all="raise"):
            v = _eval(tree, env)
    except ParamError:
        raise
    except (ArithmeticError, FloatingPointError, ValueError, TypeError, IndexError) as e:
        raise ParamError(f"cannot evaluate: {e}") from None
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = float(v)
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        v = v.item()
    try:
        finite = bool(np.all(np.isfinite(np.asarray(v, dtype=np.float64))))
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


def fmt(x: Any, digits: int = 6) -> str:
    """Format a number for a person: up to ``digits`` significant digits, no trailing zeros."""
    x = float(x)
    if x == 0 or abs(x) < _FLOOR.get():
        return "0"
    s = f"{x:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}e{int(exp)}"
    return s


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
