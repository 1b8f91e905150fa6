"""A parameter slip's answer without substituting and parsing the spec again.

The validator reruns every calculated item with one parameter slipped (transposed, its minus signs
dropped) on every seed. Where the parameter goes straight into numeric fields of the task (a
layer's weights, the input, an optimizer's params, one gradient or its quadratic objective, an
activation's z), the slipped task is the true task with those entries replaced, exactly as parsing
the slipped spec would give them; anything else (a derived value, a learning rate, a given value)
goes the long way, through ``calculate`` (over all seeds at once, ``bank.seedbatch`` also patches
the derived values downstream of a parameter where they go into such fields).
"""

from __future__ import annotations

from ..calc.records import replace
from typing import Any, Callable

import numpy as np

from ..calc.engine import run_network, run_task
from ..calc.losses import InfiniteLossError
from ..calc.spec import ActivationTask, NetworkTask, OptimizerTask, SpecError, Task
from .core import VariantError, finite, parse_path, resolve

Patch = Callable[[Task, dict, Any], Task]  # (true task, true spec, slipped value) -> the slipped task


def _where(obj: Any, name: str, path: tuple = ()) -> list[tuple]:
    """Every place in a spec that holds ``"$name"``."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _where(v, name, path + (k,))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _where(v, name, path + (i,))]
    return [path] if obj == "$" + name else []


def _split(path: tuple) -> tuple[tuple, tuple] | None:
    """(the task field a spec path writes, the index within it), for the fields a patch can write."""
    n = len(path)
    if n >= 1 and path[0] in ("input", "target", "z", "params"):
        field, rest = path[:1], path[1:]
    elif n >= 4 and path[:2] == ("network", "layers") and type(path[2]) is int and path[3] in ("weights", "bias"):
        field, rest = path[:4], path[4:]
    elif n >= 2 and path[0] == "gradients" and type(path[1]) is int:
        field, rest = path[:2], path[2:]
    elif n >= 3 and path[:2] == ("objective", "quadratic") and path[2] in ("A", "b"):
        field, rest = path[:3], path[3:]
    else:
        return None
    return (field, rest) if all(type(i) is int for i in rest) else None


QUADRATIC_A, QUADRATIC_B = ("objective", "quadratic", "A"), ("objective", "quadratic", "b")


def places(calc: dict, names: list[str]) -> list[tuple[str, tuple, tuple]] | None:
    """(name, task field, index) of every place in ``calc`` that holds one of ``names``; None when
    one of them is a place a patch cannot write (bank.seedbatch then leaves the slip to ``calculate``)."""
    out = []
    for name in names:
        for path in _where(calc, name):
            split = _split(path)
            if split is None:
                return None
            out.append((name, *split))
    return out


def patcher(calc: dict, name: str) -> Patch | None:
    """How to slip ``name`` in the task that ``calc`` gives, or None when it must be reparsed."""
    places = _where(calc, name)
    split = [_split(p) for p in places]
    if not places or any(s is None for s in split):
        return None

    def patch(task: Task, spec: dict, value: Any) -> Task:
        arrays: dict[tuple, np.ndarray] = {}
        for field, index in split:
            raw = spec
            for step in field:
                raw = raw[step]
            old = _read(task, field)
            if old is None or _nested_shape(raw) != old.shape:  # parsing reshaped it: cannot patch in place
                raise Reparse
            new = arrays.get(field)
            if new is None:
                new = arrays[field] = old.copy()
            if np.shape(value) != np.shape(new[index]):
                raise Reparse
            new[index] = value
        return _write(task, arrays)

    patch.places = split  # type: ignore[attr-defined]  # (field, index) of each place: bank.seedbatch patches batches
    return patch


def _nested_shape(raw: Any) -> tuple[int, ...]:
    """The shape of nested lists that parsed into an array (so not ragged): np.shape, without the array."""
    shape = []
    while type(raw) is list:
        shape.append(len(raw))
        if not raw:
            break
        raw = raw[0]
    return tuple(shape)


class Reparse(Exception):
    """The patch cannot stand in for ``calculate`` here: ask it."""


def _read(task: Task, field: tuple) -> np.ndarray | None:
    head = field[0]
    if isinstance(task, NetworkTask):
        if head == "input":
            return task.x
        if head == "target":
            return task.y
        if head == "network":
            layer = task.network.layers[field[2]]
            return layer.weights if field[3] == "weights" else layer.bias
    elif isinstance(task, ActivationTask) and head == "z":
        return task.z
    elif isinstance(task, OptimizerTask):
        if head == "params":
            return task.params
        if head == "gradients" and task.gradients is not None and field[1] < len(task.gradients):
            return task.gradients[field[1]]
        if head == "objective":
            return task.A if field[2] == "A" else task.b
    return None


def _write(task: Task, arrays: dict[tuple, np.ndarray]) -> Task:
    if isinstance(task, NetworkTask):
        layers = list(task.network.layers)
        for field, new in arrays.items():
            if field[0] == "network":
                k = field[2]
                layers[k] = replace(layers[k], **{field[3]: new})
        return replace(task, network=replace(task.network, layers=tuple(layers)),
                       x=arrays.get(("input",), task.x), y=arrays.get(("target",), task.y))
    if isinstance(task, ActivationTask):
        return replace(task, z=arrays[("z",)])
    grads = list(task.gradients) if task.gradients is not None else None
    for field, new in arrays.items():
        if field[0] == "gradients":
            grads[field[1]] = new
    return replace(task, params=arrays.get(("params",), task.params),
                   gradients=tuple(grads) if grads is not None else None,
                   A=arrays.get(QUADRATIC_A, task.A), b=arrays.get(QUADRATIC_B, task.b))


def _result(task: Task, steps: tuple) -> dict:
    """``run_task``'s result, or as much of it as ``steps`` reads: a network's output and loss, or
    one layer (the others None), each as ``to_json`` gives it."""
    if not isinstance(task, NetworkTask):
        return run_task(task)
    r = run_network(task)
    if steps[0] == "layers" and len(steps) > 1 and type(steps[1]) is int and -len(r.layers) <= steps[1] < len(r.layers):
        layers: list[Any] = [None] * len(r.layers)
        layers[steps[1]] = r.layer_json(r.layers[steps[1]])
        return {"layers": layers}
    if steps[0] in ("output", "loss"):
        return {"output": r.example(r.output), "loss": r.loss}
    return r.to_json()


def slipped_answer(item: Any, seed: int, patch: Patch, task: Task, spec: dict, value: Any) -> Any:
    """The answer with the slipped value patched into the task, as ``calculate`` would read it;
    raises VariantError where ``calculate`` would, and Reparse where it must be asked (the patch
    cannot stand in for parsing, or the answer needs its floating-point residue removed)."""
    slipped = patch(task, spec, value)
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            result = _result(slipped, parse_path(item.model.answer))
    except (SpecError, InfiniteLossError, FloatingPointError) as e:
        raise VariantError(("calc",), f"the calculator refuses seed {seed}'s spec: {e}") from None
    try:
        answer = resolve(result, item.model.answer)
    except KeyError as e:
        raise VariantError(("answer",), str(e).strip('"')) from None
    if not finite(answer):
        raise VariantError(("answer",), f"the answer is not a finite number for seed {seed}: {answer!r}")
    if type(answer) is float:
        noisy = 0 < abs(answer) < 1e-9
    else:
        tiny = np.abs(np.asarray(answer, dtype=np.float64))
        noisy = bool(((tiny > 0) & (tiny < 1e-9)).any())
    if noisy:  # denoising reads the whole slipped spec: let calculate do it
        raise Reparse
    return answer
