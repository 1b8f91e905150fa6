"""Worked solutions from a variant's own numbers: the values that lead to the answer."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calc.engine import run_network
from ..calc.optimizers import OPTIMIZERS, rule_tex
from ..calc.schedules import INITIALIZERS, SCHEDULES
from ..calc.spec import (ActivationTask, InitializerTask, IterationsTask, KerasTask, NetworkTask, OptimizerTask,
                         ScheduleTask, Task)
from .params import fmt, latex

FORMULAS = {
    "linear": ("z", "1"),
    "sigmoid": (r"\frac{1}{1 + e^{-z}}", r"\sigma(z)\,(1 - \sigma(z))"),
    "tanh": (r"\tanh z", r"1 - \tanh^2 z"),
    "relu": (r"\max(0, z)", r"1 \text{ if } z > 0 \text{ else } 0"),
    "leaky_relu": (r"z \text{ if } z > 0 \text{ else } \alpha z", r"1 \text{ if } z > 0 \text{ else } \alpha"),
    "elu": (r"z \text{ if } z > 0 \text{ else } \alpha (e^z - 1)", r"1 \text{ if } z > 0 \text{ else } \alpha e^z"),
    "softplus": (r"\ln(1 + e^z)", r"\sigma(z)"),
    "softmax": (r"\frac{e^{z_i}}{\sum_j e^{z_j}}", r"a_i (\delta_{ij} - a_j)"),
}
LOSS_TEX = {
    "mse": r"L = \frac{1}{n} \sum_k (a_k - y_k)^2, \quad \frac{\partial L}{\partial a} = \frac{2}{n}(a - y)",
    "half_sse": r"L = \tfrac{1}{2} \sum_k (y_k - a_k)^2, \quad \frac{\partial L}{\partial a} = a - y",
    "binary_crossentropy": r"L = -\frac{1}{n}\sum_k \big(y_k \ln a_k + (1 - y_k)\ln(1 - a_k)\big)",
    "categorical_crossentropy": r"L = -\sum_k y_k \ln a_k, \quad \frac{\partial L}{\partial a} = -\frac{y}{a}",
}


def row(v: Any) -> str:
    """Typeset a vector as a row (Keras layout), a one-entry vector as a number, a matrix as it is."""
    if np.size(v) == 1 and np.ndim(v) == 1:
        return latex(np.asarray(v).reshape(()))
    return latex(v, transpose=np.ndim(v) == 1)


def worked_solution(task: Task, result: dict[str, Any], answer_path: str, answer: Any) -> str:
    """Return Markdown that walks from the variant's numbers to its answer."""
    if isinstance(task, NetworkTask):
        body = _network(task, answer_path)
    elif isinstance(task, OptimizerTask):
        body = _optimizer(task, result, answer_path)
    elif isinstance(task, ActivationTask):
        body = _activation(task, result)
    elif isinstance(task, (ScheduleTask, IterationsTask, InitializerTask)):
        body = _closed_form(task, result)
    else:
        body = _keras(task, result)
    shown = row(answer) if np.ndim(answer) == 1 else latex(answer)
    return "**Worked solution with your numbers**\n\n" + body + f"\n\nAnswer: ${shown}$"


