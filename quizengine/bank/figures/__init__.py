"""Figures drawn from a variant's own numbers: a network diagram, an activation plot, an optimizer's path.

An item declares them in YAML (``figures:``, schema in bank/schema.py). Each is built in two steps:
``prepare`` reads the numbers from the variant (cheap, no drawing: validation runs it on every seed)
and gives the text alternative; ``draw`` makes the SVG (network diagrams by hand in network.py,
plots with matplotlib in plots.py), which svg.clean makes safe to inline under the CSP.
Built figures are kept per (item, version, seed) in a bounded in-process LRU.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...calc.spec import ActivationTask, NetworkTask, OptimizerTask, Task
from ..core import Variant, VariantError, calculate, parse_path, values_for
from ..loader import BankItem, Problem
from ..params import ParamError, substitute
from ..schema import ActivationFigure, NetworkFigure, TrajectoryFigure
from ..types import item_type
from ..variant import make_variant
from . import drawer, network, plots
from .svg import clean

CACHE_SIZE = 256  # variants' figures kept per process (a figure is 5-40 kB of SVG)
DRAW_SEEDS = (0,)  # validation draws this sample of seeds; it reads every seed's numbers
_CACHE: OrderedDict[tuple[str, str, int, str | None], list["Figure"]] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Figure:
    """One drawn figure: its SVG (safe to inline) and its text alternative, from the same numbers."""

    id: str  # unique on a page: fig-ITEM-SEED-K
    kind: str
    when: str  # "always" or "after_submission"
    caption: str | None
    alt: str  # one sentence: what the figure is
    details: tuple[str, ...]  # every number it shows, one line each ("edge from x1 to h2, weight −0.35")
    svg: str

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "when": self.when, "caption": self.caption, "alt": self.alt,
                "details": list(self.details), "svg": self.svg}


# ---------------------------------------------------------------- reading the numbers

def _fail(k: int, message: str, *key: str) -> VariantError:
    return VariantError(("figures", k, *key), f"figure {k + 1}: {message}")


def _network(k: int, task: Task | None) -> network.NetworkDrawing:
    if not isinstance(task, NetworkTask):
        raise _fail(k, "a network diagram takes its numbers from a 'calc' with a 'network'", "kind")
    layers = task.network.layers
    sizes = [layers[0].weights.shape[0]] + [layer.weights.shape[1] for layer in layers]
    if max(sizes) > network.MAX_UNITS or len(layers) > 4:
        raise _fail(k, f"a network of {'-'.join(map(str, sizes))} units is too large to label "
                    f"(at most {network.MAX_UNITS} units a layer and 4 layers)", "kind")
    x = np.asarray(task.x, dtype=np.float64)
    return network.NetworkDrawing(tuple(layer.weights for layer in layers), tuple(layer.bias for layer in layers),
                                  tuple(layer.activation.name for layer in layers), x if x.ndim == 1 else None)


def _number(k: int, value: Any, key: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _fail(k, f"'{key}' must be a number, not {value!r}", key) from None
    if not np.isfinite(x):
        raise _fail(k, f"'{key}' is not finite ({x})", key)
    return x


def _activation(k: int, spec: ActivationFigure, task: Task | None, values: dict[str, Any]) -> plots.ActivationDrawing:
    calc = task if isinstance(task, ActivationTask) else None
    name = spec.name or (calc.name if calc else None)
    if name is None:
        raise _fail(k, "give the activation's 'name' (the item's calc is not an activation task)", "kind")
    if name == "softmax":
        raise _fail(k, "softmax is not a function of one z: it cannot be plotted as a curve", "name")
    try:
        alpha_v, z_v = substitute([spec.alpha, spec.z], values)
    except ParamError as e:
        raise _fail(k, str(e), "z") from None
    if alpha_v is None:
        same = calc is not None and calc.name == name
        alpha_v = calc.alpha if same else {"leaky_relu": 0.01, "elu": 1.0}.get(name, 0.0)
    if z_v is None:
        if calc is None:
            raise _fail(k, "give the point 'z' to mark (the item's calc is not an activation task)", "kind")
        z_v = np.asarray(calc.z, dtype=np.float64).ravel().tolist()
    zs = [_number(k, z, "z") for z in (z_v if isinstance(z_v, list) else [z_v])]
    if not 1 <= len(zs) <= 6:
        raise _fail(k, f"mark 1 to 6 points, not {len(zs)}", "z")
    lo, hi = spec.z_range or (min(-5.0, min(zs) - 1.0), max(5.0, max(zs) + 1.0))
    return plots.ActivationDrawing(name, _number(k, alpha_v, "alpha"), tuple(zs), float(lo), float(hi))


def _trajectory(k: int, spec: TrajectoryFigure, task: Task | None, result: dict | None,
                answer_path: Any) -> plots.TrajectoryDrawing:
    if not isinstance(task, OptimizerTask) or task.A is None:
        raise _fail(k, "a trajectory needs a 'calc' optimizer task with 'objective: {quadratic: ...}'", "kind")
    if task.params.shape != (2,):
        raise _fail(k, f"a trajectory is drawn in the plane: params must be 2 numbers, not shape "
                    f"{list(task.params.shape)}", "kind")
    steps = task.steps if spec.steps is None else min(spec.steps, task.steps)
    if spec.when == "always" and isinstance(answer_path, str):
        asked = _step_asked(answer_path)
        if asked is not None and asked <= steps:
            raise _fail(k, f"drawing {steps} steps shows the key ({answer_path}) or the point it needs before "
                        f"submission: set 'when: after_submission' or 'steps: {asked - 1}'", "kind")
    path = [task.params] + [np.asarray(s["params"], dtype=np.float64) for s in (result or {})["steps"][:steps]]
    c = task.config
    name = c.name if c.name != "sgd" or not c.momentum else (
        f"sgd, {'Nesterov ' if c.nesterov else ''}momentum {network.num(c.momentum)}")
    label = f"{name}, learning rate {network.num(c.learning_rate)}"
    return plots.TrajectoryDrawing(task.A, task.b, np.vstack(path), label)


def _step_asked(path: str) -> int | None:
    """The point w_k an answer path gives away when drawn: steps[k].params is w_(k+1); steps[k].gradient
    is taken at w_k, so drawing w_k does the first half of the work."""
    try:
        steps = parse_path(path)
    except KeyError:
        return None
    if len(steps) >= 3 and steps[0] == "steps" and isinstance(steps[1], int):
        return steps[1] if steps[2] == "gradient" else steps[1] + 1
    return None


def prepare(item: BankItem, values: dict[str, Any], task: Task | None, result: dict | None) -> list[Any]:
    """Each figure's numbers (a drawing, not yet drawn); VariantError names the figure at fault."""
    out: list[Any] = []
    for k, spec in enumerate(item.model.figures):
        if isinstance(spec, NetworkFigure):
            out.append(_network(k, task))
        elif isinstance(spec, ActivationFigure):
            out.append(_activation(k, spec, task, values))
        elif isinstance(spec, TrajectoryFigure):
            out.append(_trajectory(k, spec, task, result, getattr(item.model, "answer", None)))
        else:  # pragma: no cover - the schema's union is exhaustive
            raise TypeError(f"unknown figure {spec!r}")
    return out


