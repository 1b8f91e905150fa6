"""``short_text``: a word or phrase, compared after normalizing, with synonyms and a pattern.

Normalizing (``canonical``) is what a reader would not count as a different answer: Unicode
compatibility forms (NFKC), typographic quotes and dashes (``’`` ``“`` ``–`` ``−``) as their ASCII
forms, punctuation and white space around the answer ("Convergence." is "convergence"), runs of
inner white space, hyphen vs space ("one-hot" is "one hot"), and case unless ``case_sensitive``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator

from ...parsing import FormatError
from ..core import Variant
from ..loader import BankItem, Problem
from ..schema import ItemBase, Text
from .base import ItemType, Outcome, field

QUOTES = str.maketrans({c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u02bc\u0060\u00b4"}
                       | {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})
DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d]")


def _edge(ch: str) -> bool:
    """A character stripped from either end: white space and punctuation (not symbols such as +)."""
    return ch.isspace() or unicodedata.category(ch).startswith("P")


def canonical(s: str, case_sensitive: bool = False, hyphens: bool = False) -> str:
    """``s`` normalized for comparison; with ``hyphens`` the hyphens are kept (for patterns)."""
    s = unicodedata.normalize("NFKC", s).translate(QUOTES)
    s = DASHES.sub("-", s)
    start, end = 0, len(s)
    while start < end and _edge(s[start]):
        start += 1
    while end > start and _edge(s[end - 1]):
        end -= 1
    s = s[start:end]
    if not hyphens:
        s = s.replace("-", " ")
    s = " ".join(s.split())
    return s if case_sensitive else s.casefold()


class ShortText(ItemBase):
    type: Literal["short_text"]
    # The first is the key shown after submission; every entry is accepted (synonyms, plurals,
    # spellings), compared after normalizing.
    answers: list[Text] = Field(min_length=1)
    case_sensitive: StrictBool = False
    pattern: str | None = None  # also accepted: a full match of the normalized answer (hyphens kept or as spaces)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v


def accepts(m: ShortText, response: str) -> bool:
    """True when ``response`` is one of the item's answers, or matches its pattern, after normalizing."""
    given = canonical(response, m.case_sensitive)
    if any(given == canonical(a, m.case_sensitive) for a in m.answers):
        return True
    if m.pattern:
        flags = 0 if m.case_sensitive else re.IGNORECASE
        return any(re.fullmatch(m.pattern, form, flags)
                   for form in (canonical(response, m.case_sensitive, hyphens=True), given))
    return False


class ShortTextType(ItemType):
    name = "short_text"
    model = ShortText
    response_format = "a string"

    def build(self, v: Variant, calculated: Any) -> None:
        v.answer = v.model.answers[0]

    def rules(self, item: BankItem) -> list[Problem]:
        m, out, seen = item.model, [], {}
        for i, a in enumerate(m.answers):
            norm = canonical(a, m.case_sensitive)
            if not norm:
                out.append(item.problem(("answers", i), f"answer {a!r} is empty once normalized "
                                        "(punctuation and space around an answer are ignored)"))
            elif norm in seen:
                out.append(item.problem(("answers", i), f"answer {a!r} is the same as {seen[norm]!r} once normalized "
                                        "(case, hyphens, punctuation around it); drop it", "warning"))
            else:
                seen[norm] = a
        if m.pattern:
            flags = 0 if m.case_sensitive else re.IGNORECASE
            for i, a in enumerate(m.answers):
                if not any(re.fullmatch(m.pattern, f, flags) for f in (canonical(a, m.case_sensitive, True),
                                                                        canonical(a, m.case_sensitive))):
                    out.append(item.problem(("pattern",), f"the pattern does not match the answer {a!r}; "
                                            "patterns see the normalized answer (see banks/README.md)", "warning"))
                    break
        return out

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, str)

    def grade(self, v: Variant, response: Any) -> Outcome:
        if not isinstance(response, str) or not response.strip():
            raise FormatError("no answer given: type your answer")
        return (1.0 if accepts(v.model, response) else 0.0), "", None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        return form.get(field(q["id"]), "").strip() or None


TYPE = ShortTextType()
