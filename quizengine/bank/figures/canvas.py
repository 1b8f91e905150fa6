"""The matplotlib figure a kind of plot is drawn on: made once per process, given new data per drawing.

A plot's first drawing used to take 40-50 ms of CPU, nearly all of it matplotlib's own bookkeeping
rather than drawing: making the Figure, Axes and artists, then laying out every tick label twice
(once to measure it, once to draw it) and measuring them again to place the axis labels and title.
Here everything is made once and reused; the ticks are one line of tick marks and one text per
label (matplotlib's Axis is hidden), with the labels matplotlib's own formatter writes; the axis
labels and the title sit at fixed places (the tick labels' height is the same in every variant,
and nothing is above the axes); annotations are texts offset in points. Only the text of the
labels and the data change between drawings. Callers hold plots._LOCK: matplotlib's state is shared.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


class Canvas:
    """A Figure with one Axes, its tick marks and a pool of reusable texts."""

    def __init__(self, size: tuple[float, float], box: tuple[float, float, float, float]) -> None:
        import matplotlib
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure
        from matplotlib.lines import TICKDOWN, TICKLEFT, Line2D
        from matplotlib.transforms import ScaledTranslation

        rc = matplotlib.rcParams
        self.fig = Figure(figsize=size, layout=None)
        FigureCanvasSVG(self.fig)
        self.ax = ax = self.fig.add_axes(box)
        ax.xaxis.set_visible(False)  # its ticks are drawn below, without measuring every label
        ax.yaxis.set_visible(False)
        self._points = lambda dx, dy: ScaledTranslation(dx / 72, dy / 72, self.fig.dpi_scale_trans)
        self.out = rc["xtick.major.size"] + rc["xtick.major.pad"]  # tick labels' distance from the axis, points
        self.marks = []
        for axis, marker, transform in (("x", TICKDOWN, ax.get_xaxis_transform()),
                                        ("y", TICKLEFT, ax.get_yaxis_transform())):
            line = Line2D([], [], transform=transform, marker=marker, linestyle="none", clip_on=False, zorder=1.5,
                          markersize=rc[f"{axis}tick.major.size"], markeredgewidth=rc[f"{axis}tick.major.width"],
                          color=rc[f"{axis}tick.color"])
            ax.add_artist(line)
            self.marks.append(line)
        self.texts: dict[str, list[Any]] = {}  # pools of texts by role, reused: hidden when a drawing needs fewer
        self.used: dict[str, int] = {}

    def text(self, role: str, s: str, x: float, y: float, transform: Any, **props: Any) -> Any:
        """The next text of ``role`` in this drawing, made on first use and reused after."""
        pool = self.texts.setdefault(role, [])
        k = self.used.get(role, 0)
        if k == len(pool):
            pool.append(self.ax.text(0, 0, "", **props))
        t = pool[k]
        self.used[role] = k + 1
        t.set_text(s)
        t.set_position((x, y))
        t.set_transform(transform)
        t.set_visible(True)
        return t

    def note(self, s: str, xy: tuple[float, float], offset: tuple[float, float], color: str) -> None:
        """A label offset from a data point by ``offset`` points (as ``annotate`` would put it);
        like ``annotate``, not drawn when the point is outside the axes."""
        (x0, x1), (y0, y1) = sorted(self.ax.get_xlim()), sorted(self.ax.get_ylim())
        if x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1:
            self.text("note", s, xy[0], xy[1], self.ax.transData + self._points(*offset)).set_color(color)

    def ticks(self, xticks: list[float], yticks: list[float]) -> None:
        """Tick marks and labels at these positions (after the limits are set): the labels are the ones
        matplotlib's ScalarFormatter writes (same decimals on every label, a true minus sign)."""
        ax = self.ax
        for axis, ticks, line in (("x", xticks, self.marks[0]), ("y", yticks, self.marks[1])):
            lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
            ticks = [t for t in ticks if lo - 1e-9 * (hi - lo) <= t <= hi + 1e-9 * (hi - lo)]
            fmt = (ax.xaxis if axis == "x" else ax.yaxis).get_major_formatter()
            labels = fmt.format_ticks(ticks)
            zeros = [0.0] * len(ticks)
            line.set_data((ticks, zeros) if axis == "x" else (zeros, ticks))
            for t, label in zip(ticks, labels):
                if axis == "x":
                    self.text("x", label, t, 0, ax.get_xaxis_transform() + self._points(0, -self.out),
                              ha="center", va="top")
                else:
                    self.text("y", label, 0, t, ax.get_yaxis_transform() + self._points(-self.out, 0),
                              ha="right", va="center_baseline")
            offset = fmt.get_offset()  # "1e−3" or "+1000" when the formatter factors one out
            if offset and axis == "x":
                self.text("offset", offset, 1, 0, ax.transAxes + self._points(0, -self.out - 14), ha="right", va="top")
            elif offset:
                self.text("offset", offset, 0, 1, ax.transAxes + self._points(0, 4), ha="left", va="bottom")

    def labels(self, x: str, y: str | None = None, y_at: float = 0.0) -> None:
        """The axis labels: x's 21 points below the axes (where matplotlib puts it under the tick labels),
        y's right edge ``y_at`` points left of the axes."""
        ax = self.ax
        self.text("label", x, 0.5, 0, ax.transAxes + self._points(0, -21), ha="center", va="top")
        if y is not None:
            self.text("label", y, 0, 0.5, ax.transAxes + self._points(-y_at, 0), ha="center", va="bottom",
                      rotation=90, rotation_mode="anchor")

    def svg(self) -> str:
        """The drawing as SVG; texts this drawing did not use are hidden, and the pools start over."""
        for role, pool in self.texts.items():
            for t in pool[self.used.get(role, 0):]:
                t.set_visible(False)
        self.used = {}
        buf = io.StringIO()
        self.fig.savefig(buf, format="svg", metadata=SVG_METADATA)
        return buf.getvalue()


def contour_paths(x: np.ndarray, y: np.ndarray, z: np.ndarray, n: int) -> list[Any]:
    """The paths ``Axes.contour(x, y, z, levels=n)`` draws, without building a ContourSet: the same
    levels (MaxNLocator(n + 1) over z's range, trimmed as ContourSet._autolev trims them) and the
    same contour generator (contourpy's mpl2014 with corner masking, matplotlib's defaults)."""
    import contourpy
    from matplotlib.path import Path
    from matplotlib.ticker import MaxNLocator

    zmin, zmax = float(z.min()), float(z.max())
    lev = MaxNLocator(n + 1, min_n_ticks=1).tick_values(zmin, zmax)
    under, over = np.nonzero(lev < zmin)[0], np.nonzero(lev > zmax)[0]
    i0, i1 = (under[-1] if len(under) else 0), (over[0] + 1 if len(over) else len(lev))
    if i1 - i0 < 3:
        i0, i1 = 0, len(lev)
    gen = contourpy.contour_generator(x, y, z, name="mpl2014", corner_mask=True,
                                      line_type=contourpy.LineType.SeparateCode)
    out = []
    for level in lev[i0:i1]:
        points, codes = gen.lines(level)
        if points:
            out.append(Path(np.concatenate(points), np.concatenate(codes)))
    return out
