"""Numbers as a person reads them (``fmt``), with the noise floor a variant sets (params.noise_floor).

Apart from params.py so that the drawing process (quizengine/figure_server.py) labels its plots
without importing the bank's schema.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

FLOOR: ContextVar[float] = ContextVar("noise_floor", default=0.0)


def fmt(x: Any, digits: int = 6) -> str:
    """Format a number for a person: up to ``digits`` significant digits, no trailing zeros."""
    x = float(x)
    if x == 0 or abs(x) < FLOOR.get():
        return "0"
    s = f"{x:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}e{int(exp)}"
    return s
