"""An independent scalar reverse-mode autograd (micrograd style) used as a test oracle.

It shares no code with quizengine.calc: every operation's backward sits beside its
forward, gradients accumulate with ``+=``, and networks are built from scalars in plain
Python loops, so a convention slip in the NumPy calculator shows up as a disagreement.
"""

from __future__ import annotations

import math


class Value:
    def __init__(self, data: float, children: tuple["Value", ...] = ()):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = children

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = backward
        return out

    __radd__ = __add__

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = backward
        return out

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other if isinstance(other, Value) else Value(-other))

    def __rsub__(self, other):
        return Value(other) - self

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other.recip()

    def __rtruediv__(self, other):
        return Value(other) * self.recip()

    def recip(self):
        out = Value(1.0 / self.data, (self,))

        def backward():
            self.grad += -out.grad / (self.data * self.data)

        out._backward = backward
        return out

    def unary(self, f: float, df: float):
        """A node with value f and local derivative df."""
        out = Value(f, (self,))

        def backward():
            self.grad += df * out.grad

        out._backward = backward
        return out

    def exp(self):
        e = math.exp(self.data)
        return self.unary(e, e)

    def log(self):
        return self.unary(math.log(self.data), 1.0 / self.data)

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for c in v._prev:
                    visit(c)
                order.append(v)

        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def activate(name: str, zs: list[Value], alpha: float) -> list[Value]:
    """Apply an activation to one example's pre-activations."""
    if name == "softmax":
        m = max(z.data for z in zs)
        es = [(z - m).exp() for z in zs]
        total = es[0]
        for e in es[1:]:
            total = total + e
        return [e / total for e in es]
    out = []
    for z in zs:
        x = z.data
        if name == "linear":
            out.append(z * 1.0)
        elif name == "sigmoid":
            s = _sig(x)
            out.append(z.unary(s, s * (1 - s)))
        elif name == "tanh":
            t = math.tanh(x)
            out.append(z.unary(t, 1 - t * t))
        elif name == "relu":
            out.append(z.unary(max(x, 0.0), 1.0 if x > 0 else 0.0))
        elif name == "leaky_relu":
            out.append(z.unary(x if x > 0 else alpha * x, 1.0 if x > 0 else alpha))
        elif name == "elu":
            out.append(z.unary(x if x > 0 else alpha * math.expm1(x), 1.0 if x > 0 else alpha * math.exp(x)))
        elif name == "softplus":
            out.append(z.unary(math.log1p(math.exp(-abs(x))) + max(x, 0.0), _sig(x)))
        else:
            raise ValueError(name)
    return out


def loss_of(name: str, outs: list[list[Value]], ys: list[list[float]]) -> Value:
    """Return the loss over a batch of outputs (a list of examples)."""
    B, n = len(outs), len(outs[0])
    total = Value(0.0)
    for a_row, y_row in zip(outs, ys):
        for a, y in zip(a_row, y_row):
            if name == "mse":
                total = total + (a - y) * (a - y) * (1.0 / (B * n))
            elif name == "half_sse":
                total = total + (a - y) * (a - y) * (0.5 / B)
            elif name == "binary_crossentropy":
                total = total - (a.log() * y + (1.0 - a).log() * (1.0 - y)) * (1.0 / (B * n))
            elif name == "categorical_crossentropy":
                total = total - a.log() * (y / B)
            else:
                raise ValueError(name)
    return total


def _with_grad(node: Value, grad: float):
    """Make ``node`` pass ``grad`` on instead of the gradient it received (a given delta)."""
    backward = node._backward

    def replaced():
        node.grad = grad
        backward()

    return replaced


def network(spec: dict) -> dict:
    """Evaluate a network spec; return the same fields as the calculator.

    ``given`` may hold whole quantities ``layers[k].z``, ``layers[k].a``, ``layers[k].delta``
    or ``output``.
    """
    x = spec["input"]
    single = not isinstance(x[0], list)
    xs = [x] if single else x
    ys = [spec["target"]] if single else spec["target"]
    layers = spec["network"]["layers"]
    Ws = [[[Value(w) for w in row] for row in l["weights"]] for l in layers]
    bs = [[Value(b) for b in l["bias"]] for l in layers]
    defaults = {"leaky_relu": 0.01, "elu": 1.0}
    zs_all, as_all = [], []
    outs = []
    given = dict(spec.get("given", {}))
    if "output" in given:
        given[f"layers[{len(layers) - 1}].a"] = given.pop("output")

    def given_at(path: str, e: int) -> list[float] | None:
        if path not in given:
            return None
        return given[path] if single else given[path][e]

    def injected(nodes: list[Value], values: list[float] | None) -> list[Value]:
        # The value becomes the given one; the gradient flows as before (torch's x + (g - x).detach()).
        return nodes if values is None else [n + (v - n.data) for n, v in zip(nodes, values)]

    for e, ex in enumerate(xs):
        a = [Value(v) for v in ex]
        zs_ex, as_ex = [], []
        for k, (l, W, b) in enumerate(zip(layers, Ws, bs)):
            z = []
            for j in range(len(b)):
                acc = b[j] * 1.0
                for i in range(len(a)):
                    acc = acc + a[i] * W[i][j]
                z.append(acc)
            z = injected(z, given_at(f"layers[{k}].z", e))
            a = activate(l["activation"], z, l.get("alpha", defaults.get(l["activation"], 0.0)))
            a = injected(a, given_at(f"layers[{k}].a", e))
            delta = given_at(f"layers[{k}].delta", e)
            if delta is not None:
                for node, d in zip(z, delta):
                    node._backward = _with_grad(node, d)
            zs_ex.append(z)
            as_ex.append(a)
        zs_all.append(zs_ex)
        as_all.append(as_ex)
        outs.append(a)
    loss = loss_of(spec["network"]["loss"], outs, ys)
    loss.backward()

    def ex(rows):
        return rows[0] if single else rows

    result_layers = []
    lr = spec.get("update", {}).get("learning_rate")
    for k in range(len(layers)):
        d = {
            "z": ex([[z.data for z in zs_all[e][k]] for e in range(len(xs))]),
            "a": ex([[a.data for a in as_all[e][k]] for e in range(len(xs))]),
            "delta": ex([[z.grad for z in zs_all[e][k]] for e in range(len(xs))]),
            "dW": [[w.grad for w in row] for row in Ws[k]],
            "db": [b.grad for b in bs[k]],
        }
        if lr is not None:
            d["W_new"] = [[w.data - lr * w.grad for w in row] for row in Ws[k]]
            d["b_new"] = [b.data - lr * b.grad for b in bs[k]]
        result_layers.append(d)
    return {"output": ex([[a.data for a in o] for o in outs]), "loss": loss.data, "layers": result_layers}
