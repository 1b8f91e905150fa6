"""Lint rule (a) over a numeric item's keys: the prompt states the precision it grades to, the
tolerance agrees, and a correct answer rounded to it is accepted."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..tolerance import Mode, Tolerance, mode_of, scalar_close
from .loader import BankItem, Problem
from .params import fmt

PLAIN_DIGITS = 3  # keys with at most this many significant digits need no stated precision

# ---------------------------------------------------------------- (a) stated precision

_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_N = r"(\d+|one|two|three|four|five|six|seven|eight)"
# (pattern, mode, how to read n): the statements a prompt may make, documented in banks/README.md.
STATEMENTS: tuple[tuple[re.Pattern[str], Mode], ...] = (
    (re.compile(_N + r"[\s-]+(?:significant[\s-]+(?:figures?|digits?)|sig\.?\s*figs?|s\.\s?f\.)", re.I), Mode.SIGFIGS),
    (re.compile(_N + r"[\s-]+(?:decimal[\s-]+(?:places?|digits?)|d\.\s?p\.|digits? after the (?:decimal )?point)", re.I),
     Mode.DECIMALS),
    (re.compile(r"(?:nearest|to an?) (?:whole number|integer)", re.I), Mode.DECIMALS),
)


def stated_precision(prompt: str) -> list[tuple[Mode, int, str]]:
    """Every precision statement of a prompt: (mode, digits, the words that state it)."""
    out = []
    for pattern, mode in STATEMENTS:
        for m in pattern.finditer(prompt):
            if m.groups():
                word = m.group(1).lower()
                n = _WORD_NUMBERS.get(word) or int(word)
            else:
                n = 0
            out.append((mode, n, " ".join(m.group(0).split())))
    return out


def significant_digits(x: float) -> int:
    """How many significant digits ``x`` has, written out to 12 (0.25 -> 2, 0.00390625 -> 6, 120 -> 2)."""
    if x == 0 or not math.isfinite(x):
        return 1
    mant = f"{abs(x):.12e}".split("e")[0].replace(".", "").rstrip("0")
    return max(1, len(mant))


def rounded(x: float, mode: Mode, n: int) -> float:
    """``x`` rounded as a student stating that precision would write it."""
    if mode is Mode.DECIMALS:
        return round(x, n)
    if x == 0:
        return 0.0
    return float(f"{x:.{n - 1}e}")


def precision_problems(item: BankItem, keys: list[Any]) -> list[Problem]:
    """A numeric item states the precision it grades to, its tolerance agrees, and rounding is accepted."""
    m = item.model
    entries = [float(x) for k in keys for x in np.asarray(k, dtype=np.float64).reshape(-1)]
    if not entries:
        return []
    statements = stated_precision(m.prompt)
    if len({(mode, n) for mode, n, _ in statements}) > 1:
        said = "; ".join(f"'{words}'" for _, _, words in statements)
        return [item.problem(("prompt",), f"the prompt states more than one precision ({said}); state one")]
    where = ("tolerance",) if "tolerance" in item.raw else ("prompt",)
    tol: Tolerance = m.tolerance
    if not statements:
        if all(x == round(x) or significant_digits(x) <= PLAIN_DIGITS for x in entries):
            return []
        example = max(entries, key=significant_digits)
        refused = sum(not all(scalar_close(rounded(x, Mode.SIGFIGS, 3), x, tol)
                              for x in np.asarray(k, dtype=np.float64).reshape(-1)) for k in keys)
        share = f"; a correct answer to 3 significant figures is refused in {refused} of {len(keys)} variants" \
            if refused else ""
        return [item.problem(("prompt",), f"the prompt does not say what precision it grades to, and keys such as "
                             f"{fmt(example, 12)} have more than {PLAIN_DIGITS} significant digits{share}: state it "
                             "(e.g. 'to 3 significant figures') and grade with the same tolerance ({sigfigs: 3})")]
    mode, n, words = statements[0]
    mine = mode_of(tol)
    want = f"{{{mode.value}: {n}}}"
    if mine is not mode or (mode is Mode.SIGFIGS and tol.sigfigs != n) or (mode is Mode.DECIMALS and tol.decimals != n):
        return [item.problem(where, f"the prompt says '{words}' but the tolerance is "
                             f"{tol.model_dump(exclude_none=True)}; grade with tolerance {want}")]
    bad = [i for i, k in enumerate(keys)
           if not all(scalar_close(rounded(x, mode, n), x, tol) for x in np.asarray(k, dtype=np.float64).reshape(-1))]
    if bad:
        return [item.problem(where, f"the key rounded to {words} is refused in {len(bad)} of {len(keys)} variants "
                             f"(first: seed {bad[0]})")]
    return []
