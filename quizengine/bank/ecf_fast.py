"""Short-cuts in grading a chain with error carried forward that cannot change a mark: each gives,
bit for bit, what ``ecf_key`` and ``moves`` (bank/ecf.py) give, or steps aside for them.

1. **Pruned givens.** A student's earlier answer that is bit for bit the value the calculator
   computes from the answers before it (in the calculator's order) changes nothing when given: the
   put writes the same numbers. So a later part's ECF key is read from the run of the other answers,
   usually already run for an earlier part. A chain whose first part slipped and whose later parts
   were carried on exactly needs one run for every part's key, not one per part.
2. **One shifted run for the constant guard.** ``moves`` reruns a part's chain with every given value
   moved. A quantity is computed only from what the calculator computed or was given before it, so
   one run with every source moved at once, reading each part's quantity as computed (before any
   given value replaced it), gives each part's moved key, provided every moved source that can reach
   that quantity is one of the part's own sources. Where that key differs from the ECF key, ``moves``
   would say True too: its own run either gives the same number or fails, and a failure counts as
   moving. Anything else (the key did not move, the shared run failed, a source the part lacks)
   leaves the decision to ``moves`` itself.

Grading with ``shortcut=False`` (bank/ecf_grade.py) skips both; tests/bank/test_ecf_shortcut.py checks
that both ways give the same results.
"""

from __future__ import annotations

from dataclasses import replace
from math import isfinite
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from ..calc.engine import run_task
from ..calc.spec import Task
from ..tolerance import Tolerance, comparison
from .core import resolve
from .ecf import finite, layout, recompute, shift, signature, slot_place, with_given

LEAVES = ("loss", "W_new", "b_new")  # network quantities nothing else is computed from
UPDATE = ("W_new", "b_new")  # the only quantities computed from dW and db
STEP = {"gradient": 0, "velocity": 1, "second_moment": 1, "params": 2}  # velocity and second moment: one call


class Place(NamedTuple):
    """Where a path's value is in a run: the calculator's slot, the index into the slot's array as
    the calculator holds it, and the slot's place in the order of computing."""

    key: tuple
    index: tuple[int, ...]
    order: int


@lru_cache(maxsize=4096)
def locate(kind: tuple, path: str) -> Place | None:
    """Where ``path`` is in a run of a task of layout ``kind`` (ecf.layout); None if it names none."""
    place = slot_place(kind, path)
    return None if place is None else Place(place[0], place[1], _order(kind, place[0]))


def _order(kind: tuple, key: tuple) -> int:
    """The slot's place in a run (network.run, optimizers.run): forward, loss, backward from the last
    layer, updates; an optimizer's steps in turn, each gradient, moments, parameters."""
    step, name = key
    if kind[0] == "optimizer":
        return 3 * step + STEP[name]
    n = len(kind[1])
    if name in ("z", "a"):
        return 2 * step + (name == "a")
    if name == "loss":
        return 2 * n
    if name in ("delta", "dW", "db"):
        return 2 * n + 1 + 3 * (n - 1 - step) + ("delta", "dW", "db").index(name)
    return 5 * n + 1 + 2 * step + (name == "b_new")


def reaches(kind: tuple, source: Place, target: Place, flow: tuple[bool, bool, bool] = (True, True, False)) -> bool:
    """Can a value given at ``source`` change what the calculator computes at ``target``? (Erring
    towards yes.) A network: every slot computed later, except that nothing is computed from the loss
    or an update, and only the updates from dW and db. An optimizer (optimizers.run): within a step
    the moments come from the gradient and the moments before, the parameters from all of those; a
    gradient comes from the parameters before it only with an objective, the moments from the
    parameters only with a coupled penalty, and each moment from its own only for the rules known to
    keep them apart (``flow`` = (objective, penalty, apart); by default yes, yes, no)."""
    if source.order >= target.order:
        return False
    if kind[0] == "network":
        name = source.key[1]
        return not (name in LEAVES or (name in ("dW", "db") and target.key[1] not in UPDATE))
    return source.key in _optimizer_upstream(target.key, *flow)


APART = ("sgd", "rmsprop", "adagrad", "adam", "adamw")  # optimizers.*_state: each moment from its own alone


@lru_cache(maxsize=4096)
def _optimizer_upstream(key: tuple, objective: bool, penalty: bool, apart: bool) -> frozenset:
    seen: set = set()
    todo = [key]
    while todo:
        k, name = todo.pop()
        prev = [(k - 1, "params")] if k > 0 else []
        if name == "gradient":
            parents = prev if objective else []
        elif name in ("velocity", "second_moment"):
            moments = [(k - 1, name)] if apart else [(k - 1, "velocity"), (k - 1, "second_moment")]
            parents = (moments if k > 0 else []) + [(k, "gradient")] + (prev if penalty else [])
        else:  # params
            parents = prev + [(k, "velocity"), (k, "second_moment"), (k, "gradient")]
        for n in parents:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return frozenset(seen)


def same_bits(x: np.ndarray, y: Any) -> bool:
    y = np.asarray(y, dtype=np.float64)
    return x.shape == y.shape and x.tobytes() == y.tobytes()


