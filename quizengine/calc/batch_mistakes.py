"""The buggy calculators (``calc.mistakes``) over a batch of seeds, and reading a result path of a
batched result: each seed's numbers are those ``mistakes.buggy_result`` gives for that seed's task."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from . import mistakes as mk
from .activations import ACTIVATIONS
from .batch import ActBatch, NetBatch, OptBatch, run_act, run_net, run_opt, updated, with_config
from .losses import LOSSES

Array = np.ndarray
Batch = NetBatch | OptBatch | ActBatch

_SWAPS = {"derivative_as_value": mk._value_as_derivative, "no_activation_derivative": mk._unit_derivative,
          "derivative_at_output": mk._derivative_at_output}


def run(batch: Batch) -> Any:
    """The true calculator's batched result."""
    if isinstance(batch, NetBatch):
        return run_net(batch)
    if isinstance(batch, OptBatch):
        return run_opt(batch)
    return run_act(batch)


def buggy(batch: Batch, mistake: str, true: Any = None) -> tuple[Any, list[bool]]:
    """(the batched result of ``mistake``, the seeds it applies to), as ``mistakes.buggy_result`` runs it
    seed by seed (None there: False here). ``true`` is the true batched result, if at hand."""
    seeds = _seeds(batch)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if isinstance(batch, NetBatch):
            res = _net(batch, mistake, true)
            if res is None:
                return None, [False] * seeds
            return res, [x is not None for x in res["loss"]]
        if isinstance(batch, OptBatch):
            return _opt(batch, mistake)
        if mistake in _SWAPS and batch.name not in ("softmax", "linear"):
            return run_act(batch, _SWAPS[mistake](ACTIVATIONS[batch.name])), [True] * seeds
        return None, [False] * seeds


def _seeds(batch: Batch) -> int:
    return batch.x.shape[0] if isinstance(batch, NetBatch) else (
        batch.params.shape[0] if isinstance(batch, OptBatch) else batch.z.shape[0])


def _net(nb: NetBatch, mistake: str, true: Any) -> dict | None:
    if mistake in _SWAPS:
        return run_net(replace(nb, acts=tuple(_SWAPS[mistake](a) for a in nb.acts)))
    if mistake == "loss_factor":
        if nb.loss.name not in ("mse", "half_sse"):
            return None
        return run_net(replace(nb, loss=LOSSES["mse" if nb.loss.name == "half_sse" else "half_sse"]))
    square = [W.shape[1] == W.shape[2] for W in nb.W]
    if mistake == "transposed_weights":
        if not any(square):
            return None
        return run_net(replace(nb, W=tuple(W.transpose(0, 2, 1).copy() if sq else W for W, sq in zip(nb.W, square))))
    if mistake == "gradient_ascent":
        return None if nb.lr is None else run_net(replace(nb, lr=-nb.lr))
    if mistake == "transposed_gradient":
        if not any(square):
            return None
        res = true if true is not None else run_net(nb)
        layers = []
        for k, (lr, sq) in enumerate(zip(res["layers"], square)):
            lr = dict(lr)
            if sq:
                lr["dW"] = lr["dW"].transpose(0, 2, 1).copy()
                if nb.lr is not None:
                    lr["W_new"] = updated(nb, nb.W[k], lr["dW"])
            layers.append(lr)
        return {"layers": layers, "loss": res["loss"]}
    return None


def _opt(ob: OptBatch, mistake: str) -> tuple[Any, list[bool]]:
    c = ob.config
    seeds = ob.params.shape[0]
    if mistake == "gradient_ascent":
        return run_opt(with_config(ob, learning_rate=-c.learning_rate)), [True] * seeds
    if mistake == "momentum_sign" and c.name == "sgd":
        applies = [bool(m != 0) for m in c.momentum.reshape(-1).tolist()]
        if not any(applies):
            return None, applies
        return run_opt(with_config(ob, momentum=-c.momentum)), applies
    if mistake == "no_bias_correction" and c.name == "adam":
        return run_opt(with_config(ob, bias_correction=False)), [True] * seeds
    return None, [False] * seeds


def read(batch: Batch, result: Any, steps: tuple) -> Array | list | None:
    """What the result path ``steps`` reads for every seed: an array (seeds, ...) or, for a network's
    loss, a list of floats; None where the path cannot be read from the batch (the caller reads it
    seed by seed)."""
    if isinstance(batch, NetBatch):
        head = steps[0]
        if head == "loss":
            return result["loss"] if len(steps) == 1 else None
        if head == "output":
            arr, rest = result["layers"][-1]["a"], steps[1:]
            arr = arr[:, 0] if batch.single else arr
        elif head == "layers" and len(steps) >= 3 and type(steps[1]) is int:
            layers = result["layers"]
            if not -len(layers) <= steps[1] < len(layers) or steps[2] not in layers[steps[1]]:
                return None
            arr, rest = layers[steps[1]][steps[2]], steps[3:]
            if steps[2] in ("z", "a", "delta"):
                arr = arr[:, 0] if batch.single else arr
            elif steps[2] == "fz":
                return None
        else:
            return None
    elif isinstance(batch, OptBatch):
        if len(steps) < 3 or steps[0] != "steps" or type(steps[1]) is not int or not -len(result) <= steps[1] < len(result):
            return None
        step = result[steps[1]]
        if steps[2] not in step:
            return None
        arr, rest = step[steps[2]], steps[3:]
    else:
        if steps[0] not in result:
            return None
        arr, rest = result[steps[0]], steps[1:]
    for i in rest:
        if type(i) is not int or arr.ndim < 2 or not -arr.shape[1] <= i < arr.shape[1]:
            return None
        arr = arr[:, i]
    return arr


def results(batch: Batch, result: Any) -> list[dict[str, Any]]:
    """Every seed's result as ``engine.run_task`` gives it (JSON: lists of floats), from a batched result:
    each array is made a list once (``tolist`` gives the same floats as on the seed's own slice)."""
    if isinstance(batch, NetBatch):
        cut = (lambda v: [row[0] for row in v.tolist()]) if batch.single else (lambda v: v.tolist())
        layers = []
        for lr in result["layers"]:
            cols = {"z": cut(lr["z"]), "a": cut(lr["a"]), "delta": cut(lr["delta"]), "dW": lr["dW"].tolist(),
                    "db": lr["db"].tolist()}
            if "W_new" in lr:
                cols["W_new"], cols["b_new"] = lr["W_new"].tolist(), lr["b_new"].tolist()
            layers.append(cols)
        out = cut(result["layers"][-1]["a"])  # (a list of its own, as run_task gives it)
        return [{"output": out[s], "loss": loss, "layers": [{k: v[s] for k, v in cols.items()} for cols in layers]}
                for s, loss in enumerate(result["loss"])]
    if isinstance(batch, OptBatch):
        steps = [{k: step[k].tolist() for k in ("gradient", "params", "velocity", "second_moment") if k in step}
                 for step in result]
        return [{"steps": [{k: v[s] for k, v in step.items()} for step in steps]} for s in range(batch.params.shape[0])]
    value, derivative = result["value"].tolist(), result["derivative"].tolist()
    return [{"value": v, "derivative": d} for v, d in zip(value, derivative)]
