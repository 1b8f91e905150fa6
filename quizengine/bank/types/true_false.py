"""``true_false``: a statement to judge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictBool

from ...parsing import FormatError
from ..core import Variant
from ..schema import ItemBase
from .base import ItemType, Namer, Outcome, field, numbers_text


class TrueFalse(ItemBase):
    type: Literal["true_false"]
    answer: StrictBool


class TrueFalseType(ItemType):
    name = "true_false"
    model = TrueFalse
    response_format = "true or false"

    def build(self, v: Variant, calculated: Any) -> None:
        v.answer = v.model.answer

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, bool)

    def grade(self, v: Variant, response: Any) -> Outcome:
        if isinstance(response, str) and response.strip().lower() in ("true", "false"):
            response = response.strip().lower() == "true"
        if not isinstance(response, bool):
            raise FormatError("answer true or false")
        return (1.0 if response == v.answer else 0.0), "", None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        value = form.get(field(q["id"]))
        return None if value not in ("true", "false") else value == "true"

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        return value if isinstance(value, bool) else None

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        if isinstance(value, bool):
            return "True" if value else "False"
        return numbers_text(value)


TYPE = TrueFalseType()
