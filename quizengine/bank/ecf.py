"""Error carried forward: which parts of a chain feed which, and the key of a later part recomputed
from a student's own earlier answers (the calculator's ``given`` values), with the guards that keep
an earlier answer from making a later part trivial (Numbas issue #368).

Below the item types: bank/ecf_grade.py grades a chain with it, for the ``multipart`` type
(bank/types/multipart.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field as dc_field, replace
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ..calc.engine import run_task
from ..calc.given import PATH, Given, checked_given, network_slots, optimizer_slots, parse_given
from ..calc.losses import InfiniteLossError
from ..calc.optimizers import OPTIMIZERS
from ..calc.spec import NetworkTask, OptimizerTask, SpecError, Task
from ..tolerance import Tolerance, comparison
from .core import parse_path, resolve
from .params import fmt

Node = tuple  # ("a", 1), ("loss",), ("velocity", 0): one quantity of the calculator, indices dropped
SPREAD = 0.25  # the constant guard moves each given value by about SPREAD * (|value| + 1) both ways
BACKWARD = ("delta", "dW", "db", "W_new", "b_new")
STEP_ORDER = {"gradient": 0, "velocity": 1, "second_moment": 2, "params": 3}
FROM_A = ("sigmoid", "tanh", "softmax")  # activations whose f' is written in a (a(1-a), 1-a^2, the Jacobian)


# ---------------------------------------------------------------- the graph

def node_of(path: str, n_layers: int) -> Node | None:
    """The quantity a result path names (``layers[1].a[0]`` -> ("a", 1)); None outside the graph."""
    try:
        steps = parse_path(path)
    except KeyError:
        return None
    if steps[0] == "output":
        return ("a", n_layers - 1)
    if steps[0] == "loss":
        return ("loss",)
    if steps[0] in ("layers", "steps") and len(steps) >= 3 and isinstance(steps[1], int) and isinstance(steps[2], str):
        return (steps[2], steps[1])
    return None


def _network_parents(node: Node, n_layers: int) -> list[Node]:
    """The quantities ``node`` is computed from, as the calculator's given values propagate."""
    if node == ("loss",):
        return [("a", n_layers - 1)]
    name, k = node
    if name == "z":
        return [("a", k - 1)] if k > 0 else []
    if name == "a":
        return [("z", k)]
    if name == "delta":  # dL/da (from the next delta, or the loss at the output) times f'(z)
        return [("z", k), ("a", k)] if k == n_layers - 1 else [("z", k), ("delta", k + 1)]
    if name == "dW":
        return [("delta", k)] + ([("a", k - 1)] if k > 0 else [])
    if name == "db":
        return [("delta", k)]
    if name == "W_new":
        return [("dW", k)]
    if name == "b_new":
        return [("db", k)]
    return []


def _optimizer_parents(node: Node, objective: bool, coupled: bool) -> list[Node]:
    """Within update k+1: the gradient (at the previous parameters with an objective), then the
    moments (from the gradient, and the parameters when a penalty is added to it), then the parameters."""
    name, k = node
    prev = [("params", k - 1)] if k > 0 else []
    if name == "gradient":
        return prev if objective else []
    if name in ("velocity", "second_moment"):
        return ([(name, k - 1)] if k > 0 else []) + [("gradient", k)] + (prev if coupled else [])
    if name == "params":
        return prev + [("velocity", k), ("second_moment", k), ("gradient", k)]
    return []


@lru_cache(maxsize=4096)
def upstream(task_kind: str, n_layers: int, node: Node, objective: bool = False, coupled: bool = False) -> frozenset:
    """Every quantity ``node`` depends on (itself excluded)."""
    seen: set = set()
    parents = ((lambda n: _optimizer_parents(n, objective, coupled)) if task_kind == "optimizer"
               else (lambda n: _network_parents(n, n_layers)))
    todo = list(parents(node))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += parents(n)
    return frozenset(seen)


