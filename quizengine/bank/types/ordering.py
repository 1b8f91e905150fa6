"""``ordering``: put the entries in order; credit for the longest run already in order."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import escape
from pydantic import Field

from ...parsing import FormatError
from ..core import Option, Variant, options_public
from ..params import shuffled
from ..schema import ItemBase, Text
from .base import ItemType, Namer, Outcome, field, numbers_text


class Ordering(ItemBase):
    type: Literal["ordering"]
    sequence: list[Text] = Field(min_length=2)


@dataclass
class OrderingPayload:
    options: list[Option]  # the entries as shown: shuffled, never already in order


def longest_increasing_run(seq: list[int]) -> int:
    """Length of the longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    for x in seq:
        i = bisect.bisect_left(tails, x)
        tails[i:i + 1] = [x]
    return len(tails)


class OrderingType(ItemType):
    name = "ordering"
    model = Ordering
    response_format = "a list of ids in order"

    def build(self, v: Variant, calculated: Any) -> None:
        n = len(v.model.sequence)
        order = list(range(n))
        for attempt in range(20):  # never show the items already in order
            order = shuffled(list(range(n)), v.item.id, v.seed, "order", attempt)
            if order != list(range(n)):
                break
        v.payload = OrderingPayload([Option(f"o{k + 1}", v.model.sequence[i]) for k, i in enumerate(order)])
        v.answer = [f"o{order.index(i) + 1}" for i in range(n)]

    def save_view(self, v: Variant) -> Variant:
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=OrderingPayload([Option(o.id, "") for o in v.payload.options]))

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=OrderingPayload([Option(o["id"], "") for o in q["options"]]))

    def public(self, v: Variant) -> dict[str, Any]:
        return {"options": options_public(v.payload.options)}

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(e, str) for e in value)

    def misfit(self, v: Variant, value: Any) -> str | None:
        ids = [o.id for o in v.payload.options]
        if sorted(value) != sorted(ids):
            return f"an ordering lists every entry once: {', '.join(sorted(ids))}, in your order"
        return None

    def grade(self, v: Variant, response: Any) -> Outcome:
        ids = [o.id for o in v.payload.options]
        if not isinstance(response, list) or sorted(map(str, response)) != sorted(ids) or len(set(response)) != len(ids):
            raise FormatError("put every entry in order, each exactly once")
        rank = {cid: i for i, cid in enumerate(v.answer)}
        run = longest_increasing_run([rank[r] for r in response])
        return (run - 1) / (len(ids) - 1), "", None

    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        ranks = []
        for pos, o in enumerate(q["options"]):
            raw = form.get(field(q["id"], o["id"]), "").strip()
            try:
                ranks.append((float(raw), pos, o["id"]))
            except ValueError:
                return None
        return [oid for _, _, oid in sorted(ranks)]

    def blank_on_page(self, q: dict[str, Any], value: Any) -> bool:
        # An unanswered ordering is shown in its shuffled order (never the key): sent back unmoved, it
        # is no answer, so the plain Save doesn't store it as one.
        return value is None or value == [o["id"] for o in q["options"]]

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        if not isinstance(value, list):
            return None
        ids = [o["id"] for o in q["options"]]
        known = list(dict.fromkeys(v for v in value if isinstance(v, str) and v in ids))
        return known + [i for i in ids if i not in known]

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        if isinstance(value, list):
            return " -> ".join(name(v) for v in value)
        return numbers_text(value)

    def describe_html(self, q: dict[str, Any], value: Any, name: Namer, name_html: Namer) -> str:
        if isinstance(value, list):
            return "<ol class=\"answer-list\">" + "".join(f"<li>{name_html(v)}</li>" for v in value) + "</ol>"
        return str(escape(self.describe(q, value, name)))

    def preview(self, v: Variant) -> dict[str, Any]:
        return {"options": [{"id": o.id, "text": o.text} for o in v.payload.options]}

    def answer_text(self, v: Variant) -> str:
        texts = {o.id: o.text for o in v.payload.options}
        return " -> ".join(texts[i] for i in v.answer)


TYPE = OrderingType()
