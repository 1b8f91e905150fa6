"""Buggy calculators: rerun a task with one classic mistake, to name it in feedback.

Each mistake is the true calculator run on a transformed task (a swapped activation
derivative, another loss, transposed weights, a negated rate or momentum, Adam without its
bias correction). It returns the result a student making it would compute, in the same JSON
shape as the true calculator, or ``None`` when the mistake does not apply to the task.
"""

from __future__ import annotations

from .records import replace
from typing import Any, Callable

import numpy as np

from .activations import ACTIVATIONS, Activation
from .engine import run_network, run_optimizer
from .network import updated
from .losses import LOSSES
from .spec import ActivationTask, NetworkTask, OptimizerTask, Task

Array = np.ndarray

DESCRIPTIONS: dict[str, str] = {
    "derivative_as_value": "used the activation's value f(z) where its derivative f'(z) belongs (e.g. sigma' taken as sigma)",
    "no_activation_derivative": "forgot the activation derivative f'(z) in delta (took it as 1)",
    "loss_factor": "confused the half_sse and mse losses (their 1/2 and 1/n factors)",
    "transposed_weights": "used W transposed (W[j][i] instead of W[i][j] for the weight from input i to unit j)",
    "gradient_ascent": "added the gradient step instead of subtracting it (moved uphill)",
    "momentum_sign": "gave the momentum term the wrong sign (v <- -momentum*v - lr*g instead of momentum*v - lr*g)",
    "no_bias_correction": "left out Adam's bias correction (used m and v instead of m_hat and v_hat)",
    "transposed_gradient": "wrote dW transposed (delta^T a_prev instead of a_prev^T delta)",
    "derivative_at_output": "took the derivative at the activation a instead of at z (f'(a), e.g. 1 - tanh^2(a) for 1 - a^2)",
}


def _net(task: NetworkTask) -> dict[str, Any]:
    return run_network(task).to_json()


def _swap_derivative(act: Activation, derivative: Callable[[Array, Array, float], Array]) -> Activation:
    """Return ``act`` with another derivative, applied element-wise (softmax's Jacobian included)."""
    return Activation(act.name, act.value, derivative, act.default_alpha, elementwise=True)


def _with_activations(task: NetworkTask, swap: Callable[[Activation], Activation]) -> NetworkTask:
    layers = tuple(replace(l, activation=swap(l.activation)) for l in task.network.layers)
    return replace(task, network=replace(task.network, layers=layers))


def _activation_with(task: ActivationTask, swap: Callable[[Activation], Activation]) -> dict[str, Any] | None:
    if task.name in ("softmax", "linear"):
        return None
    act = swap(ACTIVATIONS[task.name])
    a = act.value(task.z, task.alpha)
    return {"value": a.tolist(), "derivative": act.derivative(task.z, a, task.alpha).tolist()}


def _value_as_derivative(act: Activation) -> Activation:
    return _swap_derivative(act, lambda z, a, alpha: a)


def _unit_derivative(act: Activation) -> Activation:
    return _swap_derivative(act, lambda z, a, alpha: np.ones_like(a))


def derivative_as_value(task: Task) -> dict[str, Any] | None:
    if isinstance(task, ActivationTask):
        return _activation_with(task, _value_as_derivative)
    if not isinstance(task, NetworkTask):
        return None
    return _net(_with_activations(task, _value_as_derivative))


def no_activation_derivative(task: Task) -> dict[str, Any] | None:
    if isinstance(task, ActivationTask):
        return _activation_with(task, _unit_derivative)
    if not isinstance(task, NetworkTask):
        return None
    return _net(_with_activations(task, _unit_derivative))


def _derivative_at_output(act: Activation) -> Activation:
    if not act.elementwise:  # softmax's Jacobian is written in a; there is no z to confuse it with
        return act
    return _swap_derivative(act, lambda z, a, alpha: act.derivative(a, act.value(a, alpha), alpha))


def derivative_at_output(task: Task) -> dict[str, Any] | None:
    if isinstance(task, ActivationTask):
        return _activation_with(task, _derivative_at_output)
    if not isinstance(task, NetworkTask):
        return None
    return _net(_with_activations(task, _derivative_at_output))


def loss_factor(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask) or task.network.loss.name not in ("mse", "half_sse"):
        return None
    other = "mse" if task.network.loss.name == "half_sse" else "half_sse"
    return _net(replace(task, network=replace(task.network, loss=LOSSES[other])))


def transposed_weights(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, NetworkTask):
        return None
    layers = tuple(replace(l, weights=l.weights.T.copy()) if l.weights.shape[0] == l.weights.shape[1] else l
                   for l in task.network.layers)
    if all(l is m for l, m in zip(layers, task.network.layers)):
        return None
    return _net(replace(task, network=replace(task.network, layers=layers)))