def task_kind(task: Task | None) -> str | None:
    if isinstance(task, NetworkTask):
        return "network"
    if isinstance(task, OptimizerTask):
        return "optimizer"
    return None


def layer_count(task: Task) -> int:
    return len(task.network.layers) if isinstance(task, NetworkTask) else 0


def graph_key(task: Task) -> tuple:
    """All that ``depends`` reads of a task: tasks with the same key have the same graph."""
    if isinstance(task, OptimizerTask):
        c = task.config
        coupled = c.name != "adamw" and bool(getattr(c, "weight_decay", 0) or getattr(c, "l1", 0))
        return ("optimizer", 0, task.gradients is None, coupled)
    return (task_kind(task), layer_count(task))


def depends(task: Task, later: str, earlier: str) -> bool:
    """Is the quantity at path ``earlier`` upstream of the one at ``later`` in the calculator's graph?"""
    kind = task_kind(task)
    n = layer_count(task)
    a, b = node_of(later, n), node_of(earlier, n)
    if kind is None or a is None or b is None or a == b:
        return False
    if isinstance(task, OptimizerTask):  # a penalty on w enters the gradient the moments see
        c = task.config
        coupled = c.name != "adamw" and bool(getattr(c, "weight_decay", 0) or getattr(c, "l1", 0))
        return b in upstream(kind, n, a, task.gradients is None, coupled)
    return b in upstream(kind, n, a)


def derivatives(task: Task, given: dict[str, Any]) -> tuple[str, ...]:
    """The ways a student may take f' below their own a: at z (the calculator's graph) and, for a given
    a of a layer without dropout whose f' is written in a (sigmoid a(1-a), tanh 1-a^2, softmax), from it."""
    if isinstance(task, NetworkTask):
        layers, n = task.network.layers, len(task.network.layers)
        for node in filter(None, (node_of(path, n) for path in given)):
            if node[0] == "a" and layers[node[1]].activation.name in FROM_A and layers[node[1]].dropout is None:
                return ("z", "a")
    return ("z",)


# ---------------------------------------------------------------- recomputing with given values

def with_given(task: Task, given: dict[str, Any], derivative: str = "z") -> Task:
    """The task with ``given`` values (path -> value) put in; SpecError for a path it has not.
    ``derivative="a"``: f' of a layer whose a is given is taken from that a (calc's given_derivative)."""
    arrays = {p: np.asarray(x, dtype=np.float64) for p, x in given.items()}
    kind = layout(task)
    if kind is None:
        raise SpecError("only network and optimizer tasks take given values")
    checked = _checked(kind, arrays)
    if checked is None:  # something to refuse: calc's parser says what
        slots, absent = slots_of(kind)
        checked = parse_given({p: x.tolist() for p, x in arrays.items()}, slots, absent, "the paths of this task's result")
    return replace(task, given=replace(checked, derivative=derivative))


def _checked(kind: tuple, arrays: dict[str, np.ndarray]) -> Given | None:
    """The Given calc's ``parse_given`` makes of finite values of the right shapes at known paths,
    without parsing each path again; None for anything else."""
    entries: dict[tuple, list] = {}
    shown: dict[str, np.ndarray] = {}
    for path, x in arrays.items():
        place = slot_place(kind, str(path))
        if place is None or x.shape != place[2] or x.size == 0 or not finite(x):
            return None
        v = np.array(x, dtype=np.float64)
        entries.setdefault(place[0], []).append((place[1], v))
        shown[place[3]] = v
    return checked_given(entries, shown)


@lru_cache(maxsize=4096)
def slot_place(kind: tuple, path: str) -> tuple[tuple, tuple[int, ...], tuple[int, ...], str] | None:
    """Where a given path puts its value in a task of layout ``kind``: (slot key, index into the
    slot's array as the calculator holds it, the value's shape, the path as calc writes it); None
    if it names no quantity (as calc.given.parse_given reads it)."""
    slots, _ = slots_of(kind)
    text = path.replace(" ", "")
    m = PATH.fullmatch(text)
    if m is None or m["base"] not in slots:
        return None
    slot = slots[m["base"]]
    index = tuple(int(i) for i in re.findall(r"\d+", m["index"]))
    if len(index) > len(slot.shape) or any(i >= n for i, n in zip(index, slot.shape)):
        return None
    return slot.key, slot.prefix + index, slot.shape[len(index):], text