# ---------------------------------------------------------------- drawing

def _dom_id(item_id: str, seed: int, k: int) -> str:
    return "fig-" + re.sub(r"[^A-Za-z0-9_-]", "-", item_id) + f"-{seed}-{k + 1}"


def draw(item: BankItem, seed: int, drawings: list[Any], when: str | None = None) -> list[Figure]:
    """Draw the figures (only those shown ``when``, "always" or "after_submission", if given)."""
    out = []
    for k, (spec, d) in enumerate(zip(item.model.figures, drawings)):
        if when is not None and spec.when != when:
            continue
        salt = f"{item.id}:{item.version}:{seed}:{k}"
        if isinstance(d, network.NetworkDrawing):
            svg = network.draw(d)
        else:  # a plot: by the server's drawing process when there is one (drawer.py)
            svg = drawer.svg(d, salt)
        out.append(Figure(_dom_id(item.id, seed, k), spec.kind, spec.when, spec.caption, d.alt(),
                          tuple(d.details()), clean(svg)))
    return out


def build(v: Variant, when: str | None = None) -> list[Figure]:
    """The variant's figures (only those shown ``when``, if given), drawn now (no cache)."""
    return draw(v.item, v.seed, prepare(v.item, v.values, v.task, v.result), when)


def figures_for(v: Variant, when: str | None = None) -> list[Figure]:
    """The variant's figures (only those shown ``when``, if given: a page before submission draws no
    plot it would not show), from the per-process cache when built before; [] for an item without."""
    if not v.model.figures:
        return []
    key = (v.item.id, v.item.version, v.seed, when)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    figs = build(v, when)
    with _LOCK:
        _CACHE[key] = figs
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return figs


def _numbers(item: BankItem, seed: int) -> tuple[dict[str, Any], Task | None, dict | None]:
    """A seed's values, task and result, without the rest of a variant when the item allows."""
    m = item.model
    if getattr(m, "calc", None) is not None and isinstance(getattr(m, "answer", None), str):
        values = values_for(item, seed)
        _, task, result, _ = calculate(item, seed, values)
        return values, task, result
    kind = item_type(m.type)
    if getattr(m, "calc", None) is not None and not kind.single_answer_path:  # a multi-part item: its variant
        # without the prompt (whose template names the item's rules have checked), built as make_variant builds it
        v = Variant(item=item, seed=seed, kind=kind, values=values_for(item, seed))
        v.spec, v.task, v.result, calculated = calculate(item, seed, v.values, False)
        kind.build(v, calculated)
        return v.values, v.task, v.result
    v = make_variant(item, seed)  # a type with its own way of calculating (several answers)
    return v.values, v.task, v.result


def check(item: BankItem, seeds: int, later: list | None = None) -> list[Problem]:
    """Every figure's numbers on every seed, and the drawings of a few seeds; the first failure per item.
    With ``later``, the drawings of those seeds are not drawn here but appended to it as (seed, drawings),
    for the caller to draw (``draw``): validate's workers leave them to the main process, which is
    otherwise idle while they work, so that matplotlib is imported there once (no drawing makes a Problem)."""
    if not item.model.figures:
        return []
    for seed in range(seeds):
        try:
            drawings = prepare(item, *_numbers(item, seed))
            if seed in DRAW_SEEDS and later is not None:
                later.append((seed, drawings))
            elif seed in DRAW_SEEDS:
                draw(item, seed, drawings)
        except VariantError as e:
            return [item.problem(e.key, f"seed {seed}: {e}")]
    return []


__all__ = ["CACHE_SIZE", "Figure", "build", "check", "draw", "figures_for", "prepare"]
