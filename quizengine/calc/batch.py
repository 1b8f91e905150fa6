"""The calculator over many seeds of one item at once: a seed axis in front of every array.

The validator runs each calculated item's network, optimizer or activation on 200 seeds, and again
with every buggy calculator and every parameter slip. Stacked, a run costs about what one seed's run
costs. Every number is the one the per-seed calculator gives, bit for bit: the same element-wise
operations on the same values, ``np.matmul`` over the stack (which calls the same BLAS routine on
each seed's matrices), reductions over the same short axes, and the loss (a BLAS dot product) and
Adam's ``beta ** t`` computed seed by seed as the per-seed calculator computes them
(tests/bank/test_seed_batch.py compares bytes on every shipped item and seed).

``stack`` builds a batch from per-seed tasks, or returns None where the seeds differ in structure
(shapes, activations, a given value): the caller then runs seed by seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import optimizers as opt
from .activations import ACTIVATIONS, Activation
from .losses import InfiniteLossError, Loss
from .spec import ActivationTask, NetworkTask, OptimizerTask

Array = np.ndarray


def _col(values: list[float], ndim: int) -> Array:
    """Per-seed scalars as an array that broadcasts against (seeds, ...) arrays of ``ndim`` dimensions."""
    return np.array(values, dtype=np.float64).reshape((len(values),) + (1,) * (ndim - 1))


def _uniform(values: list) -> bool:
    return all(v == values[0] for v in values)


@dataclass(frozen=True)
class NetBatch:
    W: tuple[Array, ...]  # per layer (seeds, n_in, n_out)
    b: tuple[Array, ...]  # per layer (seeds, n_out)
    acts: tuple[Activation, ...]
    alphas: tuple[Array, ...]  # per layer (seeds, 1, 1)
    dropout: tuple[tuple[Array, Array | None] | None, ...]  # per layer (rate (seeds, 1, 1), mask (seeds, 1|batch, n_out))
    loss: Loss
    x: Array  # (seeds, batch, n_in); a single example is a batch of one
    y: Array
    single: bool
    lr: Array | None  # (seeds, 1, 1)
    wd: Array | None  # (seeds, 1, 1), None when no seed has a penalty
    l1: Array | None


@dataclass(frozen=True)
class OptConfig:
    """``OptimizerConfig`` with a (seeds, 1, ...) array per number."""

    name: str
    learning_rate: Any
    momentum: Any
    nesterov: bool
    rho: Any
    epsilon: Any
    beta_1: Any
    beta_2: Any
    bias_correction: bool
    weight_decay: Any
    l1: Any
    beta_1s: tuple[float, ...]  # the per-seed floats, for beta ** t as Python computes it
    beta_2s: tuple[float, ...]


@dataclass(frozen=True)
class OptBatch:
    config: OptConfig
    params: Array  # (seeds, *shape)
    steps: int
    gradients: tuple[Array, ...] | None  # per step (seeds, *shape)
    A: Array | None  # (seeds, n, n)
    b: Array | None  # (seeds, n)
    penalty: tuple[bool, bool]  # (coupled weight decay, l1), the same for every seed


@dataclass(frozen=True)
class ActBatch:
    name: str
    alpha: Array  # (seeds, 1, ...)
    z: Array  # (seeds, *shape)


def stack(tasks: list[Any]) -> NetBatch | OptBatch | ActBatch | None:
    """The seeds' tasks as one batch, or None where they differ in structure (or have given values)."""
    first = tasks[0]
    try:
        if all(type(t) is NetworkTask for t in tasks):
            return _stack_net(tasks)
        if all(type(t) is OptimizerTask for t in tasks):
            return _stack_opt(tasks)
        if all(type(t) is ActivationTask for t in tasks) and _uniform([(t.name, t.z.shape) for t in tasks]):
            z = np.stack([t.z for t in tasks])
            return ActBatch(first.name, _col([t.alpha for t in tasks], z.ndim), z)
    except _Differ:
        return None
    return None


class _Differ(Exception):
    pass


def _need(ok: bool) -> None:
    if not ok:
        raise _Differ