def layout(task: Task) -> tuple | None:
    """What a task's given paths depend on: ("network", layer sizes, batch, update) or
    ("optimizer", steps, parameter shape, second moment); None for other tasks."""
    if isinstance(task, NetworkTask):
        sizes = tuple(tuple(l.weights.shape) for l in task.network.layers)
        return "network", sizes, None if task.x.ndim == 1 else task.x.shape[0], task.learning_rate is not None
    if isinstance(task, OptimizerTask):
        return "optimizer", task.steps, tuple(task.params.shape), OPTIMIZERS[task.config.name].second_moment
    return None


@lru_cache(maxsize=256)
def slots_of(kind: tuple) -> tuple[dict, dict]:
    """The given paths of a task of this layout (the calculator's own tables, built once; read only)."""
    return network_slots(list(kind[1]), kind[2], kind[3]) if kind[0] == "network" else optimizer_slots(*kind[1:])


def signature(given: dict[str, Any], derivative: str) -> tuple:
    """The key of a run with these given values in ``recompute``'s cache: bit for bit."""
    return (derivative, *sorted((p, np.asarray(x, dtype=np.float64).tobytes()) for p, x in given.items()))


def recompute(task: Task, given: dict[str, Any], path: str, cache: dict | None = None,
              derivative: str = "z") -> np.ndarray | None:
    """The value at ``path`` with ``given`` put in; None when it cannot be computed or is not finite.

    ``cache`` (one per graded response) keeps each run's result by its given values: later parts
    often rest on the same earlier answers."""
    sig = signature(given, derivative)
    result = cache.get(sig) if cache is not None else None
    try:
        if result is None:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                result = run_task(with_given(task, given, derivative))
            if cache is not None:
                cache[sig] = result
        value = np.asarray(resolve(result, path), dtype=np.float64)
    except (SpecError, InfiniteLossError, FloatingPointError, KeyError, ValueError):
        return None
    return value if finite(value) else None


def finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()``, faster on the small arrays of a chain."""
    return all(map(math.isfinite, x.ravel().tolist()))


def zero_like(x: float, tol: Tolerance) -> bool:
    """0 would be marked right against ``x``."""
    return _zero_like(x, comparison(tol))


def _zero_like(x: float, close: Callable[[float, float], bool]) -> bool:
    """``zero_like`` with the tolerance's comparison given (looked up once for many entries)."""
    return abs(x) < 1e-12 or close(0.0, x)


def zeroes(value: Any, truth: Any, tol: Tolerance) -> bool:
    """Some entry of a student's ``value`` is (nearly) 0 where the true one is not: 0 itself, or
    1000 times smaller. Such a value is no source of ECF (it would make what follows trivial)."""
    close = comparison(tol)
    return any((_zero_like(x, close) or abs(x) < 1e-3 * abs(t)) and not _zero_like(t, close)
               for x, t in zip(np.ravel(value).tolist(), np.ravel(truth).tolist()))


