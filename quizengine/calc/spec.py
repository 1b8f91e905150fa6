"""Parse a calculator spec into a task, with errors that name the key (format: docs/calculator.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Union

import numpy as np

from . import network as nw
from . import optimizers as opt
from .activations import ACTIVATIONS
from .checks import (SpecError, as_array, as_mapping, as_number, as_positive_int, check_keys, kind_of, load_text,
                     suggest)
from .given import NOTHING, Given, parse_given_derivative, parse_network_given, parse_optimizer_given
from .losses import LOSSES
from .spec_extra import (EXTRA_TASK_KEYS, InitializerTask, IterationsTask, ScheduleTask, initializer_task,
                         iterations_task, schedule_task)

__all__ = ["SpecError", "load_text", "parse", "Task", "NetworkTask", "OptimizerTask", "ActivationTask", "KerasTask",
           "ScheduleTask", "IterationsTask", "InitializerTask"]

Array = np.ndarray


@dataclass(frozen=True)
class NetworkTask:
    network: nw.Network
    x: Array
    y: Array
    learning_rate: float | None
    given: Given = NOTHING
    weight_decay: float = 0.0  # coupled L2 in the update, on the weights only
    l1: float = 0.0  # L1 subgradient l1 * sign(W) in the update, on the weights only


@dataclass(frozen=True)
class OptimizerTask:
    config: opt.OptimizerConfig
    params: Array
    steps: int
    gradients: tuple[Array, ...] | None  # one per step, or None with an objective
    A: Array | None = None
    b: Array | None = None
    given: Given = NOTHING

    def source(self) -> opt.GradientSource:
        if self.gradients is not None:
            return opt.sequence_gradients(list(self.gradients))
        return opt.quadratic_gradient(self.A, self.b)


@dataclass(frozen=True)
class ActivationTask:
    name: str
    alpha: float
    z: Array


@dataclass(frozen=True)
class KerasTask:
    """Parameter counts of a stack of Dense layers (an extension of the contract)."""

    input_dim: int
    units: tuple[int, ...]


BOOL_KEYS = ("nesterov", "bias_correction")

Task = Union[NetworkTask, OptimizerTask, ActivationTask, KerasTask, ScheduleTask, IterationsTask, InitializerTask]

TASK_KEYS = {
    "network": ("network", "input", "target", "update", "given", "given_derivative"),
    "optimizer": ("optimizer", "params", "gradients", "objective", "steps", "given"),
    "activation": ("activation", "z"),
    "keras": ("keras",),
    **EXTRA_TASK_KEYS,
}


# ---------------------------------------------------------------- tasks

def parse(obj: Any) -> Task:
    """Return the task a spec describes, or raise SpecError naming the offending key."""
    spec = as_mapping(obj, "spec")
    kinds = [k for k in TASK_KEYS if k in spec]
    if not kinds:
        unknown = next(iter(spec), None)
        hint = f"; unknown key {unknown!r}{suggest(unknown, list(TASK_KEYS))}" if unknown is not None else ""
        names = ", ".join(repr(k) for k in TASK_KEYS)
        raise SpecError(f"spec: needs one of the keys {names}{hint}")
    if len(kinds) > 1:
        raise SpecError(f"spec: holds more than one task ({', '.join(kinds)}); give exactly one")
    kind = kinds[0]
    check_keys(spec, "spec", TASK_KEYS[kind])
    return {"network": _network_task, "optimizer": _optimizer_task, "activation": _activation_task,
            "keras": _keras_task, "schedule": schedule_task, "iterations": iterations_task,
            "initializer": initializer_task}[kind](spec)


def _activation_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise SpecError(f"{where}: unknown activation {value!r}{suggest(value, list(ACTIVATIONS))}")
    return value


def _alpha(obj: dict, name: str, where: str) -> float:
    act = ACTIVATIONS[name]
    if "alpha" in obj:
        if act.default_alpha is None:
            raise SpecError(f"{where}.alpha: the activation {name!r} takes no alpha (only leaky_relu and elu do)")
        return as_number(obj["alpha"], f"{where}.alpha")
    return act.default_alpha if act.default_alpha is not None else 0.0


def _network_task(spec: dict) -> NetworkTask:
    check_keys(spec, "spec", TASK_KEYS["network"], required=("network", "input", "target"))
    net = as_mapping(spec["network"], "network")
    check_keys(net, "network", ("layers", "loss"), required=("layers", "loss"))
    layers_raw = net["layers"]
    if not isinstance(layers_raw, list):
        raise SpecError(f"network.layers: expected a list of layers, got {kind_of(layers_raw)}")
    if not layers_raw:
        raise SpecError("network.layers: is empty; give at least one layer")
    loss = net["loss"]
    if not isinstance(loss, str) or loss not in LOSSES:
        raise SpecError(f"network.loss: unknown loss {loss!r}{suggest(loss, list(LOSSES))}")
    x = as_array(spec["input"], "input", (1, 2))
    layers = []
    n_in = x.shape[-1]
    for i, raw in enumerate(layers_raw):
        where = f"network.layers[{i}]"
        layer = as_mapping(raw, where)
        check_keys(layer, where, ("weights", "bias", "activation", "alpha", "dropout"),
                   required=("weights", "bias", "activation"))
        W = as_array(layer["weights"], f"{where}.weights", (2,))
        b = as_array(layer["bias"], f"{where}.bias", (1,))
        name = _activation_name(layer["activation"], f"{where}.activation")
        if W.shape[0] != n_in:
            came = "the input has" if i == 0 else f"layer {i - 1} has"
            raise SpecError(
                f"{where}.weights: shape {W.shape} needs {n_in} rows (n_in, n_out) because {came} "
                f"{n_in} units; Keras layout is W[n_in][n_out]"
            )
        if b.shape != (W.shape[1],):
            raise SpecError(f"{where}.bias: shape {b.shape} does not match weights {W.shape}; needs ({W.shape[1]},)")
        dropout = _dropout(layer["dropout"], f"{where}.dropout", x.shape[:-1] + (W.shape[1],)) if "dropout" in layer else None
        layers.append(nw.make_layer(W, b, name, _alpha(layer, name, where), dropout))
        n_in = W.shape[1]
    y = as_array(spec["target"], "target", (1, 2))
    out_shape = x.shape[:-1] + (n_in,)
    if y.shape != out_shape:
        raise SpecError(f"target: shape {y.shape} does not match the output's shape {out_shape}")
    lr, penalties = None, {}
    if "update" in spec:
        upd = as_mapping(spec["update"], "update")
        check_keys(upd, "update", ("learning_rate", "weight_decay", "l1"), required=("learning_rate",))
        lr = as_number(upd["learning_rate"], "update.learning_rate")
        for key in ("weight_decay", "l1"):
            if key in upd:
                penalties[key] = as_number(upd[key], f"update.{key}")
                if penalties[key] < 0:
                    raise SpecError(f"update.{key}: must be 0 or more, got {upd[key]!r}")
    given = NOTHING
    if "given" in spec:
        sizes = [l.weights.shape for l in layers]
        given = parse_network_given(spec["given"], sizes, None if x.ndim == 1 else x.shape[0], lr is not None)
    if "given_derivative" in spec:
        given = replace(given, derivative=parse_given_derivative(spec["given_derivative"]))
    return NetworkTask(nw.make_network(layers, loss), x, y, lr, given, **penalties)


def _dropout(raw: Any, where: str, shape: tuple[int, ...]) -> nw.Dropout:
    d = as_mapping(raw, where)
    check_keys(d, where, ("rate", "mask", "training"), required=("rate",))
    rate = as_number(d["rate"], f"{where}.rate")
    if not 0.0 <= rate < 1.0:
        raise SpecError(f"{where}.rate: the share of units dropped must be in [0, 1), got {d['rate']!r}")
    training = d.get("training", True)
    if not isinstance(training, bool):
        raise SpecError(f"{where}.training: expected true or false, got {training!r}")
    if not training:
        return nw.Dropout(rate, None)
    if "mask" not in d:
        raise SpecError(f"{where}: missing key 'mask' (1 keeps a unit, 0 drops it; needed in training)")
    mask = as_array(d["mask"], f"{where}.mask", (1, 2))
    if mask.shape not in (shape, shape[-1:]):
        want = f"{shape}" + (f" or {shape[-1:]} (one mask for every example)" if len(shape) == 2 else "")
        raise SpecError(f"{where}.mask: shape {mask.shape} does not match the layer's output; needs {want}")
    if not np.all((mask == 0.0) | (mask == 1.0)):
        raise SpecError(f"{where}.mask: entries must be 0 (dropped) or 1 (kept)")
    return nw.Dropout(rate, mask)


def _optimizer_task(spec: dict) -> OptimizerTask:
    check_keys(spec, "spec", TASK_KEYS["optimizer"], required=("optimizer", "params"))
    o = as_mapping(spec["optimizer"], "optimizer")
    name = o.get("name")
    if "name" not in o:
        raise SpecError("optimizer: missing key 'name'")
    if name not in opt.OPTIMIZERS:
        raise SpecError(f"optimizer.name: unknown optimizer {name!r}{suggest(name, list(opt.OPTIMIZERS))}")
    keys = opt.OPTIMIZERS[name].keys + opt.EXTRA_KEYS.get(name, ())
    check_keys(o, "optimizer", ("name",) + keys, required=("name", "learning_rate"))
    kwargs: dict[str, Any] = dict(opt.DEFAULTS.get(name, {}))
    for key in keys:
        if key not in o:
            continue
        if key in BOOL_KEYS:
            if not isinstance(o[key], bool):
                raise SpecError(f"optimizer.{key}: expected true or false, got {o[key]!r}")
            kwargs[key] = o[key]
        else:
            kwargs[key] = as_number(o[key], f"optimizer.{key}")
    for key in ("weight_decay", "l1"):
        if kwargs.get(key, 0.0) < 0:
            raise SpecError(f"optimizer.{key}: must be 0 or more, got {kwargs[key]!r}")
    config = opt.OptimizerConfig(name=name, **kwargs)
    params = as_array(spec["params"], "params", (0, 1, 2))
    has_g, has_obj = "gradients" in spec, "objective" in spec
    if has_g == has_obj:
        raise SpecError("spec: give exactly one of 'gradients' (one per step) or 'objective'")
    if has_g:
        raw = spec["gradients"]
        if not isinstance(raw, list) or not raw:
            raise SpecError("gradients: expected a non-empty list with one gradient per step")
        grads = tuple(as_array(g, f"gradients[{k}]", (params.ndim,)) for k, g in enumerate(raw))
        for k, g in enumerate(grads):
            if g.shape != params.shape:
                raise SpecError(f"gradients[{k}]: shape {g.shape} does not match params {params.shape}")
        steps = as_positive_int(spec["steps"], "steps") if "steps" in spec else len(grads)
        if steps > len(grads):
            raise SpecError(f"steps: {steps} steps need {steps} gradients, but only {len(grads)} are given")
        return OptimizerTask(config, params, steps, grads[:steps], given=_optimizer_given(spec, config, params, steps))
    obj = as_mapping(spec["objective"], "objective")
    check_keys(obj, "objective", ("quadratic",), required=("quadratic",))
    q = as_mapping(obj["quadratic"], "objective.quadratic")
    check_keys(q, "objective.quadratic", ("A", "b"), required=("A",))
    n = params.size
    A = as_array(q["A"], "objective.quadratic.A", (0, 2))
    A = A.reshape(1, 1) if A.ndim == 0 else A
    if A.shape != (n, n):
        raise SpecError(f"objective.quadratic.A: shape {A.shape} does not match params with {n} entries; needs ({n}, {n})")
    b = as_array(q["b"], "objective.quadratic.b", (0, 1, 2)).reshape(-1) if "b" in q else np.zeros(n)
    if b.shape != (n,):
        raise SpecError(f"objective.quadratic.b: has {b.size} entries, params have {n}")
    if "steps" not in spec:
        raise SpecError("spec: missing key 'steps' (required with 'objective')")
    steps = as_positive_int(spec["steps"], "steps")
    return OptimizerTask(config, params, steps, None, A, b, _optimizer_given(spec, config, params, steps))


def _optimizer_given(spec: dict, config: opt.OptimizerConfig, params: Array, steps: int) -> Given:
    if "given" not in spec:
        return NOTHING
    return parse_optimizer_given(spec["given"], steps, params.shape, opt.OPTIMIZERS[config.name].second_moment)


def _activation_task(spec: dict) -> ActivationTask:
    check_keys(spec, "spec", TASK_KEYS["activation"], required=("activation", "z"))
    raw = spec["activation"]
    if isinstance(raw, str):
        raw = {"name": raw}
    a = as_mapping(raw, "activation")
    check_keys(a, "activation", ("name", "alpha"), required=("name",))
    name = _activation_name(a["name"], "activation.name")
    z = as_array(spec["z"], "z", (0, 1, 2))
    if name == "softmax" and z.ndim == 0:
        raise SpecError("z: softmax needs a list of values (it normalises over them)")
    return ActivationTask(name, _alpha(a, name, "activation"), z)


def _keras_task(spec: dict) -> KerasTask:
    k = as_mapping(spec["keras"], "keras")
    check_keys(k, "keras", ("input_dim", "layers"), required=("input_dim", "layers"))
    units = k["layers"]
    if not isinstance(units, list) or not units:
        raise SpecError("keras.layers: expected a non-empty list of Dense layer unit counts")
    return KerasTask(as_positive_int(k["input_dim"], "keras.input_dim"),
                     tuple(as_positive_int(u, f"keras.layers[{i}]") for i, u in enumerate(units)))
