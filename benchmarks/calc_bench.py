"""Microseconds per forward+backward and per optimizer step, and the ratio to PyTorch autograd.

Run: make bench   (or .venv/bin/python benchmarks/calc_bench.py)
PyTorch is optional ('.[torch]'); when importable, the same networks run through autograd
(float64, CPU, one thread) in this process and the ratio torch/ours is printed.
Targets: ours >= 3x faster than autograd at these sizes; < 50 us for a single example
through a 3-layer network.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quizengine.calc import optimizers as opt  # noqa: E402
from quizengine.calc.network import make_layer, make_network, run  # noqa: E402

try:
    import torch
except ImportError:  # optional
    torch = None

CASES = [  # (label, layer sizes, activations, loss, batch or None)
    ("2 layers 2-2-2 sigmoid, half_sse", (2, 2, 2), ("sigmoid", "sigmoid"), "half_sse", None),
    ("3 layers 4-8-8-3 relu/softmax, cce", (4, 8, 8, 3), ("relu", "tanh", "softmax"), "categorical_crossentropy", None),
    ("3 layers 8-8-8-8 sigmoid, mse", (8, 8, 8, 8), ("sigmoid", "sigmoid", "sigmoid"), "mse", None),
    ("3 layers 4-8-8-3 relu/softmax, cce, batch 32", (4, 8, 8, 3), ("relu", "tanh", "softmax"), "categorical_crossentropy", 32),
    ("3 layers 8-8-8-8 sigmoid, mse, batch 32", (8, 8, 8, 8), ("sigmoid", "sigmoid", "sigmoid"), "mse", 32),
]


def best_us(fn, number: int) -> float:
    """Return the best of 5 repeats, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def build(rng, sizes, acts, loss, batch):
    layers = [make_layer(rng.uniform(-1, 1, (i, o)), rng.uniform(-0.5, 0.5, o), a)
              for i, o, a in zip(sizes[:-1], sizes[1:], acts)]
    net = make_network(layers, loss)
    shape_x = (sizes[0],) if batch is None else (batch, sizes[0])
    shape_y = (sizes[-1],) if batch is None else (batch, sizes[-1])
    y = np.zeros(shape_y)
    y[..., 0] = 1.0
    return net, rng.uniform(0, 1, shape_x), y


def torch_fn(net, x, y, loss_name):
    F = torch.nn.functional
    Ws = [torch.tensor(l.weights, requires_grad=True) for l in net.layers]
    bs = [torch.tensor(l.bias, requires_grad=True) for l in net.layers]
    xt, yt = torch.tensor(x), torch.tensor(y)
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "softmax": lambda z: torch.softmax(z, -1)}

    def step():
        a = xt if xt.dim() == 2 else xt[None]
        zs = []
        for W, b, l in zip(Ws, bs, net.layers):
            z = a @ W + b
            zs.append(z)
            a = acts[l.activation.name](z)
        if loss_name == "mse":
            L = F.mse_loss(a, yt if yt.dim() == 2 else yt[None])
        elif loss_name == "half_sse":
            L = 0.5 * ((a - yt) ** 2).sum() / a.shape[0]
        else:
            L = -(yt * torch.log(a)).sum() / a.shape[0]
        return torch.autograd.grad(L, Ws + bs + zs)

    return step


def main() -> None:
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.set_num_threads(1)
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__} (1 thread, float64)" if torch else ", torch not installed"))
    print(f"{'forward+backward':<46} {'ours us':>9} {'torch us':>9} {'ratio':>7}")
    for label, sizes, acts, loss, batch in CASES:
        net, x, y = build(rng, sizes, acts, loss, batch)
        ours = best_us(lambda: run(net, x, y), 2000)
        line = f"{label:<46} {ours:>9.1f}"
        if torch is not None:
            theirs = best_us(torch_fn(net, x, y, loss), 500)
            line += f" {theirs:>9.1f} {theirs / ours:>6.1f}x"
        print(line)
    print(f"\n{'optimizer step (vector of 8 params, 100 steps)':<46} {'ours us':>9} {'torch us':>9} {'ratio':>7}")
    for name in ("sgd", "rmsprop", "adagrad", "adam"):
        cfg = opt.OptimizerConfig(name=name, learning_rate=0.01, momentum=0.9 if name == "sgd" else 0.0)
        grads = list(rng.uniform(-1, 1, (100, 8)))
        w0 = rng.uniform(-1, 1, 8)
        ours = best_us(lambda: opt.run(cfg, w0, opt.sequence_gradients(grads), 100), 50) / 100
        line = f"{name:<46} {ours:>9.2f}"
        if torch is not None:
            def torch_run():
                w = torch.tensor(w0, requires_grad=True)
                o = {"sgd": lambda: torch.optim.SGD([w], lr=0.01, momentum=0.9),
                     "rmsprop": lambda: torch.optim.RMSprop([w], lr=0.01, alpha=0.9, eps=1e-7),
                     "adagrad": lambda: torch.optim.Adagrad([w], lr=0.01, eps=1e-7),
                     "adam": lambda: torch.optim.Adam([w], lr=0.01, eps=1e-7)}[name]()
                for g in grads:
                    w.grad = torch.from_numpy(g)
                    o.step()
            theirs = best_us(torch_run, 10) / 100
            line += f" {theirs:>9.2f} {theirs / ours:>6.1f}x"
        print(line)


if __name__ == "__main__":
    main()
