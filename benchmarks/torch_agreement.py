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
        a = inject(t_act(l["activation"], z, alpha), given.get(f"layers[{k}].a"), single)
        Ws.append(W), bs.append(b), zs.append(z), acts.append(a)
    loss = t_loss(spec["network"]["loss"], a, y)
    loss.backward()
    for k, z in enumerate(zs):  # retain_grad keeps the incoming gradient, not the hook's
        if f"layers[{k}].delta" in given:
            z.grad = torch.tensor(given[f"layers[{k}].delta"])[None] if single else torch.tensor(given[f"layers[{k}].delta"])
    ex = (lambda t: t[0]) if single else (lambda t: t)
    lr = spec.get("update", {}).get("learning_rate")
    layers = []
    for W, b, z, a_ in zip(Ws, bs, zs, acts):
        d = {"z": ex(z).tolist(), "a": ex(a_).tolist(), "delta": ex(z.grad).tolist(),
             "dW": W.grad.tolist(), "db": b.grad.tolist()}
        if lr is not None:
            d["W_new"] = (W - lr * W.grad).tolist()
            d["b_new"] = (b - lr * b.grad).tolist()
        layers.append(d)
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
               "adam": ("exp_avg", "exp_avg_sq")}


def torch_optimizer(name: str, cfg: dict, w0, grads, given: dict | None = None):
    w = torch.tensor(w0, requires_grad=True)
    lr = cfg["learning_rate"]
    if name == "sgd":
        o = torch.optim.SGD([w], lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0)
    elif name == "rmsprop":
        o = torch.optim.RMSprop([w], lr=lr, alpha=cfg["rho"], eps=1e-7)
    elif name == "adagrad":
        o = torch.optim.Adagrad([w], lr=lr, eps=1e-7)
    else:
        o = torch.optim.Adam([w], lr=lr, betas=(cfg["beta_1"], cfg["beta_2"]), eps=1e-7)
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
    names = ["sgd", "rmsprop", "adagrad", "adam"]
    for k in range(n):
        name = names[k % 4]
        cfg = {"learning_rate": float(rng.uniform(0.001, 0.3)), "momentum": float(rng.choice([0.0, 0.5, 0.9])),
               "nesterov": bool(rng.integers(2)), "rho": float(rng.uniform(0.5, 0.99)),
               "beta_1": float(rng.uniform(0.5, 0.95)), "beta_2": float(rng.uniform(0.9, 0.9999))}
        shape = [(), (3,), (2, 3)][k % 3]
        w0 = rng.uniform(-2, 2, shape)
        grads = rng.uniform(-3, 3, (int(rng.integers(1, 8)),) + shape)
        keys = {"sgd": ("momentum", "nesterov"), "rmsprop": ("rho",), "adagrad": (), "adam": ("beta_1", "beta_2")}[name]
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
               "activations": check_activations(rng, n),
               "optimizers": check_optimizers(rng, n)}
    print(f"PyTorch {torch.__version__}, {n} random cases per task, float64; worst relative error per field:")
    for task, worst in results.items():
        print(f"  {task:<12} {worst:.3e}  {'ok' if worst <= TOL else 'DISAGREES'}")
    return 0 if all(w <= TOL for w in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
