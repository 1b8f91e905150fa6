"""Optimizers over a sequence of steps; state starts at 0. One update rule per optimizer.

Parameters may have any shape (scalar, vector, matrix); each gradient has that shape. An
update is two halves, so that a given state can be carried forward (see ``run``): ``state``
takes the moments (velocity, second moment) to step t, then ``params`` moves w with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Array = np.ndarray
GradientSource = Callable[[int, Array], Array]  # (step index, current params) -> gradient
Moments = tuple[Array, Array]  # (velocity, second moment); the second is zeros unless adam uses it


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
    bias_correction: bool = True  # adam; False is the textbook slip of using m and v as they are
    weight_decay: float = 0.0  # coupled L2 (torch's SGD/Adam weight_decay); decoupled for adamw
    l1: float = 0.0  # L1 penalty: its subgradient l1 * sign(w) joins the gradient


def penalized(c: OptimizerConfig, w: Array, g: Array) -> Array:
    """Return the gradient with the coupled penalties: g + weight_decay * w + l1 * sign(w) (sign(0) = 0)."""
    if c.weight_decay and c.name != "adamw":
        g = g + c.weight_decay * w
    if c.l1:
        g = g + c.l1 * np.sign(w)
    return g


# -- the rules: each optimizer's moment update beside its parameter update

def sgd_state(c: OptimizerConfig, v: Array, s: Array, g: Array, t: int) -> Moments:
    return c.momentum * v - c.learning_rate * g, s


def sgd_params(c: OptimizerConfig, w: Array, v: Array, s: Array, g: Array, t: int) -> Array:
    return w + (c.momentum * v - c.learning_rate * g if c.nesterov else v)


def rmsprop_state(c: OptimizerConfig, v: Array, s: Array, g: Array, t: int) -> Moments:
    return c.rho * v + (1.0 - c.rho) * g * g, s


def rmsprop_params(c: OptimizerConfig, w: Array, v: Array, s: Array, g: Array, t: int) -> Array:
    return w - c.learning_rate * g / (np.sqrt(v) + c.epsilon)


def adagrad_state(c: OptimizerConfig, v: Array, s: Array, g: Array, t: int) -> Moments:
    return v + g * g, s


def adam_state(c: OptimizerConfig, m: Array, v: Array, g: Array, t: int) -> Moments:
    return c.beta_1 * m + (1.0 - c.beta_1) * g, c.beta_2 * v + (1.0 - c.beta_2) * g * g


def adam_params(c: OptimizerConfig, w: Array, m: Array, v: Array, g: Array, t: int) -> Array:
    if c.bias_correction:
        m, v = m / (1.0 - c.beta_1**t), v / (1.0 - c.beta_2**t)
    return w - c.learning_rate * m / (np.sqrt(v) + c.epsilon)


def adamw_params(c: OptimizerConfig, w: Array, m: Array, v: Array, g: Array, t: int) -> Array:
    # Decoupled weight decay (Loshchilov and Hutter; torch.optim.AdamW, Keras AdamW): shrink w, then Adam's step.
    return adam_params(c, w * (1.0 - c.learning_rate * c.weight_decay), m, v, g, t)


@dataclass(frozen=True)
class Optimizer:
    """An update rule: its spec keys, its moments, and its formula in plain text and LaTeX."""

    name: str
    keys: tuple[str, ...]  # spec keys, in the order the worked table lists them
    state: Callable[[OptimizerConfig, Array, Array, Array, int], Moments]
    params: Callable[[OptimizerConfig, Array, Array, Array, Array, int], Array]
    symbol: str  # the velocity column's letter: v, s, G or m
    rule: Callable[[OptimizerConfig], str]
    tex: Callable[[OptimizerConfig], str]
    second_moment: bool = False  # reports ``second_moment`` too


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", ("learning_rate", "momentum", "nesterov"), sgd_state, sgd_params, "v",
                  lambda c: ("v <- momentum*v - lr*g ; w <- w + momentum*v - lr*g" if c.nesterov
                             else "v <- momentum*v - lr*g ; w <- w + v"),
                  lambda c: (r"v \leftarrow \mu v - \eta g,\; w \leftarrow w + \mu v - \eta g" if c.nesterov
                             else r"v \leftarrow \mu v - \eta g,\; w \leftarrow w + v")),
        Optimizer("rmsprop", ("learning_rate", "rho", "epsilon"), rmsprop_state, rmsprop_params, "s",
                  lambda c: "s <- rho*s + (1-rho)*g^2 ; w <- w - lr*g/(sqrt(s) + eps)   (velocity column: s)",
                  lambda c: r"s \leftarrow \rho s + (1 - \rho) g^2,\; w \leftarrow w - \eta g / (\sqrt{s} + \epsilon)"),
        Optimizer("adagrad", ("learning_rate", "epsilon"), adagrad_state, rmsprop_params, "G",
                  lambda c: "G <- G + g^2 ; w <- w - lr*g/(sqrt(G) + eps)   (velocity column: G)",
                  lambda c: r"G \leftarrow G + g^2,\; w \leftarrow w - \eta g / (\sqrt{G} + \epsilon)"),
        Optimizer("adam", ("learning_rate", "beta_1", "beta_2", "epsilon"), adam_state, adam_params, "m",
                  lambda c: ("m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2 ; w <- w - lr*m_hat/(sqrt(v_hat) + eps)"
                             if c.bias_correction else
                             "m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2 ; w <- w - lr*m/(sqrt(v) + eps)"),
                  lambda c: (r"m \leftarrow \beta_1 m + (1-\beta_1) g,\; v \leftarrow \beta_2 v + (1-\beta_2) g^2,\; "
                             + (r"w \leftarrow w - \eta \hat m / (\sqrt{\hat v} + \epsilon)" if c.bias_correction
                                else r"w \leftarrow w - \eta m / (\sqrt{v} + \epsilon)")),
                  second_moment=True),
        Optimizer("adamw", ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay"), adam_state, adamw_params,
                  "m",
                  lambda c: ("m <- b1*m + (1-b1)*g ; v <- b2*v + (1-b2)*g^2 ; "
                             "w <- w*(1 - lr*weight_decay) - lr*m_hat/(sqrt(v_hat) + eps)"),
                  lambda c: (r"m \leftarrow \beta_1 m + (1-\beta_1) g,\; v \leftarrow \beta_2 v + (1-\beta_2) g^2,\; "
                             r"w \leftarrow w (1 - \eta \lambda) - \eta \hat m / (\sqrt{\hat v} + \epsilon)"),
                  second_moment=True),
    )
}
# Optional keys beyond the contract's, shown in the worked table only when not at their default.
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("weight_decay", "l1"), "rmsprop": ("weight_decay", "l1"), "adagrad": ("weight_decay", "l1"),
    "adam": ("bias_correction", "weight_decay", "l1"), "adamw": ("bias_correction", "l1"),
}
DEFAULTS: dict[str, dict[str, float]] = {"adamw": {"weight_decay": 0.01}}  # torch.optim.AdamW's default


def rule_text(c: OptimizerConfig) -> str:
    """Return the update rule in plain text, the coupled penalties first."""
    return _penalty(c, tex=False) + OPTIMIZERS[c.name].rule(c)


def rule_tex(c: OptimizerConfig) -> str:
    """Return the update rule in LaTeX, the coupled penalties first."""
    return _penalty(c, tex=True) + OPTIMIZERS[c.name].tex(c)


def _penalty(c: OptimizerConfig, tex: bool) -> str:
    terms = []
    if c.weight_decay and c.name != "adamw":
        terms.append(f"{c.weight_decay:g}" + (r"\, w" if tex else "*w"))
    if c.l1:
        terms.append(f"{c.l1:g}" + (r"\, \operatorname{sign}(w)" if tex else "*sign(w)"))
    if not terms:
        return ""
    return (r"g \leftarrow g + " + " + ".join(terms) + r",\; ") if tex else ("g <- g + " + " + ".join(terms) + " ; ")


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
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"steps": [s.to_json() for s in self.steps]}


Given = dict[tuple[int, str], Callable[[Array], Array]]  # (step, field) -> puts the given value in


def run(cfg: OptimizerConfig, params: Array, gradient: GradientSource, steps: int, given: Given | None = None) -> Trajectory:
    """Apply ``steps`` updates; ``gradient(k, w)`` gives the gradient used by update k+1.

    ``given[(k, field)]`` replaces a field of step k (``gradient``, ``velocity``,
    ``second_moment`` or ``params``) by a given value before anything downstream uses it.
    """
    rule = OPTIMIZERS[cfg.name]
    state, move, keep_second = rule.state, rule.params, rule.second_moment
    penalty = bool(cfg.weight_decay and cfg.name != "adamw" or cfg.l1)
    w = np.array(params, dtype=np.float64)
    v = np.zeros_like(w)  # velocity, s (rmsprop), G (adagrad) or m (adam)
    s = np.zeros_like(w)  # adam's second moment
    out = Trajectory()
    for k in range(steps):
        g = np.asarray(gradient(k, w), dtype=np.float64)
        if given:
            g = _put(given, k, "gradient", g)
        g_used = penalized(cfg, w, g) if penalty else g
        v, s = state(cfg, v, s, g_used, k + 1)
        if given:
            v, s = _put(given, k, "velocity", v), _put(given, k, "second_moment", s)
        w = move(cfg, w, v, s, g_used, k + 1)
        if given:
            w = _put(given, k, "params", w)
        out.steps.append(Step(g, w.copy(), v.copy(), s.copy() if keep_second else None))
    return out


def _put(given: Given, k: int, name: str, value: Array) -> Array:
    put = given.get((k, name))
    return value if put is None else put(value)


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