class Shortcuts:
    """The short-cuts for one graded response: ``task`` the variant's, ``true_result`` its result
    (its run without given values) or None, ``sources`` every earlier answer that is a source of ECF
    for some part (path -> value), ``cache`` the grading's recompute cache."""

    def __init__(self, task: Task, true_result: dict | None, sources: dict[str, np.ndarray], cache: dict) -> None:
        self.task, self.kind, self.cache, self.sources = task, layout(task), cache, sources
        self.places = {p: locate(self.kind, p) for p in sources} if self.kind else {}  # the sources'
        self.where = dict(self.places)  # every path asked about
        c = getattr(task, "config", None)  # an optimizer's: what its gradient and moments are computed from
        self.flow = (getattr(task, "gradients", None) is None,
                     bool(c is not None and (c.weight_decay and c.name != "adamw" or c.l1)),
                     c is not None and c.name in APART)
        if true_result is not None:
            for way in ("z", "a"):
                cache.setdefault(signature({}, way), true_result)
        self.shifted: dict[tuple[float, str], tuple[dict, dict] | None] = {}
        self.memo: dict[tuple, Any] = {}  # by the values' ids: a grading's values live as long as it does

    # ------------------------------------------------------------ 1. pruned givens
    def pruned(self, given: dict[str, np.ndarray], derivative: str) -> dict[str, np.ndarray]:
        """``given`` without the values that are bit for bit what the calculator computes from the
        others (a run with the result gives the same numbers everywhere, and fails where it fails)."""
        places = [(self._place(p), p, x) for p, x in given.items()] if self.kind else []
        if not places or any(pl is None for pl, _, _ in places) or len({pl.key for pl, _, _ in places}) < len(places):
            return given
        places.sort(key=lambda e: e[0].order)
        kept: dict[str, np.ndarray] = {}
        for n, (_, path, x) in enumerate(places):
            same = self._computed(kept, path, x, derivative)
            if same is None:  # not run yet: running it to save a run would save nothing
                return {**kept, **{p: v for _, p, v in places[n:]}}
            if not same:
                kept[path] = x
        return kept

    def _place(self, path: str) -> Place | None:
        if path not in self.where:
            self.where[path] = locate(self.kind, path)
        return self.where[path]

    def _computed(self, kept: dict[str, np.ndarray], path: str, x: np.ndarray, derivative: str) -> bool | None:
        """Is ``x`` bit for bit the value at ``path`` of the run with ``kept`` given? None: not run yet."""
        memo = ("computed", derivative, path, id(x), *((p, id(v)) for p, v in kept.items()))
        if memo not in self.memo:
            if not kept and signature(kept, derivative) not in self.cache:  # a spec with given values of its own
                recompute(self.task, {}, path, self.cache, derivative)  # (the run without the student's, once)
            run = self.cache.get(signature(kept, derivative))
            try:
                self.memo[memo] = None if run is None else finite(x) and same_bits(x, resolve(run, path))
            except (KeyError, IndexError, TypeError):
                self.memo[memo] = False
        return self.memo[memo]

    # ------------------------------------------------------------ 2. one shifted run
    def moves(self, path: str, key: np.ndarray, given: dict[str, np.ndarray], tol: Tolerance, derivative: str) -> bool:
        """True when ``moves`` would say True, read from the shared run with every source moved up;
        False when this cannot tell (then ``moves`` decides)."""
        other = self.moved(path, given, derivative)
        if other is None:
            return False
        flat = other.ravel().tolist()
        if not all(map(isfinite, flat)):
            return True
        return not all(map(comparison(tol), flat, key.ravel().tolist()))

    def moved(self, path: str, given: dict[str, np.ndarray], derivative: str) -> np.ndarray | None:
        """The value at ``path`` with ``given`` moved up by the guard's shift, as ``recompute`` gives
        it when it computes, read from the shared run; None if that run cannot tell."""
        target = self._place(path) if self.kind else None
        if target is None or not self._alone(path, target, given):
            return None
        run = self._shifted(1.0, derivative)
        if run is None:
            return None
        before, result = run
        try:
            value = before[target.key][target.index] if target.key in before else resolve(result, path)
        except (KeyError, IndexError, TypeError):
            return None
        return np.asarray(value, dtype=np.float64)

    def _alone(self, path: str, target: Place, given: dict[str, np.ndarray]) -> bool:
        """Can the shared run stand for the run with ``given`` moved, at ``target``? Every given value
        is a source, and every other source is computed after the target or apart from it."""
        memo = ("alone", path, *((p, id(x)) for p, x in given.items()))
        if memo not in self.memo:
            ok = all(self.sources.get(p) is x for p, x in given.items())
            for p, place in self.places.items() if ok else ():
                # a path not in the graph, the part's own quantity given (a partial one), or a source
                # this part does not use that could change its quantity
                if place is None or (p in given and place.key == target.key) or (
                        p not in given and reaches(self.kind, place, target, self.flow)):
                    ok = False
                    break
            self.memo[memo] = ok
        return self.memo[memo]

    def _shifted(self, sign: float, derivative: str) -> tuple[dict, dict] | None:
        """The run with every source moved as ``moves`` moves it: (each given slot's value as computed,
        before the given one replaced it; the result), or None if it fails."""
        if (sign, derivative) not in self.shifted:
            self.shifted[(sign, derivative)] = None
            before: dict[tuple, np.ndarray] = {}
            try:
                moved = {p: shift(v, sign) for p, v in self.sources.items()}
                task = with_given(self.task, moved, derivative)
                puts = {k: _recorder(before, k, put) for k, put in task.given.puts.items()}
                task = replace(task, given=replace(task.given, puts=puts))
                with np.errstate(over="raise", invalid="raise", divide="raise"):
                    self.shifted[(sign, derivative)] = (before, run_task(task))
            except Exception:  # noqa: BLE001 - any failure: moves runs its own chains
                pass
        return self.shifted[(sign, derivative)]


def _recorder(before: dict, key: tuple, put: Any) -> Any:
    def record(current: np.ndarray) -> np.ndarray:
        before[key] = np.array(current, dtype=np.float64)
        return put(current)

    return record
