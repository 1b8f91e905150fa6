"""Compare the calculator with PyTorch autograd (float64) on hundreds of random cases.

Run: .venv/bin/pip install '.[torch]' && .venv/bin/python benchmarks/torch_agreement.py [N]
Prints the worst relative error per task; exits 1 if any field disagrees beyond 1e-7.
Given values (``given:``) are injected into torch's graph as ``t + (value - t.detach())`` (the value
changes, the gradient flows as before), a given delta through a hook on z, and a given optimizer
state into the optimizer's own buffers.
PyTorch is an independent reference here, never a dependency of the package or its tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "calc"))

import torch  # noqa: E402

from netgen import ACTIVATIONS, LOSSES, random_spec  # noqa: E402
from quizengine.calc import calculate  # noqa: E402

torch.set_default_dtype(torch.float64)
TOL = 1e-7


def t_act(name: str, z, alpha):
    F = torch.nn.functional
    return {
        "linear": lambda: z * 1.0, "sigmoid": lambda: torch.sigmoid(z), "tanh": lambda: torch.tanh(z),
        "relu": lambda: torch.relu(z), "leaky_relu": lambda: F.leaky_relu(z, alpha),
        "elu": lambda: F.elu(z, alpha), "softplus": lambda: F.softplus(z), "softmax": lambda: torch.softmax(z, -1),
    }[name]()


def t_loss(name: str, a, y):
    if name == "mse":
        return torch.mean((a - y) ** 2)
    if name == "half_sse":
        return 0.5 * torch.sum((y - a) ** 2) / a.shape[0]
    if name == "binary_crossentropy":
        return torch.mean(-(y * torch.log(a) + (1 - y) * torch.log(1 - a)))
    return -torch.sum(y * torch.log(a)) / a.shape[0]


def inject(t, value, single: bool):
    """Give ``t`` the value ``value``; the gradient flows through ``t`` as before."""
    if value is None:
        return t
    g = torch.tensor(value)
    return t + (g[None] if single else g) - t.detach()


def torch_network(spec: dict) -> dict:
    x = torch.tensor(spec["input"])
    single = x.dim() == 1
    a = x[None] if single else x
    y = torch.tensor(spec["target"])
    y = y[None] if single else y
    given = dict(spec.get("given", {}))
    last = len(spec["network"]["layers"]) - 1
    if "output" in given:
        given[f"layers[{last}].a"] = given.pop("output")
    Ws, bs, zs, acts = [], [], [], []
    for k, l in enumerate(spec["network"]["layers"]):
        W = torch.tensor(l["weights"], requires_grad=True)
        b = torch.tensor(l["bias"], requires_grad=True)
        z = inject(a @ W + b, given.get(f"layers[{k}].z"), single)
        z.retain_grad()
        if f"layers[{k}].delta" in given:  # the gradient leaving z is the given delta
            d = torch.tensor(given[f"layers[{k}].delta"])
            z.register_hook(lambda grad, d=(d[None] if single else d): d)
        alpha = l.get("alpha", {"leaky_relu": 0.01, "elu": 1.0}.get(l["activation"], 0.0))
        a = t_act(l["activation"], z, alpha)
        drop = l.get("dropout")
        if drop and drop.get("training", True):  # inverted dropout with the given mask
            a = a * torch.tensor(drop["mask"], dtype=torch.float64) / (1 - drop["rate"])
        a = inject(a, given.get(f"layers[{k}].a"), single)
        Ws.append(W), bs.append(b), zs.append(z), acts.append(a)
    loss = t_loss(spec["network"]["loss"], a, y)
    loss.backward()
    for k, z in enumerate(zs):  # retain_grad keeps the incoming gradient, not the hook's
        if f"layers[{k}].delta" in given:
            z.grad = torch.tensor(given[f"layers[{k}].delta"])[None] if single else torch.tensor(given[f"layers[{k}].delta"])
    ex = (lambda t: t[0]) if single else (lambda t: t)
    update = spec.get("update", {})
    layers = []
    for W, b, z, a_ in zip(Ws, bs, zs, acts):
        layers.append({"z": ex(z).tolist(), "a": ex(a_).tolist(), "delta": ex(z.grad).tolist(),
                       "dW": W.grad.tolist(), "db": b.grad.tolist()})
    if update:  # one step of torch's SGD, weight decay on the weights only
        o = torch.optim.SGD([{"params": Ws, "weight_decay": update.get("weight_decay", 0.0)},
                             {"params": bs, "weight_decay": 0.0}], lr=update["learning_rate"])
        o.step()
        for d, W, b in zip(layers, Ws, bs):
            d["W_new"], d["b_new"] = W.tolist(), b.tolist()
    return {"output": ex(a).tolist(), "loss": loss.item(), "layers": layers}


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12), initial=0.0))


def check_networks(rng, n: int) -> float:
    worst = 0.0
    for k in range(n):
        act, loss = ACTIVATIONS[k % len(ACTIVATIONS)], LOSSES[(k // len(ACTIVATIONS)) % len(LOSSES)]
        sizes = tuple(int(s) for s in rng.integers(1, 9, int(rng.integers(2, 5))))
        if loss.endswith("crossentropy") and sizes[-1] < 2:  # softmax over one unit is exactly 1
            sizes = sizes[:-1] + (2,)
        spec = random_spec(rng, act, loss, None if k % 2 else int(rng.integers(1, 33)), sizes=sizes)
        ours, ref = calculate(spec), torch_network(spec)
        worst = max(worst, rel(ours["loss"], ref["loss"]), rel(ours["output"], ref["output"]))
        for lo, lr in zip(ours["layers"], ref["layers"]):
            for key in lr:
                worst = max(worst, rel(lo[key], lr[key]))
    return worst


def check_given(rng, n: int) -> float:
    """Networks with a wrong z, a or delta given for one layer, against torch with the value injected."""
    worst = 0.0
    for k in range(n):
        act, loss = ACTIVATIONS[k % len(ACTIVATIONS)], LOSSES[(k // len(ACTIVATIONS)) % len(LOSSES)]
        sizes = tuple(int(s) for s in rng.integers(2, 7, int(rng.integers(3, 5))))
        spec = random_spec(rng, act, loss, None if k % 2 else int(rng.integers(1, 9)), sizes=sizes)
        true = calculate(spec)
        layer = int(rng.integers(0, len(sizes) - 1))
        key = ("z", "a", "delta")[k % 3]
        value = np.asarray(true["layers"][layer][key]) * rng.uniform(0.8, 1.2, np.shape(true["layers"][layer][key]))
        if key == "a" and (loss.endswith("crossentropy") or act == "softmax"):
            value = np.clip(value, 0.05, 0.95)  # keep a cross-entropy finite
        spec["given"] = {f"layers[{layer}].{key}": value.tolist()}
        ours, ref = calculate(spec), torch_network(spec)
        worst = max(worst, rel(ours["loss"], ref["loss"]), rel(ours["output"], ref["output"]))
        for lo, lr in zip(ours["layers"], ref["layers"]):
            for field in lr:
                worst = max(worst, rel(lo[field], lr[field]))
    return worst


def check_dropout_and_decay(rng, n: int) -> float:
    """Networks with inverted dropout (a given mask) on hidden layers and weight decay in the update."""
    worst = 0.0
    for k in range(n):
        act, loss = ACTIVATIONS[k % len(ACTIVATIONS)], LOSSES[(k // len(ACTIVATIONS)) % len(LOSSES)]
        sizes = tuple(int(s) for s in rng.integers(2, 7, int(rng.integers(3, 5))))
        batch = None if k % 2 else int(rng.integers(1, 9))
        spec = random_spec(rng, act, loss, batch, sizes=sizes)
        spec["update"]["weight_decay"] = float(rng.choice([0.0, 0.01, 0.5]))
        for layer, n_out in zip(spec["network"]["layers"][:-1], sizes[1:-1]):
            shape = (n_out,) if batch is None or k % 4 == 1 else (batch, n_out)
            layer["dropout"] = {"rate": float(rng.choice([0.2, 0.5])), "mask": rng.integers(0, 2, shape).tolist()}
            if k % 5 == 0:
                layer["dropout"] = {"rate": 0.5, "training": False}
        ours, ref = calculate(spec), torch_network(spec)
        worst = max(worst, rel(ours["loss"], ref["loss"]), rel(ours["output"], ref["output"]))
        for lo, lr in zip(ours["layers"], ref["layers"]):
            for field in lr:
                worst = max(worst, rel(lo[field], lr[field]))
    return worst


def check_schedules(rng, n: int) -> float:
    """StepLR, ExponentialLR and CosineAnnealingLR stepped epoch by epoch."""
    S = torch.optim.lr_scheduler
    worst = 0.0
    for k in range(n):
        lr = float(rng.uniform(0.01, 1.0))
        name = ("step_decay", "exponential_decay", "cosine_annealing")[k % 3]
        o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
        if name == "step_decay":
            cfg = {"step_size": int(rng.integers(1, 10)), "gamma": float(rng.uniform(0.1, 0.9))}
            sched = S.StepLR(o, **cfg)
        elif name == "exponential_decay":
            cfg = {"decay_rate": float(rng.uniform(0.5, 0.99))}
            sched = S.ExponentialLR(o, gamma=cfg["decay_rate"])
        else:
            cfg = {"T_max": int(rng.integers(1, 20)), "eta_min": float(rng.choice([0.0, lr / 10]))}
            sched = S.CosineAnnealingLR(o, **cfg)
        epochs = list(range(int(rng.integers(1, 40))))
        theirs = []
        for _ in epochs:
            theirs.append(sched.get_last_lr()[0])
            o.step()
            sched.step()
        ours = calculate({"schedule": {"name": name, "learning_rate": lr, **cfg}, "epochs": epochs})["learning_rates"]
        # torch's cosine is recursive: near eta_min = 0 compare to the scale of lr, not to ~0
        worst = max(worst, max(abs(a - b) / max(abs(a), abs(b), 1e-6 * lr) for a, b in zip(ours, theirs)))
    return worst


def check_initializers(rng, n: int) -> tuple[float, float]:
    """Draw from torch.nn.init and compare the largest |w| with our limit and the sample std with ours.

    Returns (worst |max|w| / limit - 1| for uniform, worst relative std error): statistical, so
    judged at 2 %; a sample beyond the limit counts as a disagreement of its own.
    """
    I = torch.nn.init
    draws = {"glorot_uniform": lambda t: I.xavier_uniform_(t), "glorot_normal": lambda t: I.xavier_normal_(t),
             "he_uniform": lambda t: I.kaiming_uniform_(t, nonlinearity="relu"),
             "he_normal": lambda t: I.kaiming_normal_(t, nonlinearity="relu"),
             "lecun_uniform": lambda t: I.kaiming_uniform_(t, nonlinearity="linear"),
             "lecun_normal": lambda t: I.kaiming_normal_(t, nonlinearity="linear")}
    torch.manual_seed(2026)
    worst_limit = worst_std = 0.0
    for k in range(max(n // 10, 6)):
        name = list(draws)[k % 6]
        fan_in, fan_out = int(rng.integers(1, 65)), int(rng.integers(1, 65))
        ours = calculate({"initializer": {"name": name, "fan_in": fan_in, "fan_out": fan_out}})
        w = torch.cat([draws[name](torch.empty(fan_out, fan_in)).reshape(-1) for _ in range(40000 // (fan_in * fan_out) + 1)])
        worst_std = max(worst_std, abs(float(w.std()) / ours["std"] - 1))
        if "limit" in ours:
            top = float(w.abs().max())
            worst_limit = max(worst_limit, abs(top / ours["limit"] - 1) if top <= ours["limit"] * (1 + 1e-12) else 1.0)
    return worst_limit, worst_std


def check_activations(rng, n: int) -> float:
    worst = 0.0
    for k in range(n):
        name = ACTIVATIONS[k % len(ACTIVATIONS)]
        alpha = float(rng.choice([0.01, 0.1, 0.5, 1.0, 2.0]))
        z = rng.uniform(-6, 6, int(rng.integers(1, 8))).round(4)
        spec = {"activation": {"name": name, **({"alpha": alpha} if name in ("leaky_relu", "elu") else {})},
                "z": z.tolist()}
        ours = calculate(spec)
        zt = torch.tensor(z, requires_grad=True)
        if name == "softmax":
            jac = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, -1), zt)
            value, deriv = torch.softmax(zt, -1), jac
        else:
            value = t_act(name, zt, alpha)
            value.sum().backward()
            deriv = zt.grad
        worst = max(worst, rel(ours["value"], value.tolist()), rel(ours["derivative"], deriv.tolist()))
    return worst


TORCH_STATE = {"sgd": ("momentum_buffer", None), "rmsprop": ("square_avg", None), "adagrad": ("sum", None),
               "adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq")}


def torch_optimizer(name: str, cfg: dict, w0, grads, given: dict | None = None):
    w = torch.tensor(w0, requires_grad=True)
    lr = cfg["learning_rate"]
    wd = cfg.get("weight_decay", 0.0)
    if name == "sgd":
        o = torch.optim.SGD([w], lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
                            weight_decay=wd)
    elif name == "rmsprop":
        o = torch.optim.RMSprop([w], lr=lr, alpha=cfg["rho"], eps=1e-7, weight_decay=wd)
    elif name == "adagrad":
        o = torch.optim.Adagrad([w], lr=lr, eps=1e-7, weight_decay=wd)
    elif name == "adamw":
        o = torch.optim.AdamW([w], lr=lr, betas=(cfg["beta_1"], cfg["beta_2"]), eps=1e-7, weight_decay=wd)
    else:
        o = torch.optim.Adam([w], lr=lr, betas=(cfg["beta_1"], cfg["beta_2"]), eps=1e-7, weight_decay=wd)
    out = []
    for k, g in enumerate(grads):
        w.grad = torch.tensor(g)
        o.step()
        if given and k == given["step"]:  # the state after this step, put in torch's own buffers
            with torch.no_grad():
                w.copy_(torch.tensor(given["params"]))
            first, second = TORCH_STATE[name]
            v = torch.tensor(given["velocity"])
            # torch's SGD keeps buf with w <- w - lr*buf; the calculator's (Keras) velocity is -lr*buf.
            o.state[w][first].copy_(-v / lr if name == "sgd" else v)
            if second:
                o.state[w][second].copy_(torch.tensor(given["second_moment"]))
        out.append(w.detach().clone().tolist())
    return out


def check_optimizers(rng, n: int) -> float:
    worst = 0.0
    names = ["sgd", "rmsprop", "adagrad", "adam", "adamw"]
    for k in range(n):
        name = names[k % 5]
        cfg = {"learning_rate": float(rng.uniform(0.001, 0.3)), "momentum": float(rng.choice([0.0, 0.5, 0.9])),
               "nesterov": bool(rng.integers(2)), "rho": float(rng.uniform(0.5, 0.99)),
               "beta_1": float(rng.uniform(0.5, 0.95)), "beta_2": float(rng.uniform(0.9, 0.9999)),
               "weight_decay": float(rng.choice([0.0, 0.01, 0.1, 0.5]))}  # coupled L2; decoupled for adamw
        shape = [(), (3,), (2, 3)][k % 3]
        w0 = rng.uniform(-2, 2, shape)
        grads = rng.uniform(-3, 3, (int(rng.integers(1, 8)),) + shape)
        keys = {"sgd": ("momentum", "nesterov"), "rmsprop": ("rho",), "adagrad": (), "adam": ("beta_1", "beta_2"),
                "adamw": ("beta_1", "beta_2")}[name] + ("weight_decay",)
        spec = {"optimizer": {"name": name, "learning_rate": cfg["learning_rate"], **{kk: cfg[kk] for kk in keys}},
                "params": w0.tolist(), "gradients": grads.tolist()}
        ours = [s["params"] for s in calculate(spec)["steps"]]
        worst = max(worst, rel(ours, torch_optimizer(name, cfg, w0.tolist(), grads.tolist())))
        if name == "sgd" and cfg["momentum"] == 0:
            continue  # torch keeps no buffer without momentum
        # The same run with a changed state after step k (params and moments), carried on from there.
        k = int(rng.integers(0, len(grads)))
        true = calculate(spec)["steps"][k]
        given = {"step": k}
        for field in ("params", "velocity", "second_moment"):
            if field in true:
                scale = rng.uniform(0.5, 1.5, shape) if field != "params" else 1.0
                given[field] = (np.asarray(true[field]) * scale + (rng.uniform(-0.3, 0.3, shape) if field == "params" else 0)).tolist()
        spec["given"] = {f"steps[{k}].{f}": v for f, v in given.items() if f != "step"}
        ours = [s["params"] for s in calculate(spec)["steps"]]
        worst = max(worst, rel(ours, torch_optimizer(name, cfg, w0.tolist(), grads.tolist(), given)))
    return worst


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(2026)
    results = {"networks": check_networks(rng, n), "given values": check_given(rng, n),
               "dropout, L2": check_dropout_and_decay(rng, n), "activations": check_activations(rng, n),
               "optimizers": check_optimizers(rng, n), "lr schedules": check_schedules(rng, n)}
    print(f"PyTorch {torch.__version__}, {n} random cases per task, float64; worst relative error per field:")
    for task, worst in results.items():
        print(f"  {task:<14} {worst:.3e}  {'ok' if worst <= TOL else 'DISAGREES'}")
    limit, std = check_initializers(rng, n)
    print("torch.nn.init samples (statistical, judged at 2 %):")
    print(f"  {'uniform limit':<14} {limit:.3e}  {'ok' if limit <= 0.02 else 'DISAGREES'}   (|max |w| / limit - 1|)")
    print(f"  {'std':<14} {std:.3e}  {'ok' if std <= 0.02 else 'DISAGREES'}   (|sample std / std - 1|)")
    return 0 if all(w <= TOL for w in results.values()) and limit <= 0.02 and std <= 0.02 else 1


if __name__ == "__main__":
    raise SystemExit(main())
