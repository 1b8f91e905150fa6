"""``numeric``: a number, vector or matrix within a tolerance; written out or calculated, with the
buggy calculators' answers recognised as mistakes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field
from typing import Any, Literal, Union

import numpy as np
from pydantic import model_validator

from ...calc.mistakes import DESCRIPTIONS
from ...parsing import CostlyNumber, FormatError, parse_numeric
from ...tolerance import Mode, accepted_range, close_at_lower_precision, entries_close, mode_of, numbers_match
from ..core import Variant, VariantError, finite, mistake_values
from ..params import fmt, plain
from ..schema import DEFAULT_TOLERANCE, Calculated, ItemBase, Tolerance
from .base import ItemType, Namer, Outcome, ResponseRefused, field, numbers_text

Number = Union[float, list[float], list[list[float]]]


class Numeric(ItemBase, Calculated):
    type: Literal["numeric"]
    answer: Union[str, Number]
    tolerance: Tolerance = DEFAULT_TOLERANCE

    @model_validator(mode="after")
    def _answer_kind(self) -> "Numeric":
        if self.calc is not None and not isinstance(self.answer, str):
            raise ValueError("with 'calc', 'answer' is a path into the calculator's result, e.g. layers[0].dW[1][0]")
        if self.calc is None and isinstance(self.answer, str):
            raise ValueError(f"'answer' {self.answer!r} is a result path, but the item has no 'calc'")
        if self.calc is None and (self.params or self.mistakes):
            raise ValueError("'params' and 'mistakes' need a 'calc' that uses them")
        return self


@dataclass
class NumericPayload:
    shape: tuple[int, ...]  # () for a number, (n,) for a vector, (rows, cols) for a matrix
    mistakes: dict[str, Any] = dc_field(default_factory=dict)  # mistake -> its (wrong) value


class NumericType(ItemType):
    name = "numeric"
    model = Numeric
    response_format = "a number, a numeric string, or nested lists of them"
    answer_in_explanation = True

    def build(self, v: Variant, calculated: Any) -> None:
        m = v.model
        v.answer = calculated if m.calc is not None else plain(m.answer)
        if not finite(v.answer):
            raise VariantError(("answer",), f"the answer is not a finite number: {v.answer!r}")
        mistakes = mistake_values(v.item, v.task, calculated, m.tolerance) if m.calc is not None else {}
        v.payload = NumericPayload(tuple(np.shape(v.answer)), mistakes)

    def save_view(self, v: Variant) -> Variant:
        return Variant(item=None, seed=0, kind=self, payload=NumericPayload(v.payload.shape))  # type: ignore[arg-type]

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        return Variant(item=None, seed=0, kind=self, payload=NumericPayload(tuple(q["shape"])))  # type: ignore[arg-type]

    def public(self, v: Variant) -> dict[str, Any]:
        return {"shape": list(v.payload.shape)}

    def key_of(self, v: Variant) -> dict[str, Any] | None:
        return {"answer": plain(v.answer), "shape": list(v.payload.shape),
                "mistakes": {k: np.asarray(x, dtype=np.float64).tolist() for k, x in v.payload.mistakes.items()}}

    def from_key(self, item: Any, seed: int, key: dict[str, Any]) -> Variant:
        return Variant(item=item, seed=seed, kind=self, answer=key["answer"],
                       payload=NumericPayload(tuple(key["shape"]), dict(key["mistakes"])))

    def json_ok(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return math.isfinite(value)
        if isinstance(value, str):
            return True
        if isinstance(value, list):
            return all(self.json_ok(e) for e in value)
        return False

    def misfit(self, v: Variant, value: Any) -> str | None:
        shape = v.payload.shape
        if not shape:
            return "this answer is one number, not a list" if isinstance(value, list) else None
        if len(shape) == 1:
            if isinstance(value, list) and len(value) == shape[0] and not any(isinstance(e, list) for e in value):
                return None
            return f"this answer is a vector: send a list of {shape[0]} numbers (or numeric strings)"
        if isinstance(value, list) and len(value) == shape[0] and all(
                isinstance(row, list) and len(row) == shape[1] and not any(isinstance(e, list) for e in row)
                for row in value):
            return None
        return f"this answer is a {shape[0]} x {shape[1]} matrix: send {shape[0]} lists of {shape[1]} numbers each"

    def note(self, v: Variant, value: Any) -> str | None:
        try:
            parse_numeric(value, v.payload.shape)
        except CostlyNumber as e:
            raise ResponseRefused(400, f"not saved: {e}") from None
        except FormatError as e:
            return str(e)
        return None

    def grade(self, v: Variant, response: Any) -> Outcome:
        x = parse_numeric(response, v.payload.shape)
        tol = v.model.tolerance
        ok = entries_close(x, v.answer, tol)
        fraction = float(np.mean(ok))
        if fraction == 1.0:
            return 1.0, "", None
        for mistake, value in v.payload.mistakes.items():
            if numbers_match(x, value, tol):
                return fraction, f"Your answer is what you get if you {DESCRIPTIONS[mistake]}.", mistake
        near = [close_at_lower_precision(float(u), float(k), tol)
                for u, k in zip(x.reshape(-1), np.asarray(v.answer, dtype=np.float64).reshape(-1))]
        if x.ndim:
            close = f" {sum(near)} more {'is' if sum(near) == 1 else 'are'} close, but not precise enough." if any(near) else ""
            return fraction, f"{int(ok.sum())} of {ok.size} entries are right.{close}", None
        if near[0]:
            return fraction, (f"Close, but not precise enough: the answer must be correct {_precision(tol)}; "
                              "keep more digits until the last step."), None
        return fraction, "", None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        iid, shape = q["id"], q.get("shape") or []
        if not shape:
            return form.get(field(iid), "").strip() or None
        if len(shape) == 1:
            cells = [form.get(field(iid, i), "").strip() for i in range(shape[0])]
        else:
            cells = [[form.get(field(iid, i, j), "").strip() for j in range(shape[1])] for i in range(shape[0])]
        flat = cells if len(shape) == 1 else [c for row in cells for c in row]
        return cells if any(flat) else None

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        return value if _fits(value, list(q.get("shape") or [])) else None

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        return numbers_text(value)

    def accepted(self, v: Variant) -> str | None:
        tol = v.model.tolerance
        if np.ndim(v.answer) == 0:
            lo, hi = accepted_range(float(v.answer), tol)
            return f"Accepted: from {fmt(lo, 8)} to {fmt(hi, 8)} ({_precision(tol)})."
        return f"Accepted: each entry {_precision(tol)}."

    def preview_marking(self, v: Variant) -> dict[str, Any]:
        return {"tolerance": v.model.tolerance.model_dump(exclude_none=True)}

    def answer_text(self, v: Variant) -> str:
        return numbers_text(plain(v.answer))

    def stress_number(self, v: Variant, answer: Any) -> float | None:
        return float(answer) if np.ndim(answer) == 0 else None


def _precision(tol: Tolerance) -> str:
    """The tolerance in words."""
    mode = mode_of(tol)
    if mode is Mode.REL_ABS:
        return f"within {fmt((tol.rel or 0.0) * 100)}% of the key, or {fmt(tol.abs or 0.0)}"
    if mode is Mode.SIGFIGS:
        return f"to {tol.sigfigs} significant figures"
    if mode is Mode.DECIMALS:
        return f"to {tol.decimals} decimal places"
    raise AssertionError(mode)  # pragma: no cover - exhaustive


def _fits(value: Any, shape: list[int]) -> bool:
    if not shape:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return isinstance(value, list) and len(value) == shape[0] and all(_fits(v, shape[1:]) for v in value)


TYPE = NumericType()
