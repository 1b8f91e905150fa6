"""Given values: a result path set to a given number, and everything downstream computed from it.

A spec's ``given: {PATH: value}`` names quantities by their path in the result
(``layers[0].a``, ``output``, ``steps[1].velocity``), optionally down to one entry
(``layers[0].a[1]``, ``layers[1].dW[0][1]``). This is how a student's own earlier answer is
carried forward (error carried forward): the calculator runs as usual and, the moment it has
computed a given quantity, puts the given value in its place.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .checks import SpecError, as_array, as_mapping

Array = np.ndarray
Put = Callable[[Array], Array]  # takes the computed value, returns it with the given entries in place
PATH = re.compile(r"(?P<base>[A-Za-z_]\w*(?:\[\d+\]\.[A-Za-z_]\w*)?)(?P<index>(?:\[\d+\])*)")


@dataclass(frozen=True)
class Slot:
    """A quantity a path may name: where the calculator looks it up, and its shape."""

    key: tuple  # (layer, field) or (step, field), as run() asks for it
    shape: tuple[int, ...]  # its shape in the result
    prefix: tuple[int, ...] = ()  # index prefix inside the calculator (a single example's batch axis)


@dataclass(frozen=True)
class Given:
    puts: dict[tuple, Put] = field(default_factory=dict)
    paths: dict[str, Array] = field(default_factory=dict)  # path as written -> value, for the worked table
    # where f' of a layer whose a is given is taken: "z" (the computed f(z), as autograd runs the graph)
    # or "a" (the given a, for activations whose f' is written in a: sigmoid a(1-a), tanh 1-a^2, softmax)
    derivative: str = "z"

    def __bool__(self) -> bool:
        return bool(self.puts)


NOTHING = Given()


def parse_given(raw: Any, slots: dict[str, Slot], absent: dict[str, str], valid: str) -> Given:
    """Check every path and value of a ``given`` mapping against the quantities in ``slots``.

    ``absent`` maps a path this task could name but does not compute to the reason (e.g. no
    update); ``valid`` describes the valid paths in one line, for the error message.
    """
    entries: dict[tuple, list[tuple[tuple[int, ...], Array]]] = {}
    shown: dict[str, Array] = {}
    for path, value in as_mapping(raw, "given").items():
        text = str(path).replace(" ", "")
        m = PATH.fullmatch(text)
        base = m["base"] if m else text
        if base in absent:
            raise SpecError(f"given: {path!r} {absent[base]}")
        if base not in slots:
            close = difflib.get_close_matches(base, list(slots), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"given: {path!r} is not a quantity of this task{hint} (valid: {valid})")
        slot = slots[base]
        index = tuple(int(i) for i in re.findall(r"\d+", m["index"]))
        if len(index) > len(slot.shape):
            raise SpecError(f"given: {path!r} has {len(index)} indices, but {base} has shape {slot.shape}")
        for axis, (i, n) in enumerate(zip(index, slot.shape)):
            if i >= n:
                raise SpecError(f"given: {path!r}: index [{i}] is out of range ({base} has shape {slot.shape}, "
                                f"so axis {axis} runs from 0 to {n - 1})")
        rest = slot.shape[len(index):]
        v = as_array(value, f"given.{text}", (len(rest),))
        if v.shape != rest:
            raise SpecError(f"given.{text}: shape {v.shape} does not match {base}[...], shape {rest}")
        entries.setdefault(slot.key, []).append((slot.prefix + index, v))
        shown[text] = v
    return checked_given(entries, shown)


def checked_given(entries: dict[tuple, list[tuple[tuple[int, ...], Array]]], shown: dict[str, Array]) -> Given:
    """The Given of values already checked: slot key -> [(index into the slot, value)], in order,
    and path as written -> value."""
    return Given({key: _putter(items) for key, items in entries.items()}, shown)


def _putter(items: list[tuple[tuple[int, ...], Array]]) -> Put:
    def put(current: Array) -> Array:
        out = np.array(current, dtype=np.float64)  # a copy: the computed value stays as it was
        for index, value in items:
            out[index] = value
        return out

    return put


def parse_network_given(raw: Any, sizes: list[tuple[int, int]], batch: int | None, update: bool) -> Given:
    """Parse a network's ``given``; ``sizes`` holds each layer's (n_in, n_out)."""
    slots, absent = network_slots(sizes, batch, update)
    fields = "z, a, delta, dW, db" + (", W_new, b_new" if update else "")
    return parse_given(raw, slots, absent, f"output, loss, layers[i].{{{fields}}} for i from 0 to {len(sizes) - 1}, "
                                           "each optionally indexed, e.g. layers[0].a[1]")


DERIVATIVES = ("z", "a")


def parse_given_derivative(raw: Any) -> str:
    """A network's ``given_derivative``: ``z`` (the default) or ``a``."""
    if raw not in DERIVATIVES:
        raise SpecError(f"given_derivative: expected 'z' (f' at z, the default) or 'a' (f' from a given a), got {raw!r}")
    return str(raw)


def parse_optimizer_given(raw: Any, steps: int, shape: tuple[int, ...], second_moment: bool) -> Given:
    """Parse an optimizer's ``given``: the state after update k + 1 is ``steps[k]``."""
    slots, absent = optimizer_slots(steps, shape, second_moment)
    fields = "gradient, velocity, params" + (", second_moment" if second_moment else "")
    return parse_given(raw, slots, absent, f"steps[k].{{{fields}}} for k from 0 to {steps - 1}, "
                                           "each optionally indexed, e.g. steps[0].params[1]")


def network_slots(sizes: list[tuple[int, int]], batch: int | None, update: bool) -> tuple[dict[str, Slot], dict[str, str]]:
    """Return the paths of a network's result; ``sizes`` holds each layer's (n_in, n_out)."""
    slots: dict[str, Slot] = {}
    absent: dict[str, str] = {}
    prefix = (0,) if batch is None else ()
    for i, (n_in, n_out) in enumerate(sizes):
        per = (n_out,) if batch is None else (batch, n_out)
        for name in ("z", "a", "delta"):
            slots[f"layers[{i}].{name}"] = Slot((i, name), per, prefix)
        slots[f"layers[{i}].dW"] = Slot((i, "dW"), (n_in, n_out))
        slots[f"layers[{i}].db"] = Slot((i, "db"), (n_out,))
        for name, shape in (("W_new", (n_in, n_out)), ("b_new", (n_out,))):
            if update:
                slots[f"layers[{i}].{name}"] = Slot((i, name), shape)
            else:
                absent[f"layers[{i}].{name}"] = f"needs an 'update': without a learning rate there is no {name}"
    last = len(sizes) - 1
    slots["output"] = Slot((last, "a"), slots[f"layers[{last}].a"].shape, prefix)
    slots["loss"] = Slot((-1, "loss"), ())
    return slots, absent


def optimizer_slots(steps: int, shape: tuple[int, ...], second_moment: bool) -> tuple[dict[str, Slot], dict[str, str]]:
    """Return the paths of an optimizer's trajectory, one set per step."""
    names = ("gradient", "velocity", "params") + (("second_moment",) if second_moment else ())
    slots = {f"steps[{k}].{name}": Slot((k, name), shape) for k in range(steps) for name in names}
    absent = {} if second_moment else {
        f"steps[{k}].second_moment": "is only kept by adam" for k in range(steps)}
    return slots, absent
