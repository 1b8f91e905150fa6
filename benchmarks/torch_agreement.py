"""Compare the calculator with PyTorch autograd (float64) on hundreds of random cases.

Run: .venv/bin/pip install '.[torch]' && .venv/bin/python benchmarks/torch_agreement.py [N]
Prints the worst relative error per task; exits 1 if any field disagrees beyond 1e-7.
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


def torch_network(spec: dict) -> dict:
    x = torch.tensor(spec["input"])
    single = x.dim() == 1
    a = x[None] if single else x
    y = torch.tensor(spec["target"])
    y = y[None] if single else y
    Ws, bs, zs, acts = [], [], [], []
    for l in spec["network"]["layers"]:
        W = torch.tensor(l["weights"], requires_grad=True)
        b = torch.tensor(l["bias"], requires_grad=True)
        z = a @ W + b
        z.retain_grad()
        alpha = l.get("alpha", {"leaky_relu": 0.01, "elu": 1.0}.get(l["activation"], 0.0))
        a = t_act(l["activation"], z, alpha)
        Ws.append(W), bs.append(b), zs.append(z), acts.append(a)
    loss = t_loss(spec["network"]["loss"], a, y)
    loss.backward()
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


def torch_optimizer(name: str, cfg: dict, w0, grads):
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
    for g in grads:
        w.grad = torch.tensor(g)
        o.step()
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
    return worst


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(2026)
    results = {"networks": check_networks(rng, n), "activations": check_activations(rng, n),
               "optimizers": check_optimizers(rng, n)}
    print(f"PyTorch {torch.__version__}, {n} random cases per task, float64; worst relative error per field:")
    for task, worst in results.items():
        print(f"  {task:<12} {worst:.3e}  {'ok' if worst <= TOL else 'DISAGREES'}")
    return 0 if all(w <= TOL for w in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
