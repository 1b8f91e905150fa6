"""Every seed of a calculated item at once: the buggy calculators' answers and the patched parameter
slips of all its seeds from one batched run each (``calc.batch``), where the per-seed way runs the
calculator once per seed, mistake and slip.

What ``SeedChecks`` is handed is what the per-seed way computes, number for number: the batched
calculator gives every seed's numbers bit for bit (tests/bank/test_seed_batch.py), and every case
the batch does not cover (a path it cannot read, a patch that needs a reparse, a floating-point
error, an answer with residue to remove) is left to the per-seed way, seed by seed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..calc.batch import ActBatch, NetBatch, OptBatch, stack
from ..calc.batch_mistakes import buggy, read, run
from ..calc.mistakes import MISTAKES, unchanged_at
from .core import _shape, buggy_result, finite, parse_path, resolve
from .seedcmp import Keys, match, same
from .seedrun import batched
from .slip import QUADRATIC_A, QUADRATIC_B, _nested_shape, _read

SKIP = object()  # the per-seed way skips this seed: the calculator refuses it, or the answer is not finite
_MISSING = object()


class SeedBatch:
    """The batched answers of one item's seeds: ``buggy(seed)`` and ``slipped(seed, name, how)``."""

    def __init__(self, item: Any, tasks: list, results: list[dict], answers: list, specs: list[dict]):
        self.item, self.tasks, self.results, self.answers, self.specs = item, tasks, results, answers, specs
        self.path = item.model.answer
        self.steps = parse_path(self.path)
        ran = batched(item, tasks)  # the batch bank.seedrun ran, or a new one
        self.batch, self.true = ran if ran is not None else (stack(tasks), None)
        self._buggy: dict[str, tuple[list | None, list[bool], list[bool] | None, list[bool] | None] | None] = {}
        self.slips: dict[tuple[int, str, str], Any] = {}
        self.slip_verdicts: dict[tuple[int, str, str], tuple[bool, bool]] = {}
        self.keys = Keys.of(answers, item.model.tolerance) if self.batch is not None else None
        self._verdicts: list[list[tuple[str, bool, bool]]] | None = None
        self._same_everywhere: dict[str, bool] = {}

    # ------------------------------------------------------------ buggy calculators
    def buggy(self, seed: int) -> list[tuple[str, Any]]:
        """``core.buggy_answers(task, path, answer, list(MISTAKES), result)`` of the seed."""
        return [(mistake, value) for mistake, value, _ in self._found(seed)]

    def _found(self, seed: int) -> list[tuple[str, Any, bool]]:
        """``buggy(seed)``, each answer with whether the batch computed it."""
        task, result, answer = self.tasks[seed], self.results[seed], self.answers[seed]
        out = []
        for mistake in MISTAKES:
            if not self._unchanged(seed, mistake):
                hit = self._buggy.get(mistake, _MISSING)
                if hit is _MISSING:
                    hit = self._buggy[mistake] = self._run_buggy(mistake)
                if hit is not None:  # the batch's answer, already filtered as below
                    if hit[1][seed]:
                        out.append((mistake, hit[0][seed], True))
                    continue
                res = buggy_result(task, mistake)  # the batch cannot answer: the per-seed way
                value = _MISSING if res is None else _at(res, self.path)
            else:
                value = _at(result, self.path)
            if value is not _MISSING and _shape(value) == _shape(answer) and finite(value):
                out.append((mistake, value, False))
        return out

    def _unchanged(self, seed: int, mistake: str) -> bool:
        """``unchanged_at(task, mistake, path)`` of the seed's task. It reads the task's structure only
        (its kind, activation, loss, whether it updates, its layers' shapes), which every seed of a batch
        shares (``calc.batch.stack``): asked once per mistake then."""
        if self.batch is None:
            return unchanged_at(self.tasks[seed], mistake, self.steps)
        hit = self._same_everywhere.get(mistake)
        if hit is None:
            hit = self._same_everywhere[mistake] = unchanged_at(self.tasks[0], mistake, self.steps)
        return hit

    def verdicts(self, seed: int) -> list[tuple[str, bool, bool]]:
        """(mistake, its answer differs from the key: not ``seedcmp.same``, and the tolerance accepts it:
        ``seedcmp.match``) for each answer of ``buggy(seed)``, in its order; the comparisons made for all
        seeds at once (``seedcmp.Keys``) where the batch computed the answers."""
        if self._verdicts is None:
            tol, out = self.item.model.tolerance, []
            for s in range(len(self.tasks)):
                row = []
                for mistake, value, computed in self._found(s):
                    hit = self._buggy.get(mistake) if computed else None
                    if hit is not None and hit[2] is not None:
                        row.append((mistake, hit[2][s], hit[3][s]))
                    else:
                        differs = not same(value, self.answers[s])
                        row.append((mistake, differs, differs and match(value, self.answers[s], tol)))
                out.append(row)
            self._verdicts = out
        return self._verdicts[seed]

    def _run_buggy(self, mistake: str) -> tuple[list | None, list[bool], list[bool] | None, list[bool] | None] | None:
        """(every seed's answer, whether it is kept: the mistake applies, the answer has the key's shape
        and is finite, and where the answers are an array, ``Keys.verdicts``), or None where the batch
        cannot answer."""
        if self.batch is None:
            return None
        res, applies = buggy(self.batch, mistake, self.true)
        if res is None:
            return [None] * len(applies), [False] * len(applies), None, None
        arr = read(self.batch, res, self.steps)
        if arr is None:
            return None
        if type(arr) is list:  # a network's loss: a float per seed, None where refused
            return arr, [a and x is not None and _shape(x) == _shape(k) and math.isfinite(x)
                         for a, x, k in zip(applies, arr, self.answers)], None, None
        shape = arr.shape[1:]
        ok = np.isfinite(arr.reshape(len(applies), -1)).all(axis=1).tolist()
        verdicts = self.keys.verdicts(arr) if self.keys is not None else None
        return (arr.tolist(), [a and f and shape == _shape(k) for a, f, k in zip(applies, ok, self.answers)],
                *(verdicts or (None, None)))

    # ------------------------------------------------------------ parameter slips
    def add_slip(self, name: str, how: str, places: list[tuple[str, tuple, tuple]],
                 values: dict[int, dict[str, Any]]) -> None:
        """Compute the answers with ``name`` slipped (its ``how`` slip) on the seeds of ``values`` at once:
        ``values[seed]`` holds the slipped value of each name in ``places`` (``slip.places``: the
        parameter, and the derived values downstream of it), written where parsing would put them."""
        if self.batch is None or not values or not places:
            return
        seeds = [s for s in values if self._patchable(s, places, values[s])]
        if len(seeds) < 2:
            return
        arrays: dict[tuple, np.ndarray] = {}
        for src, field, index in places:
            new = arrays.get(field)
            if new is None:
                old = _batch_field(self.batch, field)
                if old is None:
                    return
                new = arrays[field] = old.copy()
            single = isinstance(self.batch, NetBatch) and self.batch.single and field[0] in ("input", "target")
            for s in seeds:
                new[(s, 0, *index) if single else (s, *index)] = values[s][src]
        slipped = _with_fields(self.batch, arrays)
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                res = run(slipped)
        except FloatingPointError:
            return  # some seed's slip overflows: each seed the per-seed way
        arr = read(slipped, res, self.steps)
        if arr is None:
            return
        got = arr if type(arr) is list else arr.tolist()
        verdicts = self.keys.verdicts(arr) if self.keys is not None and type(arr) is not list else None
        losses = res["loss"] if isinstance(slipped, NetBatch) else None
        fine = _finite_rows(arr)
        for s in seeds:
            value = got[s]
            if (losses is not None and losses[s] is None) or value is None or not (fine[s] if fine else finite(value)):
                self.slips[(s, name, how)] = SKIP
            elif not (fine[s] == 2 if fine else _noisy(value)):  # residue to remove: the per-seed way reparses
                self.slips[(s, name, how)] = value
                if verdicts is not None:
                    self.slip_verdicts[(s, name, how)] = (verdicts[0][s], verdicts[1][s])

    def slipped(self, seed: int, name: str, how: str) -> Any:
        """The seed's slipped answer, SKIP, or None where the per-seed way must compute it."""
        return self.slips.get((seed, name, how))

    def slip_verdict(self, seed: int, name: str, how: str) -> tuple[bool, bool] | None:
        """(the slipped answer differs from the key, the tolerance accepts it), as ``Keys.verdicts`` gives
        them, or None where the caller compares the answer itself."""
        return self.slip_verdicts.get((seed, name, how))

    def _patchable(self, seed: int, places: list, values: dict[str, Any]) -> bool:
        """``slip.patcher``'s patch would not ask for a reparse on this seed, and each value is a number
        or an array of them, as parsing would take it."""
        task, spec = self.tasks[seed], self.specs[seed]
        for src, field, index in places:
            value = values[src]
            t = type(value)
            if not (t is float or (t is int and abs(value) < 2 ** 53) or (t is np.ndarray and value.dtype.kind == "f")):
                return False
            raw = spec
            for step in field:
                raw = raw[step]
            old = _read(task, field)
            if old is None or _nested_shape(raw) != old.shape or np.shape(value) != np.shape(old[index]):
                return False
        return True


