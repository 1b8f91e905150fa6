"""Reading a spec: YAML or JSON text, and small checks whose errors name the key and the fix."""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

import numpy as np
import yaml

Array = np.ndarray


class SpecError(ValueError):
    """A spec a user wrote is wrong; the message names the key and how to fix it."""


# ---------------------------------------------------------------- loading text

def load_text(text: str, name: str = "<spec>") -> Any:
    """Parse YAML or JSON text; errors carry the line number."""
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            if name.endswith(".json"):
                raise SpecError(f"{name}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(f"{where}: malformed YAML: {problem}") from None


# ---------------------------------------------------------------- small checks

def suggest(name: object, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid: {', '.join(valid)})"


def as_mapping(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected a mapping (key: value), got {kind_of(obj)}")
    return obj


def kind_of(obj: Any) -> str:
    if obj is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(type(obj), type(obj).__name__)


def check_keys(obj: dict, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for key in obj:
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}{suggest(key, allowed)}")
    for key in required:
        if key not in obj:
            raise SpecError(f"{where}: missing key {key!r}")


def as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise SpecError(f"{where}: expected a number, got {kind_of(value)} {value!r}")
    if isinstance(value, str):
        # YAML 1.1 reads `1e-3` as a string; accept any spelling float() takes.
        try:
            value = float(value)
        except ValueError:
            raise SpecError(f"{where}: expected a number, got the string {value!r}") from None
    if not isinstance(value, (int, float)):
        raise SpecError(f"{where}: expected a number, got {kind_of(value)}")
    x = float(value)
    if not math.isfinite(x):
        raise SpecError(f"{where}: {value!r} is not a finite number (NaN and infinity are not allowed)")
    return x


class _NotPlain(Exception):
    pass


def _plain_numbers(v: Any) -> Any:
    """``v`` (nested lists) when every entry is a finite int or float, as ``as_number`` takes them;
    else raise _NotPlain. The common case, without building a path per entry."""
    if type(v) is list:
        return [_plain_numbers(e) for e in v]
    if type(v) is float:
        if math.isfinite(v):
            return v
    elif type(v) is int and abs(v) < 2 ** 53:
        return float(v)
    raise _NotPlain


def as_array(value: Any, where: str, ndims: tuple[int, ...]) -> Array:
    """Convert nested lists of numbers to float64 with one of the allowed ranks."""

    def conv(v: Any, path: str) -> Any:
        if isinstance(v, list):
            return [conv(e, f"{path}[{i}]") for i, e in enumerate(v)]
        return as_number(v, path)

    try:
        data = _plain_numbers(value)
    except _NotPlain:  # something to convert or refuse: the slow path names the entry
        data = conv(value, where)
    try:
        arr = np.array(data, dtype=np.float64)
    except ValueError:
        raise SpecError(f"{where}: rows of different lengths (a ragged list)") from None
    if arr.ndim not in ndims:
        want = " or ".join({0: "a number", 1: "a list", 2: "a list of lists"}.get(n, f"{n}-D") for n in ndims)
        raise SpecError(f"{where}: expected {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise SpecError(f"{where}: is empty")
    return arr


def as_positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{where}: expected a positive whole number, got {kind_of(value)}")
    x = as_number(value, where)
    if x != int(x) or x < 1:
        raise SpecError(f"{where}: expected a positive whole number, got {value!r}")
    return int(x)
