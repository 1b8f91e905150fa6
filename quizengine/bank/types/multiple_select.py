"""``multiple_select``: tick every option that applies; partial credit, with wrong ticks taken off."""

from __future__ import annotations

from typing import Any, Literal

from markupsafe import escape

from pydantic import Field, StrictBool

from ...parsing import FormatError
from ..core import Variant
from ..loader import BankItem, Problem
from ..schema import Choice, ItemBase
from .base import Namer, Outcome, field, numbers_text
from .single_choice import ChoiceType


class MultipleSelect(ItemBase):
    type: Literal["multiple_select"]
    choices: list[Choice] = Field(min_length=2)
    shuffle: StrictBool = True


class MultipleSelectType(ChoiceType):
    name = "multiple_select"
    model = MultipleSelect
    response_format = "a list of choice ids"

    def correct_rules(self, item: BankItem, correct: list[str]) -> list[Problem]:
        if not correct:
            return [item.problem(("choices",), "has no correct choice; mark at least one with correct: true")]
        if len(correct) == len(item.model.choices):
            return [item.problem(("choices",), "every choice is correct, so ticking everything earns full marks; "
                                 "add an incorrect choice")]
        return []

    def picked(self, value: Any) -> list[str]:
        return value

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(e, str) for e in value)

    def grade(self, v: Variant, response: Any) -> Outcome:
        ids = {c.id for c in v.payload.choices}
        if not isinstance(response, list) or not all(isinstance(r, str) for r in response):
            raise FormatError("tick the options that apply")
        picked = set(response)
        if not picked <= ids:
            raise FormatError("tick only the options shown")
        correct = set(v.answer)
        wrong = ids - correct
        hits, false_picks = len(picked & correct), len(picked & wrong)
        fraction = max(0.0, hits / len(correct) - (false_picks / len(wrong) if wrong else 0.0))
        notes = [v.payload.feedback[c] for c in sorted(picked) if c in v.payload.feedback]
        return fraction, " ".join(notes), None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        return form.getlist(field(q["id"])) or None

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        if isinstance(value, list):
            return "; ".join(name(v) for v in value) or "(nothing ticked)"
        return numbers_text(value)

    def describe_html(self, q: dict[str, Any], value: Any, name: Namer, name_html: Namer) -> str:
        if isinstance(value, list) and value:
            return "<ul class=\"answer-list\">" + "".join(f"<li>{name_html(v)}</li>" for v in value) + "</ul>"
        return str(escape(self.describe(q, value, name)))


TYPE = MultipleSelectType()