def _stack_net(tasks: list[NetworkTask]) -> NetBatch:
    first = tasks[0]
    layers = first.network.layers
    _need(all(not t.given.puts for t in tasks))
    _need(_uniform([(t.network.loss.name, t.x.shape, t.y.shape, t.learning_rate is None,
                     tuple((l.activation.name, l.weights.shape, l.bias.shape, l.dropout is None,
                            l.dropout is None or l.dropout.mask is None,
                            None if l.dropout is None or l.dropout.mask is None else l.dropout.mask.shape)
                           for l in t.network.layers)) for t in tasks]))
    _need(_uniform([bool(t.weight_decay or t.l1) for t in tasks]))
    single = first.x.ndim == 1
    x = np.stack([t.x for t in tasks])
    y = np.stack([t.y for t in tasks])
    if single:
        x, y = x[:, None, :], y[:, None, :]
    W, b, alphas, drops = [], [], [], []
    for k, layer in enumerate(layers):
        W.append(np.stack([t.network.layers[k].weights for t in tasks]))
        b.append(np.stack([t.network.layers[k].bias for t in tasks]))
        alphas.append(_col([t.network.layers[k].alpha for t in tasks], 3))
        if layer.dropout is None:
            drops.append(None)
            continue
        rate = _col([t.network.layers[k].dropout.rate for t in tasks], 3)
        if layer.dropout.mask is None:
            drops.append((rate, None))
            continue
        mask = np.stack([t.network.layers[k].dropout.mask for t in tasks])
        drops.append((rate, mask[:, None, :] if mask.ndim == 2 else mask))
    lr = None if first.learning_rate is None else _col([t.learning_rate for t in tasks], 3)
    penalized = bool(first.weight_decay or first.l1)
    wd = _col([t.weight_decay for t in tasks], 3) if penalized else None
    l1 = _col([t.l1 for t in tasks], 3) if penalized else None
    return NetBatch(tuple(W), tuple(b), tuple(l.activation for l in layers), tuple(alphas), tuple(drops),
                    first.network.loss, x, y, single, lr, wd, l1)


def _stack_opt(tasks: list[OptimizerTask]) -> OptBatch:
    first = tasks[0]
    c0 = first.config
    _need(all(not t.given.puts for t in tasks))
    _need(_uniform([(t.config.name, t.config.nesterov, t.config.bias_correction, t.params.shape, t.steps,
                     t.gradients is None, bool(t.config.weight_decay and t.config.name != "adamw"), bool(t.config.l1))
                    for t in tasks]))
    params = np.stack([np.array(t.params, dtype=np.float64) for t in tasks])
    nd = params.ndim

    def col(key: str) -> Array:
        return _col([getattr(t.config, key) for t in tasks], nd)

    cfg = OptConfig(c0.name, col("learning_rate"), col("momentum"), c0.nesterov, col("rho"), col("epsilon"),
                    col("beta_1"), col("beta_2"), c0.bias_correction, col("weight_decay"), col("l1"),
                    tuple(t.config.beta_1 for t in tasks), tuple(t.config.beta_2 for t in tasks))
    grads = A = b = None
    if first.gradients is not None:
        _need(_uniform([len(t.gradients) for t in tasks]))
        grads = tuple(np.stack([np.asarray(t.gradients[k], dtype=np.float64) for t in tasks])
                      for k in range(first.steps))
    else:
        _need(_uniform([(t.A.shape, t.b.shape) for t in tasks]))
        A, b = np.stack([t.A for t in tasks]), np.stack([t.b for t in tasks])
    penalty = (bool(c0.weight_decay and c0.name != "adamw"), bool(c0.l1))
    return OptBatch(cfg, params, first.steps, grads, A, b, penalty)


# ---------------------------------------------------------------- running

_GRADS = {
    "mse": lambda a, y, n: 2.0 * (a - y) / n,
    "half_sse": lambda a, y, n: (a - y) / a.shape[1],
    "binary_crossentropy": lambda a, y, n: (a - y) / (a * (1.0 - a)) / n,
    "categorical_crossentropy": lambda a, y, n: -y / a / a.shape[1],
}


def _drop(d: tuple[Array, Array | None] | None, v: Array) -> Array:
    if d is None or d[1] is None:
        return v
    return v * d[1] / (1.0 - d[0])


