"""Derived expressions: a small, bounded subset of Python over the parameters drawn so far.

Only arithmetic, comparisons, conditionals, indexing, ``.T`` and a fixed list of NumPy functions
are allowed, and every integer and array is kept within a budget before it is made.
"""

from __future__ import annotations

import ast
import math
import operator
from functools import lru_cache
from typing import Any, Callable

import numpy as np

Value = Any  # float | np.ndarray | other choice values


class ParamError(ValueError):
    """A parameter, derived expression or reference that cannot be evaluated."""


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


def eval_tree(node: ast.expr, env: dict[str, Value]) -> Value:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise ParamError(f"undefined name {node.id!r} (defined so far: {', '.join(env) or 'none'})")
    if isinstance(node, ast.BinOp):
        a, b = eval_tree(node.left, env), eval_tree(node.right, env)
        if isinstance(node.op, ast.MatMult):
            a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
            _check_product(a, b)
        elif isinstance(node.op, ast.Pow):
            _check_pow(a, b)
        _check_broadcast(a, b)
        return _checked(_BINOPS[type(node.op)](a, b))
    if isinstance(node, ast.UnaryOp):
        v = eval_tree(node.operand, env)
        if isinstance(node.op, ast.USub):
            return _checked(-v)
        if isinstance(node.op, ast.UAdd):
            return +v
        raise ParamError("only - and + are allowed as unary operators")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [eval_tree(e, env) for e in node.elts]
        try:
            return _checked(np.array(items, dtype=np.float64))
        except ValueError:
            raise ParamError("a list whose rows have different lengths") from None
    if isinstance(node, ast.Call):
        args = [eval_tree(a, env) for a in node.args]
        _check_call(node.func.id, args)
        return _checked(FUNCTIONS[node.func.id](*args))
    if isinstance(node, ast.Attribute):
        return np.asarray(eval_tree(node.value, env)).T
    if isinstance(node, ast.Subscript):
        base = np.asarray(eval_tree(node.value, env))
        return base[_index(node.slice, env)]
    if isinstance(node, ast.Compare):
        left = eval_tree(node.left, env)
        result = True
        for op, comp in zip(node.ops, node.comparators):
            right = eval_tree(comp, env)
            _check_broadcast(left, right, result)
            result = result & _CMPOPS[type(op)](left, right)
            left = right
        return result
    if isinstance(node, ast.IfExp):
        return eval_tree(node.body, env) if eval_tree(node.test, env) else eval_tree(node.orelse, env)
    raise ParamError(f"{type(node).__name__} is not allowed")  # pragma: no cover - compile_expr stops it


def _index(node: ast.expr, env: dict[str, Value]) -> Any:
    if isinstance(node, ast.Tuple):
        return tuple(_index(e, env) for e in node.elts)
    if isinstance(node, ast.Slice):
        parts = [None if p is None else int(eval_tree(p, env)) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)
    return int(eval_tree(node, env))
