"""Grading: parse a response, then compare it; pure functions, no I/O.

As in PrairieLearn's grading helpers, parsing is separate from comparing, and a format error
(an empty field, ``abc``, ``1,5``, a wrong matrix shape) returns a message and costs nothing:
the student is told and can fix it.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any

import numpy as np

from .bank.schema import DEFAULT_TOLERANCE, Tolerance
from .bank.variant import Variant
from .calc.mistakes import DESCRIPTIONS


class FormatError(ValueError):
    """A response that cannot be read; the message tells the student how to fix it."""


class CostlyNumber(FormatError):
    """A number too long to read exactly at a bounded cost: refused at save time (400), never stored."""


@dataclass(frozen=True)
class GradeResult:
    score: float  # points earned
    max_score: float
    feedback: str = ""
    format_error: str | None = None
    mistake: str | None = None  # the buggy calculator the response matches

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score else 0.0

    @property
    def correct(self) -> bool:
        return self.format_error is None and math.isclose(self.score, self.max_score)


# ---------------------------------------------------------------- comparing numbers

class Mode(Enum):
    REL_ABS = "rel_abs"
    SIGFIGS = "sigfigs"
    DECIMALS = "decimals"


def mode_of(tol: Tolerance) -> Mode:
    if tol.sigfigs is not None:
        return Mode.SIGFIGS
    if tol.decimals is not None:
        return Mode.DECIMALS
    return Mode.REL_ABS


def close_rel_abs(x: float, a: float, rel: float, abs_: float) -> bool:
    """|x - a| <= max(abs, rel * |a|)."""
    return abs(x - a) <= max(abs_, rel * abs(a))


def close_sigfigs(x: float, a: float, digits: int) -> bool:
    """x agrees with a to ``digits`` significant figures (half a unit in the last place, +2%)."""
    n = digits - 1 if a == 0 else -int(math.floor(math.log10(abs(a)))) + (digits - 1)
    return abs(x - a) < 0.51 * 10.0 ** (-n)


def close_decimals(x: float, a: float, decimals: int) -> bool:
    """x agrees with a to ``decimals`` digits after the point (half a unit, +2%)."""
    return abs(x - a) < 0.51 * 10.0 ** (-decimals)


def scalar_close(x: float, a: float, tol: Tolerance) -> bool:
    if not (math.isfinite(x) and math.isfinite(a)):
        return False
    mode = mode_of(tol)
    if mode is Mode.REL_ABS:
        return close_rel_abs(x, a, tol.rel or 0.0, tol.abs or 0.0)
    if mode is Mode.SIGFIGS:
        return close_sigfigs(x, a, tol.sigfigs)
    if mode is Mode.DECIMALS:
        return close_decimals(x, a, tol.decimals)
    raise AssertionError(mode)  # pragma: no cover - exhaustive


def entries_close(x: Any, a: Any, tol: Tolerance = DEFAULT_TOLERANCE) -> np.ndarray:
    """Return a boolean array: which entries of x are within tolerance of a (same shape)."""
    xs, as_ = np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64)
    flat = [scalar_close(float(u), float(v), tol) for u, v in zip(xs.reshape(-1), as_.reshape(-1))]
    return np.array(flat, dtype=bool).reshape(as_.shape)


def numbers_match(x: Any, a: Any, tol: Tolerance = DEFAULT_TOLERANCE) -> bool:
    """True when x has a's shape and every entry is within tolerance."""
    return np.shape(x) == np.shape(a) and bool(np.all(entries_close(x, a, tol)))


# ---------------------------------------------------------------- parsing

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


# ---------------------------------------------------------------- grading by type

def grade(v: Variant, response: Any) -> GradeResult:
    """Grade one response to one variant."""
    points = float(v.model.points)
    try:
        fraction, feedback, mistake = GRADERS[v.type](v, response)
    except FormatError as e:
        return GradeResult(0.0, points, feedback=str(e), format_error=str(e))
    feedback = feedback or ("Correct." if fraction == 1 else "")
    return GradeResult(round(points * fraction, 10), points, feedback, None, mistake)