def _network(task: NetworkTask, path: str) -> str:
    res = run_network(task)
    ex = (lambda v: v[0]) if res.single else (lambda v: v)  # noqa: E731
    n = len(task.network.layers)
    # Layers are numbered from 1 as in the prompts ($W^{(1)}$ is layers[0] of the calculator).
    lines = [r"Forward pass, $z = a_{\text{prev}} W + b$ (row vectors, $W$ of shape (inputs, units)):", ""]
    lines.append(f"- input: $x = {row(ex(res.input))}$")
    for k, (layer, lr) in enumerate(zip(task.network.layers, res.layers), start=1):
        name = layer.activation.name.replace("_", r"\_")
        prev = "x" if k == 1 else f"a^{{({k - 1})}}"
        drop = layer.dropout if layer.dropout is not None and layer.dropout.mask is not None else None
        act = f"$a^{{({k})}} = \\mathrm{{{name}}}(z^{{({k})}}) = {row(ex(lr.a))}$" if drop is None else (
            f"$\\mathrm{{{name}}}(z^{{({k})}}) = {row(ex(lr.f_of_z))}$, dropout with mask $m = {row(drop.mask)}$: "
            f"$a^{{({k})}} = \\mathrm{{{name}}}(z^{{({k})}}) \\odot m / (1 - {fmt(drop.rate)}) = {row(ex(lr.a))}$")
        lines.append(f"- layer {k}: $z^{{({k})}} = {prev} W^{{({k})}} + b^{{({k})}} = {row(ex(lr.z))}$, {act}")
    loss = task.network.loss.name
    lines += ["", f"Loss ({loss.replace('_', ' ')}): ${LOSS_TEX[loss]}$, so $L = {fmt(res.loss)}$."]
    if not any(key in path for key in ("delta", "dW", "db", "W_new", "b_new")):
        return "\n".join(lines)
    lowest = min((int(p.split("]")[0]) for p in path.split("layers[")[1:]), default=0) + 1
    lines += ["", "Backward pass:", "", f"- $\\partial L / \\partial a^{{({n})}} = {row(ex(res.grad_output))}$"]
    for k in range(n, lowest - 1, -1):
        layer, lr = task.network.layers[k - 1], res.layers[k - 1]
        if k < n:
            lines.append(f"- $\\partial L / \\partial a^{{({k})}} = \\delta^{{({k + 1})}} (W^{{({k + 1})}})^T = "
                         f"{row(ex(lr.grad_a))}$")
        if layer.activation.elementwise:
            d = layer.activation.derivative(lr.z, lr.f_of_z, layer.alpha)
            mask = (f" \\odot m / (1 - {fmt(layer.dropout.rate)})"
                    if layer.dropout is not None and layer.dropout.mask is not None else "")
            lines.append(f"- $f'(z^{{({k})}}) = {row(ex(d))}$, so "
                         f"$\\delta^{{({k})}} = \\partial L / \\partial a^{{({k})}}{mask} \\odot f'(z^{{({k})}}) = {row(ex(lr.delta))}$")
        else:
            lines.append(f"- softmax: $\\delta_j = a_j \\big(g_j - \\sum_i g_i a_i\\big)$ with $g = \\partial L/\\partial a$, "
                         f"so $\\delta^{{({k})}} = {row(ex(lr.delta))}$")
        prev = "x" if k == 1 else f"a^{{({k - 1})}}"
        lines.append(f"- $\\partial L / \\partial W^{{({k})}} = ({prev})^T \\delta^{{({k})}} = {latex(lr.dW)}$, "
                     f"$\\partial L / \\partial b^{{({k})}} = {row(lr.db)}$")
        if lr.W_new is not None:
            eta = fmt(task.learning_rate)
            grad = f"\\partial L/\\partial W^{{({k})}}"
            if task.weight_decay or task.l1:
                grad = (f"\\big({grad}" + (f" + {fmt(task.weight_decay)}\\, W^{{({k})}}" if task.weight_decay else "")
                        + (f" + {fmt(task.l1)} \\operatorname{{sign}}(W^{{({k})}})" if task.l1 else "") + "\\big)")
            lines.append(f"- update with $\\eta = {eta}$: $W^{{({k})}} - \\eta\\, {grad} = "
                         f"{latex(lr.W_new)}$, $b^{{({k})}} - \\eta\\, \\partial L/\\partial b^{{({k})}} = {row(lr.b_new)}$")
    return "\n".join(lines)


def _optimizer(task: OptimizerTask, result: dict[str, Any], path: str) -> str:
    c = task.config
    optimizer = OPTIMIZERS[c.name]
    rule = rule_tex(c)
    settings = ", ".join(f"{k} = {fmt(getattr(c, k))}" for k in optimizer.keys if k != "nesterov")
    last = 0
    if "steps[" in path:
        last = int(path.split("steps[")[1].split("]")[0])
    state = optimizer.symbol
    head = f"| step | gradient $g$ | ${state}$ |" + (" $v$ |" if optimizer.second_moment else "") + " params $w$ |"
    sep = "|---|---|---|" + ("---|" if optimizer.second_moment else "") + "---|"
    lines = [f"Rule (state starts at 0; {settings}): ${rule}$", "", f"Start: $w_0 = {row(task.params)}$", "", head, sep]
    for k, s in enumerate(result["steps"][: last + 1]):
        cells = [str(k + 1), _cell(s["gradient"]), _cell(s["velocity"])]
        if optimizer.second_moment:
            cells.append(_cell(s["second_moment"]))
        cells.append(_cell(s["params"]))
        lines.append("| " + " | ".join(cells) + " |")
    if task.gradients is None:
        lines += ["", r"Each gradient is taken at the current $w$: $g = \tfrac{1}{2}(A + A^T) w - b$."]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return fmt(a)
    return "(" + ", ".join(_cell(x) for x in a) + ")"


