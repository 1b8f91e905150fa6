"""Run a parsed task and return its result as plain JSON data."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import network as nw
from . import optimizers as opt
from .activations import ACTIVATIONS
from .losses import InfiniteLossError
from . import schedules as sc
from .spec import (ActivationTask, InitializerTask, IterationsTask, KerasTask, NetworkTask, OptimizerTask, ScheduleTask,
                   SpecError, Task, parse)


def run_network(task: NetworkTask) -> nw.NetworkResult:
    try:
        return nw.run(task.network, task.x, task.y, task.learning_rate, task.given.puts, task.weight_decay, task.l1,
                      task.given.derivative == "a")
    except InfiniteLossError as e:
        raise SpecError(f"network.loss: {e}") from None


def run_optimizer(task: OptimizerTask) -> opt.Trajectory:
    return opt.run(task.config, task.params, task.source(), task.steps, task.given.puts)


def activation_result(task: ActivationTask) -> dict[str, Any]:
    act = ACTIVATIONS[task.name]
    z = task.z
    a = act.value(z, task.alpha)
    d = act.derivative(z, a, task.alpha)
    return {"value": a.tolist(), "derivative": d.tolist()}


def keras_result(task: KerasTask) -> dict[str, Any]:
    layers, n_in = [], task.input_dim
    for units in task.units:
        layers.append({"units": units, "weights": n_in * units, "biases": units, "params": n_in * units + units})
        n_in = units
    return {"layers": layers, "total_params": sum(l["params"] for l in layers)}


def run_task(task: Task) -> dict[str, Any]:
    """Return the result of any task as JSON-ready data."""
    if isinstance(task, NetworkTask):
        return run_network(task).to_json()
    if isinstance(task, OptimizerTask):
        return run_optimizer(task).to_json()
    if isinstance(task, ActivationTask):
        return activation_result(task)
    if isinstance(task, ScheduleTask):
        return sc.schedule_result(task.config, task.epochs)
    if isinstance(task, IterationsTask):
        return sc.iterations_result(task.samples, task.batch_size, task.epochs, task.drop_last)
    if isinstance(task, InitializerTask):
        return sc.initializer_result(task.name, task.fan_in, task.fan_out)
    return keras_result(task)


def calculate(spec: Any) -> dict[str, Any]:
    """Parse and run a spec (a mapping as loaded from YAML or JSON)."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        try:
            return run_task(parse(spec))
        except FloatingPointError as e:
            raise SpecError(f"spec: the numbers overflow float64 ({e}); use smaller values") from None
