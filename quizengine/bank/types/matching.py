"""``matching``: pair each term on the left with an option on the right (distractors allowed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import escape
from pydantic import Field

from ...parsing import FormatError
from ..core import Option, Variant, options_public
from ..params import shuffled
from ..schema import ItemBase, Strict, Text
from .base import ItemType, Namer, Outcome, field, numbers_text, short


class Pair(Strict):
    left: Text
    right: Text


class Matching(ItemBase):
    type: Literal["matching"]
    pairs: list[Pair] = Field(min_length=2)
    distractors: list[Text] = []


@dataclass
class MatchingPayload:
    lefts: list[Option]  # the terms, in the bank's order
    rights: list[Option]  # the options, shuffled


class MatchingType(ItemType):
    name = "matching"
    model = Matching
    response_format = "an object {left_id: right_id}"

    def build(self, v: Variant, calculated: Any) -> None:
        m = v.model
        lefts = [Option(f"l{i + 1}", p.left) for i, p in enumerate(m.pairs)]
        rights = [p.right for p in m.pairs] + list(m.distractors)
        order = shuffled(list(range(len(rights))), v.item.id, v.seed, "rights")
        v.payload = MatchingPayload(lefts, [Option(f"r{k + 1}", rights[i]) for k, i in enumerate(order)])
        v.answer = {f"l{i + 1}": f"r{order.index(i) + 1}" for i in range(len(m.pairs))}

    def save_view(self, v: Variant) -> Variant:
        p = v.payload
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=MatchingPayload([Option(o.id, "") for o in p.lefts], [Option(o.id, "") for o in p.rights]))

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=MatchingPayload([Option(o["id"], "") for o in q["lefts"]],
                                               [Option(o["id"], "") for o in q["rights"]]))

    def public(self, v: Variant) -> dict[str, Any]:
        return {"lefts": options_public(v.payload.lefts), "rights": options_public(v.payload.rights)}

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(e, str) for e in value.values())

    def misfit(self, v: Variant, value: Any) -> str | None:
        lefts, rights = [o.id for o in v.payload.lefts], [o.id for o in v.payload.rights]
        for left, right in value.items():
            if left not in lefts:
                return f"{short(left)} is not a term of this question (its terms are {', '.join(lefts)})"
            if right not in rights:
                return f"{short(right)} is not an option of this question (its options are {', '.join(rights)})"
        return None

    def grade(self, v: Variant, response: Any) -> Outcome:
        if not isinstance(response, dict):
            raise FormatError("match each term with one option")
        lefts, rights = {o.id for o in v.payload.lefts}, {o.id for o in v.payload.rights}
        for k, val in response.items():
            if k not in lefts or not isinstance(val, str) or val not in rights:
                raise FormatError("match each term with one of the options shown")
        right = sum(1 for k, val in v.answer.items() if response.get(k) == val)
        return right / len(v.answer), f"{right} of {len(v.answer)} pairs are right.", None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        pairs = {o["id"]: form.get(field(q["id"], o["id"]), "") for o in q["lefts"]}
        return {k: v for k, v in pairs.items() if v} or None

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else None

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        if isinstance(value, dict):
            return "; ".join(f"{name(k)} -> {name(v)}" for k, v in value.items())
        return numbers_text(value)

    def describe_html(self, q: dict[str, Any], value: Any, name: Namer, name_html: Namer) -> str:
        """The pairs as a table, one row per term in the question's order."""
        if not isinstance(value, dict):
            return str(escape(self.describe(q, value, name)))
        lefts = [o["id"] for o in q.get("lefts") or []] or list(value)
        rows = "".join(f"<tr><th scope=\"row\">{name_html(k)}</th><td>"
                       f"{name_html(value[k]) if k in value else '(no match)'}</td></tr>" for k in lefts)
        return ("<div class=\"scroll\"><table class=\"pairs\"><thead><tr><th scope=\"col\">Term</th>"
                f"<th scope=\"col\">Matched with</th></tr></thead><tbody>{rows}</tbody></table></div>")

    def preview(self, v: Variant) -> dict[str, Any]:
        return {key: [{"id": o.id, "text": o.text} for o in getattr(v.payload, key)] for key in ("lefts", "rights")}

    def answer_text(self, v: Variant) -> str:
        lt, rt = {o.id: o.text for o in v.payload.lefts}, {o.id: o.text for o in v.payload.rights}
        return "; ".join(f"{lt[k]} -> {rt[val]}" for k, val in v.answer.items())


TYPE = MatchingType()
