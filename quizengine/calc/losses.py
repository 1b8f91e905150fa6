"""Losses and their gradients with respect to the output ``a``.

All take ``a`` and ``y`` of shape ``(batch, n_out)``; a single example is a batch of one.
"Mean over batch" divides by the number of examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray


class InfiniteLossError(ValueError):
    """A cross-entropy whose output reaches exactly 0 or 1."""


def _sq_sum(d: Array) -> float:
    flat = d.reshape(-1)
    return float(flat @ flat)


def mse(a: Array, y: Array) -> float:
    return _sq_sum(a - y) / a.size


def mse_grad(a: Array, y: Array) -> Array:
    return 2.0 * (a - y) / a.size


def half_sse(a: Array, y: Array) -> float:
    return 0.5 * _sq_sum(y - a) / a.shape[0]


def half_sse_grad(a: Array, y: Array) -> Array:
    return (a - y) / a.shape[0]


def _check_open_interval(a: Array, name: str, upper: bool) -> None:
    if a.min() > 0.0 and (not upper or a.max() < 1.0):
        return
    bad = (a <= 0.0) | (a >= 1.0) if upper else (a <= 0.0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        edge = "0" if a[idx] <= 0.0 else "1"
        raise InfiniteLossError(
            f"{name}: the output reaches exactly {edge} at (example, unit) {idx}, "
            "so the loss is infinite; use smaller weights or a softer activation"
        )


def binary_crossentropy(a: Array, y: Array) -> float:
    _check_open_interval(a, "binary_crossentropy", upper=True)
    return float(np.mean(-(y * np.log(a) + (1.0 - y) * np.log1p(-a))))


def binary_crossentropy_grad(a: Array, y: Array) -> Array:
    # Called after binary_crossentropy(), which has checked 0 < a < 1.
    return (a - y) / (a * (1.0 - a)) / a.size


def categorical_crossentropy(a: Array, y: Array) -> float:
    _check_open_interval(a, "categorical_crossentropy", upper=False)
    return -float(np.add.reduce((y * np.log(a)).reshape(-1))) / a.shape[0]


def categorical_crossentropy_grad(a: Array, y: Array) -> Array:
    # Called after categorical_crossentropy(), which has checked a > 0.
    return -y / a / a.shape[0]


@dataclass(frozen=True)
class Loss:
    name: str
    value: Callable[[Array, Array], float]
    grad: Callable[[Array, Array], Array]
    formula: str


LOSSES: dict[str, Loss] = {
    l.name: l
    for l in (
        Loss("mse", mse, mse_grad, "L = mean over all outputs of (a - y)^2"),
        Loss("half_sse", half_sse, half_sse_grad, "L = 1/2 sum_k (y_k - a_k)^2, mean over batch"),
        Loss(
            "binary_crossentropy",
            binary_crossentropy,
            binary_crossentropy_grad,
            "L = mean of -(y log a + (1 - y) log(1 - a))",
        ),
        Loss(
            "categorical_crossentropy",
            categorical_crossentropy,
            categorical_crossentropy_grad,
            "L = -sum_k y_k log a_k, mean over batch",
        ),
    )
}
