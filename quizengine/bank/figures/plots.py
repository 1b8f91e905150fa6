"""Plots drawn with matplotlib's SVG backend: an activation's curve, an optimizer's path over contours.

matplotlib is imported on the first drawing, never at import time: a page without a plot never
loads it. Text stays text (``svg.fonttype: none``) and ids are derived from a salt per figure
(``svg.hashsalt``), so the same figure is the same SVG on every run and two figures on a page never
share an id. rcParams are global, so drawings take turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...calc.activations import ACTIVATIONS
from .canvas import Canvas, contour_paths
from .network import num

_LOCK = threading.Lock()
RC = {"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
      "figure.dpi": 72, "axes.unicode_minus": True}
INK, MARK, PATH = "#1f5fbf", "#b3261e", "#b3261e"


@dataclass(frozen=True)
class ActivationDrawing:
    name: str
    alpha: float
    z: tuple[float, ...]  # the marked points
    lo: float
    hi: float

    def curve(self, z: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.name].value(z, self.alpha)

    def label(self) -> str:
        a = f", \u03b1 = {num(self.alpha)}" if self.name in ("leaky_relu", "elu") else ""
        return f"{self.name}(z){a}"

    def alt(self) -> str:
        points = ", ".join(f"z = {num(z)}" for z in self.z)
        return (f"Plot of {self.label()} for z from {num(self.lo)} to {num(self.hi)}, "
                f"with {'the point' if len(self.z) == 1 else 'the points'} {points} marked on the curve.")

    def details(self) -> list[str]:
        return [f"marked point at z = {num(z)}" for z in self.z]


@dataclass(frozen=True)
class TrajectoryDrawing:
    A: np.ndarray  # (2, 2)
    b: np.ndarray  # (2,)
    path: np.ndarray  # (steps + 1, 2): w0, w1, ...
    optimizer: str

    def minimum(self) -> np.ndarray | None:
        try:
            w = np.linalg.solve(self.A, self.b)
        except np.linalg.LinAlgError:
            return None
        return w if np.all(np.isfinite(w)) and np.all(np.linalg.eigvalsh((self.A + self.A.T) / 2) > 0) else None

    def alt(self) -> str:
        return (f"Contour plot of f(w) = \u00bd w\u1d40Aw \u2212 b\u1d40w with A = {_vec(self.A)} and "
                f"b = {_vec(self.b)}, and the path of {self.optimizer} from w0 = {_vec(self.path[0])} "
                f"over {len(self.path) - 1} steps.")

    def details(self) -> list[str]:
        lines = [f"w{k} = {_vec(w)}" for k, w in enumerate(self.path)]
        m = self.minimum()
        if m is not None:
            lines.append(f"minimum w* = {_vec(m)}")
        return lines


def _vec(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.ndim == 1:
        return "(" + ", ".join(num(x) for x in a) + ")"
    return "[" + "; ".join(", ".join(num(x) for x in row) for row in a) + "]"


def _ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick positions covering [lo, hi]: a step of 1, 2, 2.5 or 5 times a power of ten."""
    raw = (hi - lo) / (most - 1) if hi > lo else 1.0
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    return [float(round(t, 10)) or 0.0 for t in np.arange(first, hi + 1e-9 * step, step)]


_CANVASES: dict[str, Canvas] = {}


def _plot(kind: str, salt: str, draw: Callable[[Canvas], None]) -> str:
    """Draw on the kind's reused canvas, under the figures' rcParams and this figure's id salt."""
    import matplotlib

    with _LOCK, matplotlib.rc_context({**RC, "svg.hashsalt": salt}):
        canvas = _CANVASES.get(kind)
        if canvas is None:
            canvas = _CANVASES[kind] = _MAKE[kind]()
        draw(canvas)
        return canvas.svg()


def _activation_canvas() -> Canvas:
    c = Canvas((4.8, 3.4), (0.15, 0.14, 0.8, 0.76))
    ax = c.ax
    ax.axhline(0, color="#9ca3af", linewidth=0.8)
    ax.axvline(0, color="#9ca3af", linewidth=0.8)
    c.curve = ax.plot([], [], color=INK, linewidth=2)[0]  # type: ignore[attr-defined]
    c.drops = ax.plot([], [], color=MARK, linewidth=1, linestyle="--")[0]  # type: ignore[attr-defined]
    c.dots = ax.plot([], [], "o", color=MARK, markersize=7)[0]  # type: ignore[attr-defined]
    return c


