"""The network diagram, drawn as plain SVG: neurons by layer, every edge labelled with its weight.

Hand-built rather than with matplotlib: the drawing is circles, lines and labels at positions we
choose (a label a third of the way along its edge, so labels of crossing edges stay apart), it
takes well under a millisecond, and it is written with presentation attributes and a ``<title>``
per edge from the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from ..numfmt import fmt

MAX_UNITS = 8  # units in one layer that a diagram can label legibly
R = 19  # a neuron's radius
DX, DY, TOP, LEFT = 200, 84, 46, 92


def num(x: float) -> str:
    """A number as a figure shows it: up to 4 significant digits and a true minus sign."""
    return fmt(x, 4).replace("-", "\u2212")


@dataclass(frozen=True)
class NetworkDrawing:
    """What a diagram shows: ``weights[k]`` (n_in, n_out) and ``biases[k]`` (n_out,) of layer k."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activations: tuple[str, ...]
    inputs: np.ndarray | None  # one example's input values, or None for a batch (the prompt lists it)

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    def name(self, layer: int, unit: int) -> str:
        """A neuron's name: x1 for inputs, h1 (or h1.2 with several hidden layers), then ŷ1 for outputs."""
        hidden = len(self.weights) - 1
        if layer == 0:
            return f"x{unit + 1}"
        if layer == len(self.weights):
            return f"\u0177{unit + 1}" if self.sizes[-1] > 1 else "\u0177"
        return f"h{unit + 1}" if hidden == 1 else f"h{layer}.{unit + 1}"

    def alt(self) -> str:
        sizes = self.sizes
        hidden = ", ".join(f"a hidden layer of {n} {a} units" for n, a in zip(sizes[1:-1], self.activations))
        out = f"{sizes[-1]} {self.activations[-1]} output unit" + ("s" if sizes[-1] > 1 else "")
        return (f"Network diagram: {sizes[0]} inputs, " + (hidden + ", " if hidden else "") + out +
                "; each edge is labelled with its weight and each unit with its bias.")

    def details(self) -> list[str]:
        lines = []
        if self.inputs is not None:
            lines += [f"input {self.name(0, i)} = {num(x)}" for i, x in enumerate(self.inputs)]
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            for i in range(w.shape[0]):
                for j in range(w.shape[1]):
                    lines.append(f"edge from {self.name(k, i)} to {self.name(k + 1, j)}, weight {num(w[i, j])}")
            lines += [f"bias of {self.name(k + 1, j)}: {num(bj)}" for j, bj in enumerate(b)]
        return lines


def _y(n: int, rows: int, unit: int) -> float:
    return TOP + (rows - n) * DY / 2 + unit * DY


def _label(x: float, y: float, text: str, size: int = 12, anchor: str = "middle", weight: str | None = None) -> str:
    bold = f' font-weight="{weight}"' if weight else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{bold} '
            f'stroke="#ffffff" stroke-width="4" paint-order="stroke" fill="#1a1a1a">{escape(text)}</text>')


def draw(d: NetworkDrawing) -> str:
    """The diagram as an SVG document (presentation attributes only)."""
    sizes = d.sizes
    rows = max(sizes)
    width = LEFT + DX * (len(sizes) - 1) + 80
    height = TOP + rows * DY + 30
    pos = [[(LEFT + k * DX, _y(n, rows, j)) for j in range(n)] for k, n in enumerate(sizes)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f"<title>{escape(d.alt())}</title>"]
    for k, w in enumerate(d.weights):  # edges under the neurons
        n_out = w.shape[1]
        for i in range(w.shape[0]):
            (x1, y1) = pos[k][i]
            for j in range(n_out):
                (x2, y2) = pos[k + 1][j]
                what = f"edge from {d.name(k, i)} to {d.name(k + 1, j)}, weight {num(w[i, j])}"
                out.append(f'<line x1="{x1 + R}" y1="{y1:.1f}" x2="{x2 - R}" y2="{y2:.1f}" stroke="#6b7280" '
                           f'stroke-width="1.4"><title>{escape(what)}</title></line>')
        for i in range(w.shape[0]):  # labels after every edge of the layer, so no edge covers one
            (x1, y1) = pos[k][i]
            for j in range(n_out):
                (x2, y2) = pos[k + 1][j]
                t = 0.3 if n_out <= 2 else 0.22 + 0.22 * j / (n_out - 1)
                out.append(_label(x1 + R + t * (x2 - x1 - 2 * R), y1 + t * (y2 - y1) + 4, num(w[i, j]), 11))
    for k, column in enumerate(pos):
        for j, (x, y) in enumerate(column):
            fill = "#e8f0fe" if k == 0 else ("#fdecea" if k == len(pos) - 1 else "#e6f4ea")
            out.append(f'<circle cx="{x}" cy="{y:.1f}" r="{R}" fill="{fill}" stroke="#1a1a1a" stroke-width="1.2"/>')
            out.append(_label(x, y + 4, d.name(k, j), 12, weight="bold"))
            if k == 0 and d.inputs is not None:
                out.append(_label(x - R - 6, y + 4, num(d.inputs[j]), 12, "end"))
            elif k > 0:
                out.append(_label(x, y + R + 14, f"b = {num(d.biases[k - 1][j])}", 11))
        title = "input" if k == 0 else d.activations[k - 1]
        out.append(_label(LEFT + k * DX, 18, title, 12, weight="bold"))
    out.append("</svg>")
    return "".join(out)
