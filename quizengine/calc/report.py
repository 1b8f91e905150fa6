"""The worked table: every intermediate value of a task, for a person checking a key."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from . import network as nw
from . import optimizers as opt
from .engine import activation_result, keras_result, run_network, run_optimizer
from . import schedules as sc
from .given import Given
from .spec import (ActivationTask, InitializerTask, IterationsTask, KerasTask, NetworkTask, OptimizerTask, ScheduleTask,
                   Task)

Array = np.ndarray
INDENT = "    "
_DEFAULT = {f.name: f.default for f in fields(opt.OptimizerConfig)}


def fmt(x: float) -> str:
    """Format one number to 6 significant digits."""
    return f"{float(x):.6g}"


def compact(v: Array | float) -> str:
    """Format a scalar, vector or matrix on one line: ``[[1, 2], [3, 4]]``."""
    a = np.asarray(v)
    if a.ndim == 0:
        return fmt(a)
    return "[" + ", ".join(compact(e) for e in a) + "]"


def block(label: str, v: Array, width: int = 22) -> list[str]:
    """Format ``label = value``; a matrix gets one aligned row per line."""
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    head = f"{INDENT}{label:<{width}} = "
    if a.ndim == 1:
        return [head + compact(a)]
    cells = [[fmt(x) for x in row] for row in a]
    w = max(len(c) for row in cells for c in row)
    rows = ["[" + "  ".join(c.rjust(w) for c in row) + "]" for row in cells]
    pad = " " * len(head)
    return [head + rows[0]] + [pad + r for r in rows[1:]]


def network_report(task: NetworkTask) -> str:
    res = run_network(task)
    net = task.network
    sizes = [task.x.shape[-1]] + [l.weights.shape[1] for l in net.layers]
    batch = "1 example" if res.single else f"a batch of {task.x.shape[0]} examples (one row each)"
    lines = [f"Network {' -> '.join(map(str, sizes))}, loss {net.loss.name}, {batch}",
             "Keras layout: z = a_prev @ W + b, W of shape (n_in, n_out)"] + _given(task.given) + ["", "Forward pass"]
    lines += block("input a_prev", _ex(res, res.input))
    for i, (layer, lr) in enumerate(zip(net.layers, res.layers)):
        act = layer.activation.name + (f"(alpha={fmt(layer.alpha)})" if layer.activation.default_alpha is not None else "")
        lines.append(f"  Layer {i}: {act}, {layer.weights.shape[0]} -> {layer.weights.shape[1]}")
        lines += block("W", layer.weights) + block("b", layer.bias)
        lines += block("z = a_prev W + b", _ex(res, lr.z))
        drop = layer.dropout
        if drop is not None and drop.mask is not None:
            name = layer.activation.name
            lines += block(f"{name}(z)", _ex(res, lr.f_of_z)) + block("dropout mask", drop.mask)
            lines += block(f"a = {name}(z) mask / {fmt(1 - drop.rate)}", _ex(res, lr.a))
        else:
            lines += block(f"a = {layer.activation.name}(z)", _ex(res, lr.a))
            if drop is not None:
                lines.append(f"{INDENT}(dropout rate {fmt(drop.rate)} at inference: the identity)")
    lines += ["", f"Loss: {net.loss.formula}", f"{INDENT}{'L':<22} = {fmt(res.loss)}", "", "Backward pass"]
    lines += block("dL/da (output)", _ex(res, res.grad_output))
    for i in range(len(net.layers) - 1, -1, -1):
        layer, lr = net.layers[i], res.layers[i]
        lines.append(f"  Layer {i}: {layer.activation.name}")
        if i < len(net.layers) - 1:
            lines += block("dL/da = delta' W'^T", _ex(res, lr.grad_a))
        grad = "dL/da"
        if layer.dropout is not None and layer.dropout.mask is not None:
            grad = "dL/df"
            lines += block(f"dL/df = dL/da mask / {fmt(1 - layer.dropout.rate)}", _ex(res, layer.dropout.apply(lr.grad_a)))
        if layer.activation.elementwise:
            lines += block("f'(z)", _ex(res, layer.activation.derivative(lr.z, lr.f_of_z, layer.alpha)))
            lines += block(f"delta = {grad} * f'(z)", _ex(res, lr.delta))
        else:
            lines += block("delta = J^T dL/da", _ex(res, lr.delta))
            lines.append(f"{INDENT}(softmax Jacobian J_ij = a_i (1[i=j] - a_j); delta_j = a_j (g_j - sum_i g_i a_i))")
        lines += block("dW = a_prev^T delta", lr.dW) + block("db = sum_batch delta", lr.db)
        if lr.W_new is not None:
            penalty = (f" + {fmt(task.weight_decay)} W" if task.weight_decay else "") + (
                f" + {fmt(task.l1)} sign(W)" if task.l1 else "")
            step = f"(dW{penalty})" if penalty else "dW"
            lines += block(f"W_new = W - {fmt(task.learning_rate)} {step}", lr.W_new)
            lines += block(f"b_new = b - {fmt(task.learning_rate)} db", lr.b_new)
    lines += ["", f"Output = {compact(_ex(res, res.output))}   loss = {fmt(res.loss)}"]
    return "\n".join(lines)


def _given(given: Given) -> list[str]:
    """List the given values, which the table shows in place of the computed ones."""
    if not given:
        return []
    return ["Given (used in place of the computed values, and carried forward):"] + [
        f"{INDENT}{path} = {compact(value)}" for path, value in given.paths.items()] + (
        [f"{INDENT}(given_derivative: a: f' of a layer whose a is given is taken from that a)"]
        if given.derivative == "a" else [])


def _ex(res: nw.NetworkResult, v: Array) -> Array:
    return v[0] if res.single else v


def optimizer_report(task: OptimizerTask) -> str:
    traj = run_optimizer(task)
    c = task.config
    rule = opt.OPTIMIZERS[c.name]
    keys = rule.keys + tuple(k for k in opt.EXTRA_KEYS.get(c.name, ()) if getattr(c, k) != _DEFAULT[k])
    settings = ", ".join(f"{k}={getattr(c, k)}" for k in keys)
    source = "given gradients" if task.gradients is not None else (
        f"objective f(w) = 1/2 w^T A w - b^T w, A = {compact(task.A)}, b = {compact(task.b)}")
    lines = [f"Optimizer {c.name} ({settings})", f"Rule: {opt.rule_text(c)}", f"Gradients: {source}",
             f"Initial params w0 = {compact(task.params)}"] + _given(task.given) + [""]
    cols = ["step", "gradient g", "velocity" if not rule.second_moment else "m", "params w"]
    rows = [[str(k + 1), compact(s.gradient), compact(s.velocity), compact(s.params)] for k, s in enumerate(traj.steps)]
    if rule.second_moment:
        cols.insert(3, "v (2nd moment)")
        for row, s in zip(rows, traj.steps):
            row.insert(3, compact(s.second_moment))
    return "\n".join(lines + _table(cols, rows))


def _table(cols: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]


def activation_report(task: ActivationTask) -> str:
    res = activation_result(task)
    alpha = f" (alpha={fmt(task.alpha)})" if task.name in ("leaky_relu", "elu") else ""
    lines = [f"Activation {task.name}{alpha}", ""]
    if task.name == "softmax":
        lines += block("z", task.z) + block("softmax(z)", np.array(res["value"]))
        lines += block("Jacobian d a_i / d z_j", np.array(res["derivative"]))
        return "\n".join(lines)
    z, v, d = (np.atleast_1d(np.asarray(x)).reshape(-1) for x in (task.z, res["value"], res["derivative"]))
    rows = [[fmt(a), fmt(b), fmt(c)] for a, b, c in zip(z, v, d)]
    return "\n".join(lines + _table(["z", f"{task.name}(z)", "derivative"], rows))


def keras_report(task: KerasTask) -> str:
    res = keras_result(task)
    rows = [[f"Dense {i}", str(l["units"]), str(l["weights"]), str(l["biases"]), str(l["params"])]
            for i, l in enumerate(res["layers"])]
    lines = [f"Dense layers on an input of {task.input_dim} features: params = n_in * units + units", ""]
    return "\n".join(lines + _table(["layer", "units", "weights", "biases", "params"], rows)
                     + [f"Total params: {res['total_params']}"])


def schedule_report(task: ScheduleTask) -> str:
    c = task.config
    sched = sc.SCHEDULES[c.name]
    settings = ", ".join(f"{k}={getattr(c, k) if k == 'staircase' else fmt(getattr(c, k))}" for k in sched.keys)
    rates = sc.schedule_result(c, task.epochs)["learning_rates"]
    lines = [f"Schedule {c.name} ({settings})", f"Rate at epoch e: {sched.formula}", ""]
    return "\n".join(lines + _table(["epoch", "learning rate"], [[str(e), fmt(r)] for e, r in zip(task.epochs, rates)]))


def iterations_report(task: IterationsTask) -> str:
    r = sc.iterations_result(task.samples, task.batch_size, task.epochs, task.drop_last)
    how = f"floor({task.samples} / {task.batch_size})" if task.drop_last else f"ceil({task.samples} / {task.batch_size})"
    return "\n".join([f"{task.samples} samples, batch size {task.batch_size}, {task.epochs} epoch(s)"
                      + (", last partial batch dropped" if task.drop_last else ""),
                      f"{INDENT}{'updates per epoch':<22} = {how} = {r['per_epoch']}",
                      f"{INDENT}{'last batch':<22} = {r['last_batch']} samples",
                      f"{INDENT}{'updates in all':<22} = {r['per_epoch']} * {task.epochs} = {r['total']}"])


def initializer_report(task: InitializerTask) -> str:
    r = sc.initializer_result(task.name, task.fan_in, task.fan_out)
    init = sc.INITIALIZERS[task.name]
    fan = f"(fan_in + fan_out) / 2 = {fmt((task.fan_in + task.fan_out) / 2)}" if init.fan == "avg" else f"fan_in = {task.fan_in}"
    lines = [f"Initializer {task.name}: variance = {fmt(init.scale)} / fan, fan = {fan}",
             f"{INDENT}{'variance':<22} = {fmt(r['variance'])}", f"{INDENT}{'std':<22} = {fmt(r['std'])}"]
    if init.uniform:
        lines.append(f"{INDENT}{'limit = sqrt(3 var)':<22} = {fmt(r['limit'])}   (uniform on [-limit, limit])")
    else:
        lines.append(f"{INDENT}{'Keras truncated std':<22} = {fmt(r['truncated_std'])}   (std / 0.8796..., cut at 2 std)")
    return "\n".join(lines)


def render(task: Task) -> str:
    """Return the worked table of any task."""
    if isinstance(task, NetworkTask):
        return network_report(task)
    if isinstance(task, OptimizerTask):
        return optimizer_report(task)
    if isinstance(task, ActivationTask):
        return activation_report(task)
    if isinstance(task, ScheduleTask):
        return schedule_report(task)
    if isinstance(task, IterationsTask):
        return iterations_report(task)
    if isinstance(task, InitializerTask):
        return initializer_report(task)
    return keras_report(task)
