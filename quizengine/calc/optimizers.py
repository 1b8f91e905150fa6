"""Optimizers over a sequence of steps (CONTRACT section 1b); state starts at 0.

Parameters may have any shape (scalar, vector, matrix); each gradient has that shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Array = np.ndarray
GradientSource = Callable[[int, Array], Array]  # (step index, current params) -> gradient


@dataclass(frozen=True)
class OptimizerConfig:
    name: str
    learning_rate: float
    momentum: float = 0.0
    nesterov: bool = False
    rho: float = 0.9
    epsilon: float = 1e-7
    beta_1: float = 0.9
    beta_2: float = 0.999


@dataclass(frozen=True)
class OptimizerQuirks:
    gradient_ascent: bool = False
    momentum_sign: bool = False
    no_bias_correction: bool = False


@dataclass
class Step:
    gradient: Array
    params: Array
    velocity: Array
    second_moment: Array | None = None

    def to_json(self) -> dict:
        d = {"gradient": self.gradient.tolist(), "params": self.params.tolist(), "velocity": self.velocity.tolist()}
        if self.second_moment is not None:
            d["second_moment"] = self.second_moment.tolist()
        return d


@dataclass
class Trajectory:
    initial: Array
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"steps": [s.to_json() for s in self.steps]}


def run(cfg: OptimizerConfig, params: Array, gradient: GradientSource, steps: int,
        quirks: OptimizerQuirks = OptimizerQuirks()) -> Trajectory:
    """Apply ``steps`` updates; ``gradient(k, w)`` gives the gradient used by update k+1."""
    w = np.array(params, dtype=np.float64)
    v = np.zeros_like(w)  # velocity, s (rmsprop), G (adagrad) or m (adam)
    s = np.zeros_like(w)  # adam's second moment
    lr = cfg.learning_rate
    out = Trajectory(initial=w.copy())
    for k in range(steps):
        g = np.asarray(gradient(k, w), dtype=np.float64)
        if quirks.gradient_ascent:
            g = -g
        second = None
        if cfg.name == "sgd":
            mu = -cfg.momentum if quirks.momentum_sign else cfg.momentum
            v = mu * v - lr * g
            w = w + (mu * v - lr * g if cfg.nesterov else v)
        elif cfg.name == "rmsprop":
            v = cfg.rho * v + (1.0 - cfg.rho) * g * g
            w = w - lr * g / (np.sqrt(v) + cfg.epsilon)
        elif cfg.name == "adagrad":
            v = v + g * g
            w = w - lr * g / (np.sqrt(v) + cfg.epsilon)
        elif cfg.name == "adam":
            t = k + 1
            v = cfg.beta_1 * v + (1.0 - cfg.beta_1) * g
            s = cfg.beta_2 * s + (1.0 - cfg.beta_2) * g * g
            if quirks.no_bias_correction:
                m_hat, v_hat = v, s
            else:
                m_hat = v / (1.0 - cfg.beta_1**t)
                v_hat = s / (1.0 - cfg.beta_2**t)
            w = w - lr * m_hat / (np.sqrt(v_hat) + cfg.epsilon)
            second = s.copy()
        else:  # pragma: no cover - spec.py only lets known names through
            raise ValueError(f"unknown optimizer {cfg.name!r}")
        out.steps.append(Step(gradient=g if not quirks.gradient_ascent else -g, params=w.copy(),
                              velocity=v.copy(), second_moment=second))
    return out


def sequence_gradients(gradients: list[Array]) -> GradientSource:
    """Return a source that hands out the given gradients in order."""
    return lambda k, w: gradients[k]


def quadratic_gradient(A: Array, b: Array) -> GradientSource:
    """Return the gradient of f(w) = 1/2 w^T A w - b^T w, in w's shape.

    That is ``1/2 (A + A^T) w - b``: ``A w - b`` when A is symmetric, and still the true
    gradient of f when it is not.
    """
    sym = 0.5 * (A + A.T)

    def grad(k: int, w: Array) -> Array:
        return (sym @ w.reshape(-1) - b.reshape(-1)).reshape(w.shape)

    return grad


OPTIMIZER_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("learning_rate", "momentum", "nesterov"),
    "rmsprop": ("learning_rate", "rho", "epsilon"),
    "adagrad": ("learning_rate", "epsilon"),
    "adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
}