def transposed_gradient(task: Task) -> dict[str, Any] | None:
    # The slip is in writing dW down, after a correct backward pass: the true result, dW transposed.
    if not isinstance(task, NetworkTask):
        return None
    result = run_network(task)
    changed = False
    for layer, lr in zip(task.network.layers, result.layers):
        if lr.dW.shape[0] == lr.dW.shape[1]:
            lr.dW = lr.dW.T.copy()
            changed = True
            if lr.W_new is not None:
                lr.W_new = updated(layer.weights, lr.dW, task.learning_rate, task.weight_decay, task.l1)
    return result.to_json() if changed else None


def gradient_ascent(task: Task) -> dict[str, Any] | None:
    # A negated rate: w - (-lr) g. Adam's m keeps its sign (the moments never see the rate).
    if isinstance(task, NetworkTask):
        return None if task.learning_rate is None else _net(replace(task, learning_rate=-task.learning_rate))
    if isinstance(task, OptimizerTask):
        return run_optimizer(replace(task, config=replace(task.config, learning_rate=-task.config.learning_rate))).to_json()
    return None


def momentum_sign(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, OptimizerTask) or task.config.name != "sgd" or task.config.momentum == 0:
        return None
    return run_optimizer(replace(task, config=replace(task.config, momentum=-task.config.momentum))).to_json()


def no_bias_correction(task: Task) -> dict[str, Any] | None:
    if not isinstance(task, OptimizerTask) or task.config.name != "adam":
        return None
    return run_optimizer(replace(task, config=replace(task.config, bias_correction=False))).to_json()


MISTAKES: dict[str, Callable[[Task], dict[str, Any] | None]] = {
    f.__name__: f for f in (derivative_as_value, no_activation_derivative, loss_factor, transposed_weights,
                            gradient_ascent, momentum_sign, no_bias_correction, transposed_gradient,
                            derivative_at_output)
}


# Mistakes that change only a network's backward pass and update: where they apply, the forward
# values (every layer's z and a, the output, the loss) are the true calculator's, bit for bit.
BACKWARD_ONLY = ("derivative_as_value", "no_activation_derivative", "derivative_at_output", "gradient_ascent",
                 "transposed_gradient")
DERIVATIVE_SWAPS = ("derivative_as_value", "no_activation_derivative", "derivative_at_output")
FORWARD = ("z", "a")  # a network layer's forward values


def forward_unchanged(task: Task, mistake: str) -> bool:
    """True when ``mistake`` applies to the network ``task`` and leaves its forward values as they are,
    so a caller reading only those can take them from the true result instead of running the mistake."""
    if not isinstance(task, NetworkTask) or mistake not in BACKWARD_ONLY:
        return False
    if mistake == "gradient_ascent":
        return task.learning_rate is not None
    if mistake == "transposed_gradient":  # dW has the shape of W
        return any(l.weights.shape[0] == l.weights.shape[1] for l in task.network.layers)
    return True


def unchanged_at(task: Task, mistake: str, steps: tuple) -> bool:
    """True when ``mistake`` applies to ``task`` and what it computes at the result path ``steps``
    (``("layers", 1, "dW")``) is the true calculator's, bit for bit: a caller reading only that can
    take it from the true result instead of running the mistake.

    - A swapped activation derivative changes neither an activation's value nor a network's forward pass.
    - The other loss (``loss_factor``) changes the loss and the backward pass, not z, a or the output.
    - A negated rate (``gradient_ascent``) changes only the update (W_new, b_new).
    - ``transposed_gradient`` changes only dW and W_new (of the square layers).
    """
    if isinstance(task, ActivationTask):
        return mistake in DERIVATIVE_SWAPS and task.name not in ("softmax", "linear") and steps[:1] == ("value",)
    if not isinstance(task, NetworkTask) or not steps:
        return False
    head = steps[0]
    part = steps[2] if head == "layers" and len(steps) > 2 else None
    if head != "output" and head != "loss" and part is None:
        return False
    forward = head != "layers" or part in FORWARD
    if mistake in DERIVATIVE_SWAPS:
        return forward
    if mistake == "loss_factor":
        return task.network.loss.name in ("mse", "half_sse") and forward and head != "loss"
    if mistake == "gradient_ascent":
        return task.learning_rate is not None and (forward or part in ("delta", "dW", "db"))
    if mistake == "transposed_gradient":
        return forward_unchanged(task, mistake) and (forward or part in ("delta", "db"))
    return False


def buggy_result(task: Task, mistake: str) -> dict[str, Any] | None:
    """Return what a calculator making ``mistake`` computes for ``task``, or None if it does not apply."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return MISTAKES[mistake](task)
        except (ValueError, FloatingPointError):
            return None
