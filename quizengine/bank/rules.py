"""Lint rules over a calculated item's seeds: slips the tolerance lets through (every buggy
calculator, perturbed or transposed parameters), degenerate variants and residue (the stated
precision: bank/precision.py).

``validate`` runs each item's seeds once and hands every seed to a ``SeedChecks``; its
``problems`` then say what was found, and ``report`` gives the rates ``validate --report`` prints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..calc.mistakes import MISTAKES
from ..calc.spec import ActivationTask, NetworkTask, OptimizerTask, Task
from ..tolerance import Tolerance, entries_close
from .core import VariantError, buggy_answers, calculate, finite, parse_path
from .loader import BankItem, Problem
from .params import ParamError, evaluate, fmt, references, template_names
from .seedbatch import SKIP
from .seedcmp import match as _match, same as _same
from .slip import Reparse, patcher, places, slipped_answer

LEAK_SHARE = 0.01  # a slip the tolerance accepts in more than this share of seeds is an error (any share: a warning)
BRANCHED = ("relu", "leaky_relu", "elu")  # activations with a branch at z = 0

# ---------------------------------------------------------------- (f) residue in printed text

_PRINTED = re.compile(r"(?<![\w.])-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+| \\times 10\^\{-?\d+\})?")


def residue(text: str) -> str | None:
    """The first number ``text`` prints that is below 1e-12 of its largest one (e.g. -5.55112e-17), or None."""
    found = []
    for m in _PRINTED.finditer(text):
        token = m.group(0)
        try:
            x = float(re.sub(r" \\times 10\^\{(-?\d+)\}", r"e\1", token))
        except ValueError:
            continue
        if math.isfinite(x):
            found.append((abs(x), token))
    top = max((x for x, _ in found), default=0.0)
    return next((token for x, token in found if 0 < x < 1e-12 * top), None)


# ---------------------------------------------------------------- per-seed checks

def _shown_values(m: Any) -> list[str]:
    """The params and derived values the prompt shows and the calculator sees (directly or not)."""
    used = references(m.calc)
    for name in reversed(list(m.derived)):
        if name in used:
            used |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.derived[name]))
    shown = template_names(m.prompt)
    return [n for n in (*m.params, *m.derived) if n in used and n in shown]


NO_UPDATE = "no_update"  # not updating at all: an entry that moves is (within tolerance) its value before the update


def _unmoved_credit(start: Any, answer: Any, tol: Tolerance) -> bool:
    """Not updating earns credit for an entry the update does move, or for the whole answer.

    Only entries whose true update differs from the start by more than floating-point residue
    (1e-12 of the largest value, as in ``_same``) count: an entry whose gradient is exactly 0 (a
    dead ReLU unit's incoming weights) stays where it was, and copying it is the right answer, not
    evidence of the slip. An update that moves no entry at all is: doing nothing is then right.
    """
    s, a = np.asarray(start, dtype=np.float64), np.asarray(answer, dtype=np.float64)
    scale = max(float(np.max(np.abs(s), initial=0.0)), float(np.max(np.abs(a), initial=0.0)), 1.0)
    moves = np.abs(a - s) > 1e-12 * scale
    return not np.any(moves) or bool(np.any(moves & entries_close(s, a, tol)))


def _before_update(task: Task, path: str) -> Any:
    """For an answer that is a parameter after an update, the same entries before it; else None."""
    steps = parse_path(path)
    try:
        if isinstance(task, OptimizerTask) and len(steps) >= 3 and steps[0] == "steps" and steps[2] == "params":
            value = np.asarray(task.params, dtype=np.float64)
            rest = steps[3:]
        elif isinstance(task, NetworkTask) and len(steps) >= 3 and steps[0] == "layers" and steps[2] in ("W_new", "b_new"):
            layer = task.network.layers[steps[1]]
            value = np.asarray(layer.weights if steps[2] == "W_new" else layer.bias, dtype=np.float64)
            rest = steps[3:]
        else:
            return None
        for i in rest:
            value = value[i]
    except (IndexError, TypeError):
        return None
    return value.tolist()


def _relu_zero(task: Task, path: str) -> bool:
    """The answer is a ReLU's output, whose 0 is its zero branch: computed, not a coincidence."""
    steps = parse_path(path)
    if isinstance(task, ActivationTask):
        return task.name == "relu" and steps[0] == "value"
    if isinstance(task, NetworkTask):
        k = len(task.network.layers) - 1 if steps[0] == "output" else (
            steps[1] if steps[0] == "layers" and len(steps) > 2 and steps[2] == "a" else None)
        return k is not None and task.network.layers[k].activation.name == "relu"
    return False


def _downstream(m: Any, param: str) -> list[str]:
    """The derived values that depend on ``param``, in evaluation order (not ``param`` itself)."""
    changed, out = {param}, []
    for name, expr in m.derived.items():
        if name != param and set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) & changed:
            changed.add(name)
            out.append(name)
    return out