def ecf_key(task: Task, path: str, true_key: Any, given: dict[str, np.ndarray], tol: Tolerance,
            cache: dict | None = None, check_constant: bool = True,
            derivative: str = "z") -> tuple[np.ndarray | None, str]:
    """The key of the part at ``path`` recomputed from ``given``, or (None, why no ECF is allowed).

    Guards: the chain must compute (finite); no entry may become 0 where the true one is not (an
    earlier answer that zeroes a later part, such as a dead ReLU or a zero activation); and the key
    must move when the given values move by ``SPREAD`` (else any answer upstream gives the same key:
    a saturated sigmoid, a ReLU pushed below 0); ``check_constant=False`` leaves that guard to the
    caller (``moves``), to run it only when the ECF key would earn credit.
    """
    key = recompute(task, given, path, cache, derivative)
    if key is None:
        return None, "the chain cannot be computed from your earlier answers"
    truth = np.asarray(true_key, dtype=np.float64)
    if key.shape != truth.shape:
        return None, "the chain from your earlier answers does not have this part's shape"
    close = comparison(tol)
    for k, t in zip(key.ravel().tolist(), truth.ravel().tolist()):
        if _zero_like(k, close) and not _zero_like(t, close):
            return None, "your earlier answer makes this part 0"
    if check_constant and not moves(task, path, key, given, tol, cache, derivative):
        return None, CONSTANT
    return key, ""


CONSTANT = "this part comes out the same whatever your earlier answer is"


def shift(v: np.ndarray, sign: float) -> np.ndarray:
    """A given value moved by the constant guard. Each entry moves by its own amount (1, 1.37, 1.74,
    ... times the spread), so that symmetric weights cannot cancel a shift that is the same for
    every entry."""
    return v + sign * SPREAD * (np.abs(v) + 1.0) * _spread(np.shape(v))  # (the spread made once per shape)


@lru_cache(maxsize=256)
def _spread(shape: tuple[int, ...]) -> np.ndarray:
    out = 1.0 + 0.37 * np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)
    if isinstance(out, np.ndarray):  # (a scalar for shape (), as the sum makes it: immutable)
        out.flags.writeable = False
    return out


def moves(task: Task, path: str, key: np.ndarray, given: dict[str, np.ndarray], tol: Tolerance,
          cache: dict | None = None, derivative: str = "z") -> bool:
    """The key at ``path`` changes (beyond the tolerance) when the given values move by SPREAD."""
    for sign in (1.0, -1.0):
        shifted = {p: shift(v, sign) for p, v in given.items()}
        other = recompute(task, shifted, path, cache, derivative)
        if other is None or not all(map(comparison(tol), other.ravel().tolist(), key.ravel().tolist())):
            return True
    return False


# ---------------------------------------------------------------- grading a chain

@dataclass
class PartKey:
    """One part of a variant: its key, shape, the earlier parts it depends on, its buggy answers."""

    part: Any  # bank.types.multipart.Part
    number: int  # 1-based, as students see it
    answer: Any
    shape: tuple[int, ...]
    deps: tuple[int, ...]  # indices of earlier parts
    name: str
    mistakes: dict[str, Any] = dc_field(default_factory=dict)


@dataclass
class PartResult:
    id: str
    number: int
    score: float  # points earned
    max_score: float
    feedback: str = ""
    format_error: str | None = None
    mistake: str | None = None
    ecf: bool = False
    ecf_from: list[dict[str, Any]] = dc_field(default_factory=list)  # [{part, name, value}]
    ecf_key: Any = None  # the key on the student's chain, when it earned the credit
    ecf_derivative: str = "z"  # that chain's f' below a given a: "z", or "a" (from the student's a)
    answered: bool = True

    @property
    def correct(self) -> bool:
        return self.format_error is None and self.max_score > 0 and abs(self.score - self.max_score) < 1e-9

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "score": round(self.score, 10), "max_score": self.max_score,
                "correct": self.correct, "feedback": self.feedback, "mistake": self.mistake,
                "format_error": self.format_error, "ecf": self.ecf, "ecf_from": self.ecf_from,
                "ecf_key": self.ecf_key, "ecf_derivative": self.ecf_derivative, "answered": self.answered}


def shown_value(x: Any) -> str:
    """A student's value in feedback: 4 significant figures."""
    return _shown(np.asarray(x, dtype=np.float64).tolist())


def _shown(x: Any) -> str:
    return fmt(x, 4) if isinstance(x, float) else "[" + ", ".join(_shown(e) for e in x) + "]"
