"""Activation functions, each with its derivative written beside it.

Every function takes ``z`` of any shape (float64). Element-wise activations return
arrays of ``z``'s shape; ``softmax`` works over the last axis and its derivative is the
Jacobian, shape ``z.shape + (n,)`` with ``J[..., i, j] = d a_i / d z_j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray


def _sigmoid(z: Array) -> Array:
    # 1/(1 + e^-z) is accurate for both signs (no cancellation); only e^-z can overflow, so
    # z is floored at -708 (e^708 < float64 max), where sigmoid is below 3e-308 anyway.
    return 1.0 / (1.0 + np.exp(-np.maximum(z, -708.0)))


def sigmoid(z: Array, alpha: float) -> Array:
    return _sigmoid(z)


def sigmoid_prime(z: Array, a: Array, alpha: float) -> Array:
    return a * (1.0 - a)


def linear(z: Array, alpha: float) -> Array:
    return z.copy()


def linear_prime(z: Array, a: Array, alpha: float) -> Array:
    return np.ones_like(z)


def tanh(z: Array, alpha: float) -> Array:
    return np.tanh(z)


def tanh_prime(z: Array, a: Array, alpha: float) -> Array:
    return 1.0 - a * a


def relu(z: Array, alpha: float) -> Array:
    return np.maximum(z, 0.0)


def relu_prime(z: Array, a: Array, alpha: float) -> Array:
    # The derivative at exactly 0 is taken as 0 (as PyTorch and Keras do).
    return (z > 0).astype(np.float64)


def leaky_relu(z: Array, alpha: float) -> Array:
    return np.where(z > 0, z, alpha * z)


def leaky_relu_prime(z: Array, a: Array, alpha: float) -> Array:
    return np.where(z > 0, 1.0, alpha)


def elu(z: Array, alpha: float) -> Array:
    # expm1 of the clipped value: accurate near 0, no overflow for large positive z.
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def elu_prime(z: Array, a: Array, alpha: float) -> Array:
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))


def softplus(z: Array, alpha: float) -> Array:
    return np.logaddexp(0.0, z)


def softplus_prime(z: Array, a: Array, alpha: float) -> Array:
    return _sigmoid(z)


def softmax(z: Array, alpha: float) -> Array:
    shifted = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_jacobian(z: Array, a: Array, alpha: float) -> Array:
    """Return ``J[..., i, j] = a_i (delta_ij - a_j)``, shape ``z.shape + (n,)``."""
    eye = np.eye(a.shape[-1])
    return a[..., :, None] * (eye - a[..., None, :])


@dataclass(frozen=True)
class Activation:
    name: str
    value: Callable[[Array, float], Array]
    derivative: Callable[[Array, Array, float], Array]
    default_alpha: float | None = None
    elementwise: bool = True

    def vjp(self, z: Array, a: Array, alpha: float, grad_a: Array) -> Array:
        """Return dL/dz from dL/da (``grad_a``), shapes ``(..., n)``."""
        if self.elementwise:
            return grad_a * self.derivative(z, a, alpha)
        # Softmax: J^T g with J symmetric, written without forming J.
        return a * (grad_a - np.sum(grad_a * a, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", linear, linear_prime),
        Activation("sigmoid", sigmoid, sigmoid_prime),
        Activation("tanh", tanh, tanh_prime),
        Activation("relu", relu, relu_prime),
        Activation("leaky_relu", leaky_relu, leaky_relu_prime, default_alpha=0.01),
        Activation("elu", elu, elu_prime, default_alpha=1.0),
        Activation("softplus", softplus, softplus_prime),
        Activation("softmax", softmax, softmax_jacobian, elementwise=False),
    )
}
