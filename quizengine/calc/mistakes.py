"""Buggy calculators: rerun a task with one classic mistake, to name it in feedback.

Each mistake returns the result a student making it would compute, in the same JSON shape
as the true calculator, or ``None`` when the mistake does not apply to the task.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from . import network as nw
from . import optimizers as opt
from .activations import ACTIVATIONS
from .engine import run_network, run_optimizer
from .losses import LOSSES
from .spec import ActivationTask, NetworkTask, OptimizerTask, Task

DESCRIPTIONS: dict[str, str] = {
    "derivative_as_value": "used the activation's value f(z) where its derivative f'(z) belongs (e.g. sigma' taken as sigma)",
    "no_activation_derivative": "forgot the activation derivative f'(z) in delta (took it as 1)",
    "loss_factor": "confused the half_sse and mse losses (their 1/2 and 1/n factors)",
    "transposed_weights": "used W transposed (W[j][i] instead of W[i][j] for the weight from input i to unit j)",
    "gradient_ascent": "added the gradient step instead of subtracting it (moved uphill)",
    "momentum_sign": "gave the momentum term the wrong sign (v <- -momentum*v - lr*g instead of momentum*v - lr*g)",
    "no_bias_correction": "left out Adam's bias correction (used m and v instead of m_hat and v_hat)",
    "transposed_gradient": "wrote dW transposed (delta^T a_prev instead of a_prev^T delta)",
}


def _net(task: Task, quirks: nw.Quirks) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask):
        return None
    return run_network(task, quirks).to_json()


def derivative_as_value(task: Task) -> dict[str, Any] | None:
    if isinstance(task, ActivationTask):
        if task.name in ("softmax", "linear"):
            return None
        a = ACTIVATIONS[task.name].value(task.z, task.alpha)
        return {"value": a.tolist(), "derivative": a.tolist()}
    return _net(task, nw.Quirks(derivative_as_value=True))


def no_activation_derivative(task: Task) -> dict[str, Any] | None:
    if isinstance(task, ActivationTask):
        if task.name in ("softmax", "linear"):
            return None
        a = ACTIVATIONS[task.name].value(task.z, task.alpha)
        return {"value": a.tolist(), "derivative": np.ones_like(a).tolist()}
    return _net(task, nw.Quirks(no_activation_derivative=True))


def loss_factor(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask) or task.network.loss.name not in ("mse", "half_sse"):
        return None
    other = "mse" if task.network.loss.name == "half_sse" else "half_sse"
    return run_network(replace(task, network=replace(task.network, loss=LOSSES[other]))).to_json()


def transposed_weights(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask):
        return None
    layers = tuple(replace(l, weights=l.weights.T.copy()) if l.weights.shape[0] == l.weights.shape[1] else l
                   for l in task.network.layers)
    if all(l is m for l, m in zip(layers, task.network.layers)):
        return None
    return run_network(replace(task, network=replace(task.network, layers=layers))).to_json()


def transposed_gradient(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask):
        return None
    result = run_network(task)
    changed = False
    for layer, lr in zip(task.network.layers, result.layers):
        if lr.dW.shape[0] == lr.dW.shape[1]:
            lr.dW = lr.dW.T.copy()
            changed = True
            if lr.W_new is not None:
                lr.W_new = layer.weights - task.learning_rate * lr.dW
    return result.to_json() if changed else None


def gradient_ascent(task: Task) -> dict[str, Any] | None:
    if isinstance(task, NetworkTask):
        return None if task.learning_rate is None else _net(task, nw.Quirks(gradient_ascent=True))
    if isinstance(task, OptimizerTask):
        return run_optimizer(task, opt.OptimizerQuirks(gradient_ascent=True)).to_json()
    return None


def momentum_sign(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, OptimizerTask) or task.config.name != "sgd" or task.config.momentum == 0:
        return None
    return run_optimizer(task, opt.OptimizerQuirks(momentum_sign=True)).to_json()


def no_bias_correction(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, OptimizerTask) or task.config.name != "adam":
        return None
    return run_optimizer(task, opt.OptimizerQuirks(no_bias_correction=True)).to_json()


MISTAKES: dict[str, Callable[[Task], dict[str, Any] | None]] = {
    f.__name__: f for f in (derivative_as_value, no_activation_derivative, loss_factor, transposed_weights,
                            gradient_ascent, momentum_sign, no_bias_correction, transposed_gradient)
}


def buggy_result(task: Task, mistake: str) -> dict[str, Any] | None:
    """Return what a calculator making ``mistake`` computes for ``task``, or None if it does not apply."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return MISTAKES[mistake](task)
        except (ValueError, FloatingPointError):
            return None
