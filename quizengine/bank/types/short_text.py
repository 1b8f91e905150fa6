"""``short_text``: a word or phrase, compared after normalising spaces (and case), or a pattern."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator

from ...parsing import FormatError, normalise_text
from ..core import Variant
from ..schema import ItemBase, Text
from .base import ItemType, Outcome, field


class ShortText(ItemBase):
    type: Literal["short_text"]
    answers: list[Text] = Field(min_length=1)
    case_sensitive: StrictBool = False
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class ShortTextType(ItemType):
    name = "short_text"
    model = ShortText
    response_format = "a string"

    def build(self, v: Variant, calculated: Any) -> None:
        v.answer = v.model.answers[0]

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, str)

    def grade(self, v: Variant, response: Any) -> Outcome:
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

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        return form.get(field(q["id"]), "").strip() or None


TYPE = ShortTextType()
