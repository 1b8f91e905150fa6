"""Random network specs for tests: every activation with every loss, single or batch."""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "softmax"]
LOSSES = ["mse", "half_sse", "binary_crossentropy", "categorical_crossentropy"]
# Which output activations keep each loss finite.
OUTPUT_OK = {
    "binary_crossentropy": {"sigmoid", "softmax"},
    "categorical_crossentropy": {"sigmoid", "softmax", "softplus"},
}


def random_spec(rng: np.random.Generator, act: str, loss: str, batch: int | None,
                sizes: tuple[int, ...] = (3, 4, 2), update: bool = True) -> dict:
    """Return a network spec whose hidden layers use ``act`` (and the output too, if it fits the loss)."""
    out_act = act if act in OUTPUT_OK.get(loss, {act}) else ("softmax" if loss == "categorical_crossentropy" else "sigmoid")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        a = out_act if last else act
        layer = {"weights": rng.uniform(-1, 1, (n_in, n_out)).round(3).tolist(),
                 "bias": rng.uniform(-0.5, 0.5, n_out).round(3).tolist(), "activation": a}
        if a in ("leaky_relu", "elu"):
            layer["alpha"] = float(rng.choice([0.01, 0.1, 0.3, 1.0]))
        layers.append(layer)
    shape = (sizes[0],) if batch is None else (batch, sizes[0])
    out_shape = (sizes[-1],) if batch is None else (batch, sizes[-1])
    if loss == "categorical_crossentropy":
        y = np.zeros(out_shape)
        y[..., 0] = 1.0
        y = np.apply_along_axis(rng.permutation, -1, y)
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, out_shape).astype(float)
    else:
        y = rng.uniform(-1, 1, out_shape).round(3)
    spec = {"network": {"layers": layers, "loss": loss},
            "input": rng.uniform(-1, 1, shape).round(3).tolist(), "target": y.tolist()}
    if update:
        spec["update"] = {"learning_rate": float(rng.choice([0.1, 0.5, 1.0]))}
    return spec