def _slips(value: Any) -> list[tuple[str, Any]]:
    """The typical slips in reading one parameter: a square matrix transposed, minus signs dropped.

    (A 10% misreading was tried too: through a sigmoid or two, nearly every parameter of every
    network item then "goes unnoticed" at 3 significant figures, which says more about squashing
    functions than about the items.)
    """
    t = type(value)
    if t is float or t is int:  # the common scalar, without a 0-d array (same result as below)
        return [("with its minus signs dropped", abs(float(value)))] if value < 0 else []
    if isinstance(value, bool) or not isinstance(value, (int, float, np.ndarray, np.floating, np.integer)):
        return []
    a = np.asarray(value, dtype=np.float64)
    out: list[tuple[str, Any]] = []
    if a.ndim == 2 and a.shape[0] == a.shape[1] and not (a == a.T).all():
        out.append(("transposed", a.T.copy()))
    if (a < 0).any():
        out.append(("with its minus signs dropped", np.abs(a) if a.ndim else abs(float(a))))
    return out


@dataclass
class SeedChecks:
    """What the seeds of one calculated item showed, gathered one seed at a time."""

    item: BankItem
    total: int  # the seeds that will be checked
    seeds: int = 0
    keys: list[Any] = field(default_factory=list)
    applies: dict[str, int] = field(default_factory=dict)  # mistake -> seeds where it runs
    differs: dict[str, int] = field(default_factory=dict)  # ...and gives another answer
    leaks: dict[str, list[int]] = field(default_factory=dict)  # ...which the tolerance accepts
    slip_tried: dict[tuple[str, str], int] = field(default_factory=dict)  # (param, slip) -> seeds it changed the answer
    slip_leaks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    zeros: list[int] = field(default_factory=list)  # seeds whose scalar key is exactly 0
    branches: dict[str, list[float]] = field(default_factory=dict)  # "layer 1 (relu)" -> [min z, max z]

    def __post_init__(self) -> None:
        m = self.item.model
        self.relevant = _shown_values(m)
        self.downstream = {p: _downstream(m, p) for p in self.relevant}
        self.patches = {p: None if self.downstream[p] else patcher(m.calc, p) for p in self.relevant}
        self.places = {p: places(m.calc, [p, *self.downstream[p]]) for p in self.relevant}  # for the batch
        self.slip_cap = math.floor(LEAK_SHARE * self.total) + 1  # stop trying a slip once it is surely an error
        self.slip_lists: dict[tuple[int, str], list[tuple[str, Any]]] = {}  # (seed, name) -> _slips, from prepare

    def add(self, seed: int, env: dict[str, Any], task: Task, result: dict, answer: Any, spec: dict | None = None,
            batch: Any = None) -> None:
        """One seed's checks; ``batch`` (a ``bank.seedbatch.SeedBatch`` of every seed) hands out what it
        computed for all seeds at once."""
        m = self.item.model
        self.seeds += 1
        self.keys.append(answer)
        if np.ndim(answer) == 0 and float(answer) == 0.0 and not _relu_zero(task, m.answer):
            self.zeros.append(seed)
        found = batch.verdicts(seed) if batch is not None else []  # (mistake, differs, the tolerance accepts it)
        for k, value in buggy_answers(task, m.answer, answer, list(MISTAKES), result) if batch is None else ():
            differs = not _same(value, answer)
            found.append((k, differs, differs and _match(value, answer, m.tolerance)))
        for k, differs, leaks in found:
            self.applies[k] = self.applies.get(k, 0) + 1
            if differs:
                self.differs[k] = self.differs.get(k, 0) + 1
                if leaks:
                    self.leaks.setdefault(k, []).append(seed)
        start = _before_update(task, m.answer)
        if start is not None and np.shape(start) == np.shape(answer) and _unmoved_credit(start, answer, m.tolerance):
            self.leaks.setdefault(NO_UPDATE, []).append(seed)
        if start is not None:
            self.applies[NO_UPDATE] = self.applies.get(NO_UPDATE, 0) + 1
            self.differs[NO_UPDATE] = self.differs.get(NO_UPDATE, 0) + (not _same(start, answer))
        self._branches(task, result)
        self._try_slips(seed, env, answer, task, spec, batch)

    def _branches(self, task: Task, result: dict) -> None:
        zs: list[tuple[str, Any]] = []
        if isinstance(task, NetworkTask):
            zs = [(f"layer {k + 1}'s {layer.activation.name}", lr["z"])
                  for k, (layer, lr) in enumerate(zip(task.network.layers, result["layers"]))
                  if layer.activation.name in BRANCHED]
        elif isinstance(task, ActivationTask) and task.name in BRANCHED:
            zs = [(task.name, task.z)]
        for name, z in zs:
            z = np.asarray(z, dtype=np.float64)
            lo, hi = self.branches.setdefault(name, [math.inf, -math.inf])
            self.branches[name] = [min(lo, float(z.min())), max(hi, float(z.max()))]

    def prepare(self, batch: Any, envs: list[dict[str, Any]]) -> None:
        """Hand ``batch`` every seed's slips, to compute at once: each slipped value and the derived
        values downstream of it (the seeds where one of those cannot be evaluated go seed by seed)."""
        m = self.item.model
        for name in self.relevant:
            at = self.places[name]
            by_how: dict[str, dict[int, dict[str, Any]]] = {}
            for seed, env in enumerate(envs):
                found = self.slip_lists[(seed, name)] = _slips(env[name])
                for how, value in found if at else ():
                    slipped = dict(env)  # as _slipped computes them
                    slipped[name] = value
                    try:
                        for d in self.downstream[name]:
                            slipped[d] = evaluate(m.derived[d], slipped)
                    except (ParamError, ValueError, FloatingPointError):
                        continue
                    by_how.setdefault(how, {})[seed] = slipped
            for how, values in by_how.items():
                batch.add_slip(name, how, at, values)

    def _try_slips(self, seed: int, env: dict[str, Any], answer: Any, task: Task, spec: dict | None,
                   batch: Any = None) -> None:
        m = self.item.model
        for name in self.relevant:
            found = self.slip_lists.get((seed, name))
            for how, value in found if found is not None else _slips(env[name]):
                key = (name, how)
                if len(self.slip_leaks.get(key, ())) >= self.slip_cap:
                    continue
                other = batch.slipped(seed, name, how) if batch is not None else None
                if other is SKIP:
                    continue
                verdict = batch.slip_verdict(seed, name, how) if other is not None else None
                if verdict is not None:  # (the batch compared it: a finite answer)
                    if verdict[0]:
                        self.slip_tried[key] = self.slip_tried.get(key, 0) + 1
                        if verdict[1]:
                            self.slip_leaks.setdefault(key, []).append(seed)
                    continue
                if other is None:
                    try:
                        other = self._slipped(seed, env, name, value, task, spec)
                    except (VariantError, ParamError, ValueError, FloatingPointError):
                        continue
                if not finite(other) or _same(other, answer):
                    continue  # the answer does not depend on it here
                self.slip_tried[key] = self.slip_tried.get(key, 0) + 1
                if _match(other, answer, m.tolerance):
                    self.slip_leaks.setdefault(key, []).append(seed)

    def _slipped(self, seed: int, env: dict[str, Any], name: str, value: Any, task: Task, spec: dict | None) -> Any:
        """The answer with ``name`` slipped to ``value``: patched into the task where it can be
        (``bank.slip``), else through the whole calculation with its downstream derived values."""
        patch = self.patches[name]
        if patch is not None and spec is not None:
            try:
                with np.errstate(all="ignore"):
                    return slipped_answer(self.item, seed, patch, task, spec, value)
            except Reparse:
                pass
        m = self.item.model
        slipped = dict(env)
        slipped[name] = value
        for d in self.downstream[name]:
            slipped[d] = evaluate(m.derived[d], slipped)
        with np.errstate(all="ignore"):
            return calculate(self.item, seed, slipped)[3]

    # ------------------------------------------------------------ findings
    def problems(self) -> list[Problem]:
        item, m, n = self.item, self.item.model, self.seeds
        where_value = {name: ("params", name) if name in m.params else ("derived", name) for name in self.relevant}
        out: list[Problem] = []
        where = ("tolerance",) if "tolerance" in item.raw else ("answer",)
        for k in (*MISTAKES, NO_UPDATE):
            seeds = self.leaks.get(k, [])
            if not seeds or k in m.mistakes:
                continue  # a listed mistake is checked with the item's list (validate._listed_mistakes)
            out.append(item.problem(where, f"the tolerance accepts the answer of the unlisted slip {k!r} in {len(seeds)} "
                                    f"of {n} seeds (first: seed {seeds[0]}): tighten the tolerance or change the "
                                    "params so that the slip shows", _severity(len(seeds), n)))
        for (name, how), seeds in self.slip_leaks.items():
            if len(seeds) > LEAK_SHARE * n:
                out.append(item.problem(where_value[name], f"the answer barely depends on {name!r}: with {name} {how} it "
                                        f"is still accepted in {len(seeds)}{'+' if len(seeds) >= self.slip_cap else ''} "
                                        f"of {n} seeds (first: seed {seeds[0]}), so a slip in {name} goes unnoticed; "
                                        "change the params or ask for a quantity that depends on it"))
        if self.zeros:
            out.append(item.problem(("params",) if m.params else ("answer",),
                                    f"the key is exactly 0 in {len(self.zeros)} of {n} seeds (first: seed {self.zeros[0]}): "
                                    "a student who does nothing is right; exclude the params that give it",
                                    _severity(len(self.zeros), n)))
        if m.params and n > 1:
            out += self._constant_entries()
        if not m.allow_trivial:
            for name, (lo, hi) in self.branches.items():
                if hi <= 0 or lo > 0:
                    side = "z <= 0 (the zero or negative branch)" if hi <= 0 else "z > 0 (the identity branch)"
                    out.append(item.problem(("params",) if m.params else ("calc",),
                                            f"{name} only ever sees {side} over {n} seeds (z from {fmt(lo, 3)} to "
                                            f"{fmt(hi, 3)}): widen the params so that both branches occur"))
        return out

    def _constant_entries(self) -> list[Problem]:
        keys = [np.asarray(k, dtype=np.float64) for k in self.keys]
        if len({k.shape for k in keys}) != 1:
            return []
        stack = np.stack(keys)  # (seeds, *shape of the key)
        const = np.all(np.abs(stack - stack[0]) <= 1e-12 * np.maximum(np.abs(stack[0]), 1e-300), axis=0)
        where = ([()] if const else []) if stack.ndim == 1 else [tuple(i) for i in np.argwhere(const)]
        out = []
        for idx in where:
            at = "".join(f"[{i}]" for i in idx)
            out.append(self.item.problem(("answer",), f"the key{' entry ' + at if at else ''} is {fmt(stack[(0, *idx)])} "
                                         f"in every one of {len(keys)} seeds: it can be learnt, not computed; make it "
                                         "depend on the params"))
        return out

    def report(self) -> list[tuple[str, str, int, int, int]]:
        """(item, slip, seeds where it changes the answer, seeds the tolerance accepts it, seeds) rows."""
        rows = [(self.item.id, k, self.differs.get(k, 0), len(self.leaks.get(k, [])), self.seeds)
                for k in (*MISTAKES, NO_UPDATE) if self.applies.get(k)]
        rows += [(self.item.id, f"{name} {how}", tried, len(self.slip_leaks.get((name, how), [])), self.seeds)
                 for (name, how), tried in sorted(self.slip_tried.items())]
        return rows


def _severity(count: int, seeds: int) -> str:
    return "error" if count > LEAK_SHARE * seeds else "warning"
