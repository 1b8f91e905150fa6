"""Forward and backward pass of a small dense network (Keras kernel layout).

``z = a_prev @ W + b`` with ``W`` of shape ``(n_in, n_out)``. Internally every input is a
batch ``(batch, n_in)``; a 1-D input is a batch of one, squeezed again in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .activations import ACTIVATIONS, Activation
from .losses import LOSSES, Loss

Array = np.ndarray
Given = dict[tuple, Callable[[Array], Array]]  # (layer, field) -> puts the given values in (see given.py)


@dataclass(frozen=True, slots=True)
class Dropout:
    """Inverted dropout with a given mask: a = f(z) * mask / (1 - rate) in training, f(z) at inference."""

    rate: float
    mask: Array | None  # (n_out,) or (batch, n_out) of 0 and 1; None at inference

    def apply(self, v: Array) -> Array:
        """Scale a value, or a gradient on the way back (the same factor: d a / d f(z) = mask / (1 - rate))."""
        return v if self.mask is None else v * self.mask / (1.0 - self.rate)


@dataclass(frozen=True, slots=True)
class Layer:
    weights: Array  # (n_in, n_out)
    bias: Array  # (n_out,)
    activation: Activation
    alpha: float = 0.0
    dropout: Dropout | None = None


@dataclass(frozen=True, slots=True)
class Network:
    layers: tuple[Layer, ...]
    loss: Loss


@dataclass(slots=True)
class LayerResult:
    z: Array  # (batch, n_out)
    a: Array  # (batch, n_out)
    fz: Array | None = None  # f(z) where it differs from a (dropout, a given a); f'(z) is taken with it
    grad_a: Array | None = None  # dL/da, (batch, n_out): kept so the worked table need not recompute it
    delta: Array | None = None  # dL/dz, (batch, n_out)
    dW: Array | None = None  # (n_in, n_out)
    db: Array | None = None  # (n_out,)
    W_new: Array | None = None
    b_new: Array | None = None

    @property
    def f_of_z(self) -> Array:
        return self.a if self.fz is None else self.fz


@dataclass(slots=True)
class NetworkResult:
    input: Array  # (batch, n_in)
    single: bool  # the input was one example (1-D)
    layers: list[LayerResult] = field(default_factory=list)
    loss: float = 0.0
    learning_rate: float | None = None

    @property
    def output(self) -> Array:
        return self.layers[-1].a

    @property
    def grad_output(self) -> Array:
        """dL/da of the last layer."""
        return self.layers[-1].grad_a

    def to_json(self) -> dict:
        """Return the network task's result, 1-D where the input was 1-D."""
        return {"output": self.example(self.output), "loss": self.loss,
                "layers": [self.layer_json(lr) for lr in self.layers]}

    def example(self, v: Array) -> list:
        """A per-example quantity as JSON: its one row where the input was 1-D."""
        return (v[0] if self.single else v).tolist()

    def layer_json(self, lr: LayerResult) -> dict:
        """One layer's entry of ``to_json``."""
        ex = self.example
        d = {"z": ex(lr.z), "a": ex(lr.a), "delta": ex(lr.delta), "dW": lr.dW.tolist(), "db": lr.db.tolist()}
        if lr.W_new is not None:
            d["W_new"] = lr.W_new.tolist()
            d["b_new"] = lr.b_new.tolist()
        return d


def run(network: Network, x: Array, y: Array, learning_rate: float | None = None, given: Given | None = None,
        weight_decay: float = 0.0, l1: float = 0.0, derivative_from_a: bool = False) -> NetworkResult:
    """Run the forward pass, the loss, the backward pass and the optional update.

    ``given[(layer, field)]`` puts given values into a quantity as soon as it is computed, so
    everything downstream uses them (``(-1, "loss")`` for the loss). A given ``a`` leaves f'(z) at
    the computed f(z), unless ``derivative_from_a``: then f' is taken with the given a (for the
    activations whose f' is written in a; a layer with dropout keeps f(z)).
    """
    single = x.ndim == 1
    a = x[None, :] if single else x
    t = y[None, :] if single else y
    result = NetworkResult(input=a, single=single, learning_rate=learning_rate)
    for i, layer in enumerate(network.layers):
        z = a @ layer.weights + layer.bias
        if given:
            z = _put(given, i, "z", z)
        fz = layer.activation.value(z, layer.alpha)
        a = fz if layer.dropout is None else layer.dropout.apply(fz)
        if given:
            a = _put(given, i, "a", a)
        from_a = derivative_from_a and layer.dropout is None and given is not None and (i, "a") in given
        result.layers.append(LayerResult(z=z, a=a, fz=None if a is fz or from_a else fz))
    result.loss = network.loss.value(a, t)
    if given and (-1, "loss") in given:
        result.loss = float(given[(-1, "loss")](np.float64(result.loss)))
    grad_a = network.loss.grad(a, t)
    for i in range(len(network.layers) - 1, -1, -1):
        layer, lr = network.layers[i], result.layers[i]
        lr.grad_a = grad_a
        if layer.dropout is not None:
            grad_a = layer.dropout.apply(grad_a)
        delta = layer.activation.vjp(lr.z, lr.a if lr.fz is None else lr.fz, layer.alpha, grad_a)
        a_prev = result.layers[i - 1].a if i > 0 else result.input
        if given:
            delta = _put(given, i, "delta", delta)
        lr.delta = delta
        lr.dW = a_prev.T @ delta
        lr.db = np.add.reduce(delta, axis=0)
        if given:
            lr.dW, lr.db = _put(given, i, "dW", lr.dW), _put(given, i, "db", lr.db)
        if i > 0:
            grad_a = delta @ layer.weights.T
    if learning_rate is not None:
        for i, (layer, lr) in enumerate(zip(network.layers, result.layers)):
            lr.W_new = updated(layer.weights, lr.dW, learning_rate, weight_decay, l1)
            lr.b_new = layer.bias - learning_rate * lr.db
            if given:
                lr.W_new, lr.b_new = _put(given, i, "W_new", lr.W_new), _put(given, i, "b_new", lr.b_new)
    return result


def updated(W: Array, dW: Array, learning_rate: float, weight_decay: float = 0.0, l1: float = 0.0) -> Array:
    """Return W after one gradient step, with the coupled L2 and L1 penalties on the weights."""
    if weight_decay or l1:
        dW = dW + weight_decay * W + l1 * np.sign(W)
    return W - learning_rate * dW


def _put(given: Given, i: int, name: str, value: Array) -> Array:
    put = given.get((i, name))
    return value if put is None else put(value)


def make_layer(weights: Array, bias: Array, activation: str, alpha: float | None = None,
               dropout: Dropout | None = None) -> Layer:
    """Build a layer, filling the activation's default alpha."""
    act = ACTIVATIONS[activation]
    if alpha is None:
        alpha = act.default_alpha if act.default_alpha is not None else 0.0
    return Layer(np.asarray(weights, dtype=np.float64), np.asarray(bias, dtype=np.float64), act, float(alpha), dropout)


def make_network(layers: list[Layer], loss: str) -> Network:
    return Network(tuple(layers), LOSSES[loss])
