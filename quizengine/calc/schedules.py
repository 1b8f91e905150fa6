"""Learning-rate schedules, iterations per epoch, and weight-initializer scales: closed formulas.

Schedules follow the PyTorch and Keras documentation: StepLR, ExponentialDecay (ExponentialLR is
its ``decay_steps = 1``) and CosineAnnealingLR. Initializers follow Glorot and Bengio (2010),
He et al. (2015) and LeCun et al. (1998), as Keras and ``torch.nn.init`` implement them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

# ---------------------------------------------------------------- learning-rate schedules


@dataclass(frozen=True)
class ScheduleConfig:
    name: str
    learning_rate: float  # the initial rate (eta_max for cosine annealing)
    step_size: float = 1.0  # step_decay: epochs between drops
    gamma: float = 0.1  # step_decay: factor per drop (torch's default)
    decay_rate: float = 1.0  # exponential_decay
    decay_steps: float = 1.0  # exponential_decay
    staircase: bool = False  # exponential_decay: floor(epoch / decay_steps)
    T_max: float = 1.0  # cosine_annealing: epochs of one half period
    eta_min: float = 0.0  # cosine_annealing: the lowest rate


def step_decay(c: ScheduleConfig, epoch: int) -> float:
    return c.learning_rate * c.gamma ** math.floor(epoch / c.step_size)


def exponential_decay(c: ScheduleConfig, epoch: int) -> float:
    p = epoch / c.decay_steps
    return c.learning_rate * c.decay_rate ** (math.floor(p) if c.staircase else p)


def cosine_annealing(c: ScheduleConfig, epoch: int) -> float:
    return c.eta_min + (c.learning_rate - c.eta_min) * (1.0 + math.cos(math.pi * epoch / c.T_max)) / 2.0


@dataclass(frozen=True)
class Schedule:
    name: str
    keys: tuple[str, ...]  # spec keys; the required ones first
    required: tuple[str, ...]
    rate: Callable[[ScheduleConfig, int], float]
    formula: str


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("step_decay", ("learning_rate", "step_size", "gamma"), ("learning_rate", "step_size"), step_decay,
                 "lr * gamma^floor(epoch / step_size)"),
        Schedule("exponential_decay", ("learning_rate", "decay_rate", "decay_steps", "staircase"),
                 ("learning_rate", "decay_rate"), exponential_decay,
                 "lr * decay_rate^(epoch / decay_steps)   (staircase: floor of the exponent)"),
        Schedule("cosine_annealing", ("learning_rate", "T_max", "eta_min"), ("learning_rate", "T_max"),
                 cosine_annealing, "eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2"),
    )
}


def schedule_result(c: ScheduleConfig, epochs: tuple[int, ...]) -> dict:
    rate = SCHEDULES[c.name].rate
    return {"learning_rates": [rate(c, e) for e in epochs]}


# ---------------------------------------------------------------- iterations per epoch

def iterations_result(samples: int, batch_size: int, epochs: int, drop_last: bool) -> dict:
    """Return the updates per epoch (ceil(n / batch), or floor with drop_last), their total and the last batch."""
    per_epoch = samples // batch_size if drop_last else -(-samples // batch_size)
    last = batch_size if drop_last or samples % batch_size == 0 else samples % batch_size
    return {"per_epoch": per_epoch, "total": per_epoch * epochs, "last_batch": last}


# ---------------------------------------------------------------- initializers

# Keras draws its *_normal initializers from a normal truncated at 2 standard deviations, and
# widens the stddev by this factor so that the truncated draw keeps the intended variance.
KERAS_TRUNCATION = 0.87962566103423978


@dataclass(frozen=True)
class Initializer:
    name: str
    scale: float  # variance = scale / fan
    fan: str  # "avg" (fan_in + fan_out) / 2, or "in"
    uniform: bool


INITIALIZERS: dict[str, Initializer] = {
    i.name: i
    for i in (
        Initializer("glorot_uniform", 1.0, "avg", True),
        Initializer("glorot_normal", 1.0, "avg", False),
        Initializer("he_uniform", 2.0, "in", True),
        Initializer("he_normal", 2.0, "in", False),
        Initializer("lecun_uniform", 1.0, "in", True),
        Initializer("lecun_normal", 1.0, "in", False),
    )
}


def initializer_result(name: str, fan_in: int, fan_out: int | None) -> dict:
    """Return the variance and standard deviation of the weights; the limit for a uniform draw.

    Glorot: variance 2 / (fan_in + fan_out); He: 2 / fan_in; LeCun: 1 / fan_in. A uniform draw on
    [-limit, limit] has variance limit^2 / 3, so limit = sqrt(3 * variance) (sqrt(6 / (fan_in +
    fan_out)) for Glorot, sqrt(6 / fan_in) for He). A normal draw reports Keras's truncated-normal
    stddev too.
    """
    init = INITIALIZERS[name]
    fan = (fan_in + fan_out) / 2.0 if init.fan == "avg" else float(fan_in)
    variance = init.scale / fan
    std = math.sqrt(variance)
    if init.uniform:
        return {"limit": math.sqrt(3.0 * variance), "variance": variance, "std": std}
    return {"std": std, "variance": variance, "truncated_std": std / KERAS_TRUNCATION}