def _at(result: dict, path: str) -> Any:
    try:
        return resolve(result, path)
    except KeyError:
        return _MISSING


def _finite_rows(arr: Any) -> list[int] | None:
    """Per seed of a batched answer (seeds, ...): 0 where an entry is not finite (``core.finite``), 2 where
    one is residue (``_noisy``: 0 < |x| < 1e-9), else 1; None for a list of losses (seed by seed then)."""
    if type(arr) is list:
        return None
    flat = np.abs(arr.reshape(arr.shape[0], -1))
    with np.errstate(invalid="ignore"):
        noisy = ((flat > 0) & (flat < 1e-9)).any(axis=1)
    return (np.isfinite(flat).all(axis=1) * (1 + noisy)).tolist()


def _noisy(answer: Any) -> bool:
    if type(answer) is float:
        return 0 < abs(answer) < 1e-9
    tiny = np.abs(np.asarray(answer, dtype=np.float64))
    return bool(((tiny > 0) & (tiny < 1e-9)).any())


def _batch_field(batch: Any, field: tuple) -> np.ndarray | None:
    head = field[0]
    if isinstance(batch, NetBatch):
        if head == "input":
            return batch.x
        if head == "target":
            return batch.y
        if head == "network":
            return (batch.W if field[3] == "weights" else batch.b)[field[2]]
    elif isinstance(batch, ActBatch) and head == "z":
        return batch.z
    elif isinstance(batch, OptBatch):
        if head == "params":
            return batch.params
        if head == "gradients" and batch.gradients is not None and field[1] < len(batch.gradients):
            return batch.gradients[field[1]]
        if head == "objective":
            return batch.A if field[2] == "A" else batch.b
    return None


def _with_fields(batch: Any, arrays: dict[tuple, np.ndarray]) -> Any:
    if isinstance(batch, NetBatch):
        W, b = list(batch.W), list(batch.b)
        for field, new in arrays.items():
            if field[0] == "network":
                (W if field[3] == "weights" else b)[field[2]] = new
        return replace(batch, W=tuple(W), b=tuple(b), x=arrays.get(("input",), batch.x),
                       y=arrays.get(("target",), batch.y))
    if isinstance(batch, ActBatch):
        return replace(batch, z=arrays[("z",)])
    grads = list(batch.gradients) if batch.gradients is not None else None
    for field, new in arrays.items():
        if field[0] == "gradients":
            grads[field[1]] = new
    return replace(batch, params=arrays.get(("params",), batch.params),
                   gradients=tuple(grads) if grads is not None else None,
                   A=arrays.get(QUADRATIC_A, batch.A), b=arrays.get(QUADRATIC_B, batch.b))
