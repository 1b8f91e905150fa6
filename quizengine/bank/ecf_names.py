"""Readable names of a chain's quantities, for feedback: ``layers[0].a`` -> a⁽¹⁾,
``steps[1].velocity`` -> velocity after step 2."""

from __future__ import annotations

from .core import parse_path

SUPER = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
SYMBOLS = {"z": "z", "a": "a", "delta": "δ", "dW": "∂L/∂W", "db": "∂L/∂b", "W_new": "updated W",
           "b_new": "updated b"}
STEP_NAMES = {"gradient": "gradient", "velocity": "velocity", "second_moment": "second moment", "params": "parameters"}


def quantity_name(path: str) -> str:
    """A short readable name of a result path, to follow "your": ``layers[0].a`` -> a⁽¹⁾,
    ``steps[1].velocity`` -> velocity after step 2; entries are numbered from 1."""
    try:
        steps = parse_path(path)
    except KeyError:
        return path
    head, rest = steps[0], list(steps[1:])
    if head == "output":
        name = "ŷ"
    elif head == "loss":
        name = "loss L"
    elif head == "layers" and len(rest) >= 2:
        name = SYMBOLS.get(str(rest[1]), str(rest[1])) + f"({rest[0] + 1})".translate(SUPER).replace("(", "⁽").replace(")", "⁾")
        rest = rest[2:]
    elif head == "steps" and len(rest) >= 2:
        name = f"{STEP_NAMES.get(str(rest[1]), str(rest[1]))} after step {rest[0] + 1}"
        rest = rest[2:]
    else:
        return path
    if rest:
        name += "[" + ", ".join(str(i + 1) if isinstance(i, int) else str(i) for i in rest) + "]"
    return name