def run_net(nb: NetBatch) -> dict[str, Any]:
    """Forward, loss, backward and update of every seed: per layer z, a, delta, dW, db (and W_new,
    b_new), each (seeds, ...); ``loss`` per seed, None where the seed's loss is infinite (the per-seed
    calculator refuses that seed)."""
    a = nb.x
    layers: list[dict[str, Any]] = []
    for W, b, act, alpha, d in zip(nb.W, nb.b, nb.acts, nb.alphas, nb.dropout):
        z = np.matmul(a, W) + b[:, None, :]
        fz = act.value(z, alpha)
        a = _drop(d, fz)
        layers.append({"z": z, "a": a, "fz": None if a is fz else fz})
    t = nb.y
    losses: list[float | None] = []
    for s in range(a.shape[0]):
        try:
            losses.append(nb.loss.value(a[s], t[s]))
        except InfiniteLossError:
            losses.append(None)
    grad_a = _GRADS[nb.loss.name](a, t, a.shape[1] * a.shape[2])
    for i in range(len(layers) - 1, -1, -1):
        lr = layers[i]
        grad_a = _drop(nb.dropout[i], grad_a)
        delta = nb.acts[i].vjp(lr["z"], lr["a"] if lr["fz"] is None else lr["fz"], nb.alphas[i], grad_a)
        a_prev = layers[i - 1]["a"] if i > 0 else nb.x
        lr["delta"] = delta
        lr["dW"] = np.matmul(a_prev.transpose(0, 2, 1), delta)
        lr["db"] = np.add.reduce(delta, axis=1)
        if i > 0:
            grad_a = np.matmul(delta, nb.W[i].transpose(0, 2, 1))
    if nb.lr is not None:
        for k, lr in enumerate(layers):
            lr["W_new"] = updated(nb, nb.W[k], lr["dW"])
            lr["b_new"] = nb.b[k] - nb.lr[:, :, 0] * lr["db"]
    return {"layers": layers, "loss": losses}


def updated(nb: NetBatch, W: Array, dW: Array, lr: Array | None = None) -> Array:
    """``network.updated`` of every seed."""
    if nb.wd is not None:
        dW = dW + nb.wd * W + nb.l1 * np.sign(W)
    return W - (nb.lr if lr is None else lr) * dW


def _adam_params(c: OptConfig, w: Array, m: Array, v: Array, t: int) -> Array:
    if c.bias_correction:
        nd = w.ndim
        m = m / _col([1.0 - b ** t for b in c.beta_1s], nd)
        v = v / _col([1.0 - b ** t for b in c.beta_2s], nd)
    return w - c.learning_rate * m / (np.sqrt(v) + c.epsilon)


def run_opt(ob: OptBatch) -> list[dict[str, Array]]:
    """Every step of every seed: gradient, params, velocity (and second_moment), each (seeds, *shape)."""
    c = ob.config
    rule = opt.OPTIMIZERS[c.name]
    w = ob.params.copy()
    v = np.zeros_like(w)
    s = np.zeros_like(w)
    seeds = w.shape[0]
    sym = None if ob.A is None else 0.5 * (ob.A + ob.A.transpose(0, 2, 1))
    out = []
    for k in range(ob.steps):
        if ob.gradients is not None:
            g = ob.gradients[k]
        else:
            g = (np.matmul(sym, w.reshape(seeds, -1, 1))[..., 0] - ob.b.reshape(seeds, -1)).reshape(w.shape)
        g_used = g
        if ob.penalty[0]:
            g_used = g_used + c.weight_decay * w
        if ob.penalty[1]:
            g_used = g_used + c.l1 * np.sign(w)
        v, s = rule.state(c, v, s, g_used, k + 1)  # type: ignore[arg-type]
        if c.name == "adam":
            w = _adam_params(c, w, v, s, k + 1)
        elif c.name == "adamw":
            w = _adam_params(c, w * (1.0 - c.learning_rate * c.weight_decay), v, s, k + 1)
        else:
            w = rule.params(c, w, v, s, g_used, k + 1)  # type: ignore[arg-type]
        step = {"gradient": g, "params": w, "velocity": v}
        if rule.second_moment:
            step["second_moment"] = s
        out.append(step)
    return out


def run_act(ab: ActBatch, act: Activation | None = None) -> dict[str, Array]:
    act = act or ACTIVATIONS[ab.name]
    a = act.value(ab.z, ab.alpha)
    return {"value": a, "derivative": act.derivative(ab.z, a, ab.alpha)}


def with_config(ob: OptBatch, **changes: Any) -> OptBatch:
    return replace(ob, config=replace(ob.config, **changes))