def _activation(task: ActivationTask, result: dict[str, Any]) -> str:
    f, d = FORMULAS[task.name]
    alpha = f" with $\\alpha = {fmt(task.alpha)}$" if task.name in ("leaky_relu", "elu") else ""
    lines = [f"$f(z) = {f}$ and $f'(z) = {d}${alpha}.", "",
             f"- $z = {row(task.z)}$", f"- $f(z) = {row(result['value'])}$"]
    lines.append(f"- {'Jacobian' if task.name == 'softmax' else 'derivative'}: "
                 f"${latex(result['derivative']) if task.name == 'softmax' else row(result['derivative'])}$")
    return "\n".join(lines)


def _keras(task: KerasTask, result: dict[str, Any]) -> str:
    lines = ["A Dense layer with $n$ inputs and $u$ units has $n \\cdot u$ weights and $u$ biases.", ""]
    n_in = task.input_dim
    for i, l in enumerate(result["layers"], start=1):
        lines.append(f"- Dense layer {i}: ${n_in} \\cdot {l['units']} + {l['units']} = {l['params']}$")
        n_in = l["units"]
    lines.append(f"\nTotal: ${result['total_params']}$ parameters.")
    return "\n".join(lines)


SCHEDULE_TEX = {
    "step_decay": r"\eta_e = \eta_0\, \gamma^{\lfloor e / s \rfloor}",
    "exponential_decay": r"\eta_e = \eta_0\, r^{e / s}",
    "cosine_annealing": r"\eta_e = \eta_{\min} + \tfrac{1}{2}(\eta_0 - \eta_{\min})\big(1 + \cos(\pi e / T)\big)",
}


def _closed_form(task: Task, result: dict[str, Any]) -> str:
    """Schedules, iterations per epoch and initializer scales: the formula, then the numbers."""
    if isinstance(task, ScheduleTask):
        c = task.config
        stair = r" (staircase: $\lfloor e / s \rfloor$ in the exponent)" if c.staircase else ""
        keys = ", ".join(f"{k} = {c.staircase if k == 'staircase' else fmt(getattr(c, k))}" for k in SCHEDULES[c.name].keys)
        rows = [f"- epoch {e}: ${fmt(r)}$" for e, r in zip(task.epochs, result["learning_rates"])]
        return "\n".join([f"${SCHEDULE_TEX[c.name]}${stair} with {keys}:", ""] + rows)
    if isinstance(task, IterationsTask):
        op = r"\lfloor" if task.drop_last else r"\lceil"
        cl = r"\rfloor" if task.drop_last else r"\rceil"
        return (f"Updates per epoch: ${op} {task.samples} / {task.batch_size} {cl} = {result['per_epoch']}$ "
                f"(last batch: {result['last_batch']} samples); over {task.epochs} epoch{'s' if task.epochs > 1 else ''}: ${result['total']}$.")
    init = INITIALIZERS[task.name]
    fan = rf"\tfrac{{{task.fan_in} + {task.fan_out}}}{{2}}" if init.fan == "avg" else str(task.fan_in)
    lines = [f"$\\mathrm{{Var}}(w) = {fmt(init.scale)} / {fan} = {fmt(result['variance'])}$, "
             f"$\\sigma = {fmt(result['std'])}$."]
    if init.uniform:
        lines.append(f"Uniform on $[-L, L]$ has variance $L^2/3$, so $L = \\sqrt{{3 \\mathrm{{Var}}(w)}} = {fmt(result['limit'])}$.")
    return " ".join(lines)
