"""``single_choice``: one option is right. Its options are written out, or computed from the
calculator's answer, buggy answers (mistakes) and decoys."""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Literal

import numpy as np
from pydantic import Field, StrictBool, model_validator

from ...calc.mistakes import DESCRIPTIONS
from ...parsing import FormatError
from ...tolerance import numbers_match
from ..choices import computed_options, option_count
from ..core import Option, Variant, VariantError, mistake_values, options_public
from ..loader import BankItem, Problem
from ..params import shuffled
from ..schema import DEFAULT_TOLERANCE, Calculated, Choice, ItemBase, Tolerance
from .base import ItemType, Namer, Outcome, short


class SingleChoice(ItemBase, Calculated):
    type: Literal["single_choice"]
    choices: list[Choice] | None = Field(default=None, min_length=2)
    shuffle: StrictBool = True
    answer: str | None = None  # a path into the calculator result, with `calc`
    digits: int = Field(default=4, ge=1, le=12)
    tolerance: Tolerance = DEFAULT_TOLERANCE

    @model_validator(mode="after")
    def _choices_or_calc(self) -> "SingleChoice":
        if self.choices is None and self.calc is None:
            raise ValueError("needs 'choices', or 'calc' + 'answer' + 'mistakes' to compute its options")
        if self.choices is not None and self.calc is not None:
            raise ValueError("give 'choices' or 'calc', not both")
        if self.calc is not None and (self.answer is None or not self.mistakes):
            raise ValueError("computed options need 'answer' (a result path) and at least one entry in 'mistakes'")
        return self


@dataclass
class ChoicePayload:
    choices: list[Option]
    feedback: dict[str, str] = dc_field(default_factory=dict)  # option id -> its feedback
    # Computed options: option id -> (where it comes from: "key", a mistake or "decoy N", its exact value).
    sources: dict[str, tuple[str, float]] = dc_field(default_factory=dict)
    mistakes: dict[str, str] = dc_field(default_factory=dict)  # mistake -> the option showing it


class ChoiceType(ItemType):
    """Options with ids; single_choice picks one, multiple_select (its subclass) several."""

    def build(self, v: Variant, calculated: Any) -> None:
        m = v.model
        order = shuffled(m.choices, v.item.id, v.seed, "choices") if m.shuffle else list(m.choices)
        choices = [Option(f"c{i + 1}", c.text) for i, c in enumerate(order)]
        correct = [opt.id for opt, c in zip(choices, order) if c.correct]
        v.answer = correct[0] if self.name == "single_choice" and correct else correct
        v.payload = ChoicePayload(choices, {opt.id: c.feedback for opt, c in zip(choices, order) if c.feedback})

    def save_view(self, v: Variant) -> Variant:
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=ChoicePayload([Option(o.id, "") for o in v.payload.choices]))

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        return Variant(item=None, seed=0, kind=self,  # type: ignore[arg-type]
                       payload=ChoicePayload([Option(o["id"], "") for o in q["choices"]]))

    def public(self, v: Variant) -> dict[str, Any]:
        return {"choices": options_public(v.payload.choices)}

    def rules(self, item: BankItem) -> list[Problem]:
        m, out = item.model, []
        choices = m.choices
        if not choices:
            return out
        ids = [c.id for c in choices]
        for i, cid in enumerate(ids):
            if cid in ids[:i]:
                out.append(item.problem(("choices", i, "id"), f"choice id {cid!r} is used twice"))
        return out + self.correct_rules(item, [c.id for c in choices if c.correct])

    def correct_rules(self, item: BankItem, correct: list[str]) -> list[Problem]:
        if len(correct) == 1:
            return []
        what = "no correct choice" if not correct else f"{len(correct)} correct choices ({', '.join(correct)})"
        return [item.problem(("choices",), f"has {what}; a single_choice item needs exactly one "
                             "(use multiple_select for several)")]

    def picked(self, value: Any) -> list[str]:
        return [value]

    def misfit(self, v: Variant, value: Any) -> str | None:
        ids = [c.id for c in v.payload.choices]
        picked = self.picked(value)
        unknown = [p for p in picked if p not in ids]
        if unknown:
            return f"{short(unknown[0])} is not an option of this question (its options are {', '.join(ids)})"
        if len(set(picked)) != len(picked):
            return "each option can be ticked once only"
        return None

    def preview(self, v: Variant) -> dict[str, Any]:
        out: dict[str, Any] = {"choices": [{"id": o.id, "text": o.text} for o in v.payload.choices]}
        if v.payload.feedback:
            out["choice_feedback"] = v.payload.feedback
        return out

    def answer_text(self, v: Variant) -> str:
        ids = [v.answer] if isinstance(v.answer, str) else v.answer
        texts = {o.id: o.text for o in v.payload.choices}
        return "; ".join(f"{i} ({texts[i]})" for i in ids)

    def stress_key(self, v: Variant, answer: Any) -> str:
        texts = {c.id: c.text for c in v.payload.choices}
        ids = answer if isinstance(answer, list) else [answer]
        return "; ".join(texts.get(i, str(i)) for i in ids)


class SingleChoiceType(ChoiceType):
    name = "single_choice"
    model = SingleChoice
    response_format = "a choice id (string)"

    def build(self, v: Variant, calculated: Any) -> None:
        if v.model.calc is None:
            super().build(v, calculated)
        else:
            _computed_choices(v, v.model, calculated)

    def json_ok(self, value: Any) -> bool:
        return isinstance(value, str)

    def grade(self, v: Variant, response: Any) -> Outcome:
        ids = [c.id for c in v.payload.choices]
        if not isinstance(response, str) or response not in ids:
            raise FormatError("choose one of the options")
        mistake = next((m for m, cid in v.payload.mistakes.items() if cid == response), None)
        return (1.0 if response == v.answer else 0.0), v.payload.feedback.get(response, ""), mistake

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        return name(value)

    def describe_html(self, q: dict[str, Any], value: Any, name: Namer, name_html: Namer) -> str:
        return name_html(value)


def _computed_choices(v: Variant, m: SingleChoice, answer: Any) -> None:
    """Options from the key, the buggy answers the tolerance tells apart, and decoys."""
    if np.ndim(answer) != 0:
        raise VariantError(("answer",), "computed options need a scalar answer")
    wrong = {k: float(value) for k, value in mistake_values(v.item, v.task, answer, m.tolerance).items()}
    try:
        options = computed_options(float(answer), wrong, option_count(len(m.mistakes)), m.digits,
                                   (v.item.id, v.seed), lambda x: not numbers_match(x, answer, m.tolerance))
    except ValueError as e:
        raise VariantError(("mistakes",), str(e)) from None
    p = ChoicePayload([Option(f"c{i + 1}", text) for i, (_, _, text) in enumerate(options)])
    for opt, (source, value, _) in zip(p.choices, options):
        p.sources[opt.id] = (source, value)
        if source == "key":
            v.answer = opt.id
        elif source in wrong:  # a mistake not among the options can never be picked
            p.feedback[opt.id] = f"This is what you get if you {DESCRIPTIONS[source]}."
            p.mistakes[source] = opt.id
    v.payload = p


TYPE = SingleChoiceType()