Outcome = tuple[float, str, str | None]  # (fraction, feedback, mistake)


def _single(v: Variant, response: Any) -> Outcome:
    ids = [c.id for c in v.choices]
    if not isinstance(response, str) or response not in ids:
        raise FormatError("choose one of the options")
    mistake = next((m for m, cid in v.buggy.items() if cid == response), None)
    return (1.0 if response == v.answer else 0.0), v.choice_feedback.get(response, ""), mistake


def _multiple(v: Variant, response: Any) -> Outcome:
    ids = {c.id for c in v.choices}
    if not isinstance(response, list) or not all(isinstance(r, str) for r in response):
        raise FormatError("tick the options that apply")
    picked = set(response)
    if not picked <= ids:
        raise FormatError("tick only the options shown")
    correct = set(v.answer)
    wrong = ids - correct
    hits, false_picks = len(picked & correct), len(picked & wrong)
    fraction = max(0.0, hits / len(correct) - (false_picks / len(wrong) if wrong else 0.0))
    notes = [v.choice_feedback[c] for c in sorted(picked) if c in v.choice_feedback]
    return fraction, " ".join(notes), None


def _true_false(v: Variant, response: Any) -> Outcome:
    if isinstance(response, str) and response.strip().lower() in ("true", "false"):
        response = response.strip().lower() == "true"
    if not isinstance(response, bool):
        raise FormatError("answer true or false")
    return (1.0 if response == v.answer else 0.0), "", None


def _numeric(v: Variant, response: Any) -> Outcome:
    x = parse_numeric(response, v.answer_shape)
    tol = v.model.tolerance
    ok = entries_close(x, v.answer, tol)
    fraction = float(np.mean(ok))
    if fraction == 1.0:
        return 1.0, "", None
    for mistake, value in v.buggy.items():
        if numbers_match(x, value, tol):
            return fraction, f"Your answer is what you get if you {DESCRIPTIONS[mistake]}.", mistake
    if x.ndim:
        return fraction, f"{int(ok.sum())} of {ok.size} entries are right.", None
    return fraction, "", None


def _short_text(v: Variant, response: Any) -> Outcome:
    if not isinstance(response, str) or not response.strip():
        raise FormatError("no answer given: type your answer")
    m = v.model
    given = normalise_text(response, m.case_sensitive)
    if any(given == normalise_text(a, m.case_sensitive) for a in m.answers):
        return 1.0, "", None
    flags = 0 if m.case_sensitive else re.IGNORECASE
    if m.pattern and re.fullmatch(m.pattern, given, flags):
        return 1.0, "", None
    return 0.0, "", None


def _matching(v: Variant, response: Any) -> Outcome:
    if not isinstance(response, dict):
        raise FormatError("match each term with one option")
    lefts, rights = {o.id for o in v.lefts}, {o.id for o in v.rights}
    for k, val in response.items():
        if k not in lefts or not isinstance(val, str) or val not in rights:
            raise FormatError("match each term with one of the options shown")
    right = sum(1 for k, val in v.answer.items() if response.get(k) == val)
    return right / len(v.answer), f"{right} of {len(v.answer)} pairs are right.", None


def longest_increasing_run(seq: list[int]) -> int:
    """Length of the longest strictly increasing subsequence (patience sorting)."""
    import bisect

    tails: list[int] = []
    for x in seq:
        i = bisect.bisect_left(tails, x)
        tails[i:i + 1] = [x]
    return len(tails)


def _ordering(v: Variant, response: Any) -> Outcome:
    ids = [o.id for o in v.options]
    if not isinstance(response, list) or sorted(map(str, response)) != sorted(ids) or len(set(response)) != len(ids):
        raise FormatError("put every entry in order, each exactly once")
    rank = {cid: i for i, cid in enumerate(v.answer)}
    run = longest_increasing_run([rank[r] for r in response])
    n = len(ids)
    return (run - 1) / (n - 1), "", None


GRADERS = {
    "single_choice": _single, "multiple_select": _multiple, "true_false": _true_false, "numeric": _numeric,
    "short_text": _short_text, "matching": _matching, "ordering": _ordering,
}
