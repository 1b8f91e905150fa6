"""The options of a computed choice item: the key, mistakes and decoys, with the key's rank uniform.

Left alone, the mistakes of a calculation sit on one side of the key (forgetting f'(z) < 1 always
makes a delta larger) or on both (gradient ascent mirrors the step), so "pick the smallest" or "pick
the middle one" finds the key without computing. Here each seed first draws the key's rank among
the options sorted by value, uniformly; then it shows the mistakes that fit on each side (a seeded
subset when there are more) and fills the rest with decoys at seeded random distances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .params import fmt, rand_u64, shuffled

MIN_OPTIONS = 4  # a computed choice item shows max(MIN_OPTIONS, 1 + its mistakes) options
DECOY_GAP = 0.02  # a decoy is at least this far (relative) from every option, and from being 2x, x/2 or -x of one
DECOY_TRIES = 200


def option_count(mistakes: int) -> int:
    return max(MIN_OPTIONS, 1 + mistakes)


def computed_options(key: float, mistakes: dict[str, float], n: int, digits: int, salt: tuple,
                     distinct: Any) -> list[tuple[str, float, str]]:
    """Return ``n`` options as (source, exact value, printed text) in display order.

    ``source`` is "key", a mistake's name or "decoy N". ``mistakes`` holds the finite wrong values
    already told apart from the key; ``distinct(x)`` says whether a decoy value differs from the key
    under the item's tolerance.
    """
    taken = {fmt(key, digits)}
    below: list[str] = []
    above: list[str] = []
    for name, value in mistakes.items():
        text = fmt(value, digits)
        if text not in taken:  # options that print the same are one option
            taken.add(text)
            (below if value < key else above).append(name)
    rank = rand_u64(*salt, "key rank") % n
    shown = shuffled(below, *salt, "below")[:rank] + shuffled(above, *salt, "above")[:n - 1 - rank]
    options = [("key", key)] + [(name, float(mistakes[name])) for name in shown]
    n_below = rank - sum(mistakes[name] < key for name in shown)
    n_above = n - 1 - rank - sum(mistakes[name] > key for name in shown)
    spread = [abs(v - key) for v in mistakes.values()]
    scale = float(np.median(spread)) if spread else abs(key) or 1.0
    sides = [-1] * n_below + [1] * n_above
    for j, side in enumerate(sides):
        options.append((f"decoy {j + 1}", _decoy(key, side, scale, options, taken, digits, distinct, (*salt, j))))
        taken.add(fmt(options[-1][1], digits))
    order = shuffled(options, *salt, "choices")
    return [(source, value, fmt(value, digits)) for source, value in order]


def _decoy(key: float, side: int, scale: float, options: list[tuple[str, float]], taken: set[str], digits: int,
           distinct: Any, salt: tuple) -> float:
    """A value on ``side`` of the key (-1 below, +1 above) that no simple pattern ties to the others."""
    for attempt in range(DECOY_TRIES):
        u = rand_u64(*salt, "decoy", attempt) / 2**64
        step = scale * (0.25 + 1.25 * u) * (1 + attempt // 50)  # widen if the first tries all collide
        if key != 0 and np.sign(key) != side:  # towards zero: keep the sign, as every real option does
            g = step / abs(key)
            x = key * (1 - (g if g < 0.9 else 0.1 + 0.8 * (rand_u64(*salt, "ratio", attempt) / 2**64)))
        else:
            x = key + side * step
        shown = float(fmt(x, digits))
        if fmt(x, digits) in taken or (shown - key) * side <= 0 or not distinct(x):
            continue
        if all(_apart(x, v) for _, v in options):
            return x
    raise ValueError(f"no decoy found {'below' if side < 0 else 'above'} the key {fmt(key, digits)}")


def _apart(x: float, y: float) -> bool:
    """Whether x and y are clearly different, and neither is about 2x, x/2 or -x of the other."""
    return all(abs(a - c * b) > DECOY_GAP * max(abs(a), abs(c * b))
               for a, b in ((x, y), (y, x)) for c in (1.0, 2.0, 0.5, -1.0))
