"""Parse a calculator spec (CONTRACT section 1) into a task, with errors that name the key."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import yaml

from . import network as nw
from . import optimizers as opt
from .activations import ACTIVATIONS
from .losses import LOSSES

Array = np.ndarray


class SpecError(ValueError):
    """A spec a user wrote is wrong; the message names the key and how to fix it."""


@dataclass(frozen=True)
class NetworkTask:
    network: nw.Network
    x: Array
    y: Array
    learning_rate: float | None


@dataclass(frozen=True)
class OptimizerTask:
    config: opt.OptimizerConfig
    params: Array
    steps: int
    gradients: tuple[Array, ...] | None  # one per step, or None with an objective
    A: Array | None = None
    b: Array | None = None

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

Task = Union[NetworkTask, OptimizerTask, ActivationTask, KerasTask]

TASK_KEYS = {
    "network": ("network", "input", "target", "update"),
    "optimizer": ("optimizer", "params", "gradients", "objective", "steps"),
    "activation": ("activation", "z"),
    "keras": ("keras",),
}


# ---------------------------------------------------------------- loading text

def load_text(text: str, name: str = "<spec>") -> Any:
    """Parse YAML or JSON text; errors carry the line number."""
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            if name.endswith(".json"):
                raise SpecError(f"{name}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(f"{where}: malformed YAML: {problem}") from None


# ---------------------------------------------------------------- small checks

def _suggest(name: object, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid: {', '.join(valid)})"


def _mapping(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a mapping (key: value), got {_kind(obj)}")
    return obj


def _kind(obj: Any) -> str:
    if obj is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(type(obj), type(obj).__name__)


def _keys(obj: dict, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for key in obj:
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}{_suggest(key, allowed)}")
    for key in required:
        if key not in obj:
            raise SpecError(f"{where}: missing key {key!r}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise SpecError(f"{where}: expected a number, got {_kind(value)} {value!r}")
    if isinstance(value, str):
        # YAML 1.1 reads `1e-3` as a string; accept any spelling float() takes.
        try:
            value = float(value)
        except ValueError:
            raise SpecError(f"{where}: expected a number, got the string {value!r}") from None
    if not isinstance(value, (int, float)):
        raise SpecError(f"{where}: expected a number, got {_kind(value)}")
    x = float(value)
    if not math.isfinite(x):
        raise SpecError(f"{where}: {value!r} is not a finite number (NaN and infinity are not allowed)")
    return x


def _array(value: Any, where: str, ndims: tuple[int, ...]) -> Array:
    """Convert nested lists of numbers to float64 with one of the allowed ranks."""

    def conv(v: Any, path: str) -> Any:
        if isinstance(v, list):
            return [conv(e, f"{path}[{i}]") for i, e in enumerate(v)]
        return _number(v, path)

    data = conv(value, where)
    try:
        arr = np.array(data, dtype=np.float64)
    except ValueError:
        raise SpecError(f"{where}: rows of different lengths (a ragged list)") from None
    if arr.ndim not in ndims:
        want = " or ".join({0: "a number", 1: "a list", 2: "a list of lists"}.get(n, f"{n}-D") for n in ndims)
        raise SpecError(f"{where}: expected {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise SpecError(f"{where}: is empty")
    return arr


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{where}: expected a positive whole number, got {_kind(value)}")
    x = _number(value, where)
    if x != int(x) or x < 1:
        raise SpecError(f"{where}: expected a positive whole number, got {value!r}")
    return int(x)


# ---------------------------------------------------------------- tasks

def parse(obj: Any) -> Task:
    """Return the task a spec describes, or raise SpecError naming the offending key."""
    spec = _mapping(obj, "spec")
    kinds = [k for k in TASK_KEYS if k in spec]
    if not kinds:
        unknown = next(iter(spec), None)
        hint = f"; unknown key {unknown!r}{_suggest(unknown, list(TASK_KEYS))}" if unknown is not None else ""
        raise SpecError(f"spec: needs one of the keys 'network', 'optimizer', 'activation' or 'keras'{hint}")
    if len(kinds) > 1:
        raise SpecError(f"spec: holds more than one task ({', '.join(kinds)}); give exactly one")
    kind = kinds[0]
    _keys(spec, "spec", TASK_KEYS[kind])
    return {"network": _network_task, "optimizer": _optimizer_task,
            "activation": _activation_task, "keras": _keras_task}[kind](spec)


def _activation_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise SpecError(f"{where}: unknown activation {value!r}{_suggest(value, list(ACTIVATIONS))}")
    return value


def _alpha(obj: dict, name: str, where: str) -> float:
    act = ACTIVATIONS[name]
    if "alpha" in obj:
        if act.default_alpha is None:
            raise SpecError(f"{where}.alpha: the activation {name!r} takes no alpha (only leaky_relu and elu do)")
        return _number(obj["alpha"], f"{where}.alpha")
    return act.default_alpha if act.default_alpha is not None else 0.0


def _network_task(spec: dict) -> NetworkTask:
    _keys(spec, "spec", TASK_KEYS["network"], required=("network", "input", "target"))
    net = _mapping(spec["network"], "network")
    _keys(net, "network", ("layers", "loss"), required=("layers", "loss"))
    layers_raw = net["layers"]
    if not isinstance(layers_raw, list):
        raise SpecError(f"network.layers: expected a list of layers, got {_kind(layers_raw)}")
    if not layers_raw:
        raise SpecError("network.layers: is empty; give at least one layer")
    loss = net["loss"]
    if not isinstance(loss, str) or loss not in LOSSES:
        raise SpecError(f"network.loss: unknown loss {loss!r}{_suggest(loss, list(LOSSES))}")
    x = _array(spec["input"], "input", (1, 2))
    layers = []
    n_in = x.shape[-1]
    for i, raw in enumerate(layers_raw):
        where = f"network.layers[{i}]"
        layer = _mapping(raw, where)
        _keys(layer, where, ("weights", "bias", "activation", "alpha"), required=("weights", "bias", "activation"))
        W = _array(layer["weights"], f"{where}.weights", (2,))
        b = _array(layer["bias"], f"{where}.bias", (1,))
        name = _activation_name(layer["activation"], f"{where}.activation")
        if W.shape[0] != n_in:
            came = "the input has" if i == 0 else f"layer {i - 1} has"
            raise SpecError(
                f"{where}.weights: shape {W.shape} needs {n_in} rows (n_in, n_out) because {came} "
                f"{n_in} units; Keras layout is W[n_in][n_out]"
            )
        if b.shape != (W.shape[1],):
            raise SpecError(f"{where}.bias: shape {b.shape} does not match weights {W.shape}; needs ({W.shape[1]},)")
        layers.append(nw.make_layer(W, b, name, _alpha(layer, name, where)))
        n_in = W.shape[1]
    y = _array(spec["target"], "target", (1, 2))
    out_shape = x.shape[:-1] + (n_in,)
    if y.shape != out_shape:
        raise SpecError(f"target: shape {y.shape} does not match the output's shape {out_shape}")
    lr = None
    if "update" in spec:
        upd = _mapping(spec["update"], "update")
        _keys(upd, "update", ("learning_rate",), required=("learning_rate",))
        lr = _number(upd["learning_rate"], "update.learning_rate")
    return NetworkTask(nw.make_network(layers, loss), x, y, lr)


def _optimizer_task(spec: dict) -> OptimizerTask:
    _keys(spec, "spec", TASK_KEYS["optimizer"], required=("optimizer", "params"))
    o = _mapping(spec["optimizer"], "optimizer")
    name = o.get("name")
    if "name" not in o:
        raise SpecError("optimizer: missing key 'name'")
    if name not in opt.OPTIMIZERS:
        raise SpecError(f"optimizer.name: unknown optimizer {name!r}{_suggest(name, list(opt.OPTIMIZERS))}")
    keys = opt.OPTIMIZERS[name].keys + opt.EXTRA_KEYS.get(name, ())
    _keys(o, "optimizer", ("name",) + keys, required=("name", "learning_rate"))
    kwargs: dict[str, Any] = {}
    for key in keys:
        if key not in o:
            continue
        if key in BOOL_KEYS:
            if not isinstance(o[key], bool):
                raise SpecError(f"optimizer.{key}: expected true or false, got {o[key]!r}")
            kwargs[key] = o[key]
        else:
            kwargs[key] = _number(o[key], f"optimizer.{key}")
    config = opt.OptimizerConfig(name=name, **kwargs)
    params = _array(spec["params"], "params", (0, 1, 2))
    has_g, has_obj = "gradients" in spec, "objective" in spec
    if has_g == has_obj:
        raise SpecError("spec: give exactly one of 'gradients' (one per step) or 'objective'")
    if has_g:
        raw = spec["gradients"]
        if not isinstance(raw, list) or not raw:
            raise SpecError("gradients: expected a non-empty list with one gradient per step")
        grads = tuple(_array(g, f"gradients[{k}]", (params.ndim,)) for k, g in enumerate(raw))
        for k, g in enumerate(grads):
            if g.shape != params.shape:
                raise SpecError(f"gradients[{k}]: shape {g.shape} does not match params {params.shape}")
        steps = _positive_int(spec["steps"], "steps") if "steps" in spec else len(grads)
        if steps > len(grads):
            raise SpecError(f"steps: {steps} steps need {steps} gradients, but only {len(grads)} are given")
        return OptimizerTask(config, params, steps, grads[:steps])
    obj = _mapping(spec["objective"], "objective")
    _keys(obj, "objective", ("quadratic",), required=("quadratic",))
    q = _mapping(obj["quadratic"], "objective.quadratic")
    _keys(q, "objective.quadratic", ("A", "b"), required=("A",))
    n = params.size
    A = _array(q["A"], "objective.quadratic.A", (0, 2))
    A = A.reshape(1, 1) if A.ndim == 0 else A
    if A.shape != (n, n):
        raise SpecError(f"objective.quadratic.A: shape {A.shape} does not match params with {n} entries; needs ({n}, {n})")
    b = _array(q["b"], "objective.quadratic.b", (0, 1, 2)).reshape(-1) if "b" in q else np.zeros(n)
    if b.shape != (n,):
        raise SpecError(f"objective.quadratic.b: has {b.size} entries, params have {n}")
    if "steps" not in spec:
        raise SpecError("spec: missing key 'steps' (required with 'objective')")
    return OptimizerTask(config, params, _positive_int(spec["steps"], "steps"), None, A, b)


def _activation_task(spec: dict) -> ActivationTask:
    _keys(spec, "spec", TASK_KEYS["activation"], required=("activation", "z"))
    raw = spec["activation"]
    if isinstance(raw, str):
        raw = {"name": raw}
    a = _mapping(raw, "activation")
    _keys(a, "activation", ("name", "alpha"), required=("name",))
    name = _activation_name(a["name"], "activation.name")
    z = _array(spec["z"], "z", (0, 1, 2))
    if name == "softmax" and z.ndim == 0:
        raise SpecError("z: softmax needs a list of values (it normalises over them)")
    return ActivationTask(name, _alpha(a, name, "activation"), z)


def _keras_task(spec: dict) -> KerasTask:
    k = _mapping(spec["keras"], "keras")
    _keys(k, "keras", ("input_dim", "layers"), required=("input_dim", "layers"))
    units = k["layers"]
    if not isinstance(units, list) or not units:
        raise SpecError("keras.layers: expected a non-empty list of Dense layer unit counts")
    return KerasTask(_positive_int(k["input_dim"], "keras.input_dim"),
                     tuple(_positive_int(u, f"keras.layers[{i}]") for i, u in enumerate(units)))
