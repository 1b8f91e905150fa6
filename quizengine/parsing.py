"""Reading a response: numbers, vectors and matrices, and text; pure functions, no I/O.

As in PrairieLearn's grading helpers, parsing is separate from comparing, and a format error
(an empty field, ``abc``, ``1,5``, a wrong matrix shape) returns a message and costs nothing:
the student is told and can fix it. Below ``bank/``: item types read responses with it.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from fractions import Fraction
from typing import Any

import numpy as np


class FormatError(ValueError):
    """A response that cannot be read; the message tells the student how to fix it."""


class CostlyNumber(FormatError):
    """A number too long to read exactly at a bounded cost: refused at save time (400), never stored."""


# One digit run, then an optional fraction: no two quantifiers compete for the same digits, so a
# long non-number fails in linear time (the old pattern backtracked for seconds on 8,000 digits).
NUMBER = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?$")
MAX_DIGITS = 50  # digits in one number (mantissa), enough for any float64 written out in full
MAX_EXPONENT = 400  # |exponent|: float64 ends near 1e308 and 5e-324; beyond, exact fractions get huge


def check_cost(m: re.Match[str], shown: str) -> None:
    """Refuse (CostlyNumber) a NUMBER match whose exact value would be costly to build."""
    digits = sum(ch.isdigit() for ch in m.group(1))
    exponent = (m.group(2) or "0").lstrip("+-").lstrip("0") or "0"
    if digits > MAX_DIGITS or len(exponent) > 3 or int(exponent) > MAX_EXPONENT:
        raise CostlyNumber(f"{shown!r} is too long a number: use at most {MAX_DIGITS} digits and an exponent "
                           f"from -{MAX_EXPONENT} to {MAX_EXPONENT} (for example 1.5e-3)")


def parse_number(value: Any) -> float:
    """Read one number: 0.25, .25, 2.5e-1, 1/4, -0; never NaN or infinity, never a costly one."""
    if isinstance(value, bool) or value is None:
        raise FormatError("enter a number")
    if isinstance(value, int) and abs(value) > sys.float_info.max:  # (stored before saves were checked)
        raise FormatError("the number is too large (not finite)")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        s = unicodedata.normalize("NFKC", value).strip().replace("\u2212", "-").replace(" ", "")
        shown = value.strip() if len(value.strip()) <= 40 else value.strip()[:37] + "..."
        if not s:
            raise FormatError("no answer given: enter a number")
        if s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise FormatError(f"{shown!r} is not a finite number")
        if re.fullmatch(r"[+-]?\d+,\d+", s):
            raise FormatError(f"{shown!r}: use a dot as the decimal separator ({s.replace(',', '.')[:40]})")
        if "/" in s:
            num, _, den = s.partition("/")
            m_num, m_den = NUMBER.match(num), NUMBER.match(den)
            if not (m_num and m_den):
                raise FormatError(f"{shown!r} is not a number or a fraction like 1/3")
            check_cost(m_num, shown)
            check_cost(m_den, shown)
            if float(den) == 0:
                raise FormatError(f"{shown!r} divides by zero")
            x = float(Fraction(num) / Fraction(den))
        elif m := NUMBER.match(s):
            check_cost(m, shown)
            x = float(s)
        else:
            raise FormatError(f"{shown!r} is not a number (examples: 0.25, -1.5e-3, 1/3)")
    else:
        raise FormatError("enter a number")
    if not math.isfinite(x):
        raise FormatError("the number is too large (not finite)")
    return x


def parse_numeric(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Read a scalar, vector or matrix response of exactly ``shape``."""
    if not shape:
        return np.array(parse_number(value))
    what = "vector" if len(shape) == 1 else "matrix"
    if not isinstance(value, list) or len(value) != shape[0]:
        raise FormatError(f"this answer is a {what} of shape {_shape(shape)}: fill every field")
    if len(shape) == 1:
        cells = []
        for i, v in enumerate(value):
            try:
                cells.append(parse_number(v))
            except FormatError as e:
                raise type(e)(f"entry {i + 1}: {e}") from None
        return np.array(cells)
    rows = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != shape[1]:
            raise FormatError(f"this answer is a {what} of shape {_shape(shape)}: row {r + 1} needs {shape[1]} entries")
        try:
            rows.append([parse_number(v) for v in row])
        except FormatError as e:
            raise type(e)(f"row {r + 1}: {e}") from None
    return np.array(rows)


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def normalise_text(s: str, case_sensitive: bool) -> str:
    s = " ".join(unicodedata.normalize("NFKC", s).split())
    return s if case_sensitive else s.casefold()