def activation_svg(d: ActivationDrawing, salt: str) -> str:
    z = np.linspace(d.lo, d.hi, 161)
    y = d.curve(z)
    zs = np.asarray(d.z, dtype=np.float64)
    ys = d.curve(zs)
    ylo, yhi = float(min(y.min(), 0.0)), float(max(y.max(), 0.0))
    ylo, yhi = np.floor(ylo * 2) / 2, np.ceil(yhi * 2) / 2  # tanh's -1..1, sigmoid's 0..1 in full
    pad = 0.08 * (yhi - ylo or 1.0)
    gap = np.full_like(zs, np.nan)  # the dashed drops are one line, broken between points

    def draw(c: Canvas) -> None:
        ax = c.ax
        c.curve.set_data(z, y)  # type: ignore[attr-defined]
        c.drops.set_data(np.column_stack([zs, zs, gap]).ravel(),  # type: ignore[attr-defined]
                         np.column_stack([np.full_like(zs, ylo - pad), ys, gap]).ravel())
        c.dots.set_data(zs, ys)  # type: ignore[attr-defined]
        ax.set_xlim(d.lo, d.hi)
        ax.set_ylim(ylo - pad, yhi + pad)
        for zi, yi in zip(zs, ys):
            c.note(f"z = {num(zi)}", (zi, yi), (6, -14 if yi > (ylo + yhi) / 2 else 8), MARK)
        c.ticks(_ticks(d.lo, d.hi), _ticks(ylo, yhi))
        c.labels("z")
        ax.set_title(d.label(), y=1.0)  # a y given: not moved by measuring what is above the axes (nothing)

    return _plot("activation", salt, draw)


def _trajectory_canvas() -> Canvas:
    c = Canvas((4.4, 4.4), (0.17, 0.14, 0.76, 0.76))  # square axes for a square data box: true ellipses
    from matplotlib.collections import PathCollection

    c.contours = c.ax.add_collection(  # type: ignore[attr-defined]  # the lines Axes.contour would draw
        PathCollection([], facecolors="none", edgecolors="#9ca3af", linewidths=0.8, zorder=1), autolim=False)
    c.path = c.ax.plot([], [], "-o", color=PATH, linewidth=1.6, markersize=5)[0]  # type: ignore[attr-defined]
    c.star = c.ax.plot([], [], "*", color=INK, markersize=11)[0]  # type: ignore[attr-defined]
    return c


def trajectory_svg(d: TrajectoryDrawing, salt: str) -> str:
    m = d.minimum()
    pts = d.path if m is None else np.vstack([d.path, m])
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    half = 0.6 * max(float(np.max(pts.max(axis=0) - pts.min(axis=0))), 0.5)  # a square box: true ellipses
    lo, hi = centre - half, centre + half
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 40), np.linspace(lo[1], hi[1], 40))
    w = np.stack([g1, g2], axis=-1)
    f = 0.5 * np.einsum("...i,ij,...j->...", w, d.A, w) - w @ d.b
    labelled = [k for k in range(len(d.path))
                if k in (0, len(d.path) - 1) or np.max(np.abs(d.path[k] - d.path[k - 1])) > 0.08 * half]

    def draw(c: Canvas) -> None:
        ax = c.ax
        c.contours.set_paths(contour_paths(g1, g2, f, 12))  # type: ignore[attr-defined]
        c.path.set_data(d.path[:, 0], d.path[:, 1])  # type: ignore[attr-defined]
        c.star.set_data([] if m is None else [m[0]], [] if m is None else [m[1]])  # type: ignore[attr-defined]
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        for k in labelled:
            text = f"w0 = {_vec(d.path[0])}" if k == 0 else f"w{k}"  # the start as the prompt gives it
            c.note(text, (d.path[k][0], d.path[k][1]), (7, -4), "#1a1a1a")
        if m is not None:
            c.note("w*", (m[0], m[1]), (5, -12), INK)
        c.ticks(_ticks(lo[0], hi[0], 5), _ticks(lo[1], hi[1], 5))
        c.labels("w\u2081", "w\u2082", y_at=41.6)  # clear of the widest tick labels ("−0.75")
        ax.set_title(d.optimizer, fontsize=9, y=1.0)

    return _plot("trajectory", salt, draw)


_MAKE = {"activation": _activation_canvas, "trajectory": _trajectory_canvas}
