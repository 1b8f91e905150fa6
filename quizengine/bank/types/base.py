"""What an item type is: one class holding its schema, variant building, response checks, form
parsing, grading and display (as CTFd's challenge types and PrairieLearn's element files do).

A subclass overrides what its type needs; the defaults fit a type whose response is one value.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from markupsafe import escape

from ..loader import BankItem, Problem
from ..params import fmt
from ..schema import ItemBase
from ..core import Variant, is_trivial, resolve
from ..solution import worked_solution

Outcome = tuple[float, str, str | None]  # (fraction of the points, feedback, the mistake it shows)
Namer = Callable[[Any], str]  # an id shown as its option's text


class ResponseRefused(ValueError):
    """A response refused before storage; ``status`` is the HTTP status (400, or 413 when too large)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def field(item_id: str, *parts: object) -> str:
    """The name of one form field of a question's widget: ``q-ID``, ``q-ID-0-1``."""
    return "-".join(["q", item_id, *map(str, parts)])


def numbers_text(v: Any) -> str:
    """Any stored value as text: numbers formatted, lists and objects spelt out."""
    if isinstance(v, list):
        return "[" + ", ".join(numbers_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {numbers_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        try:
            return fmt(v)
        except OverflowError:  # an integer beyond float64, stored before saves were checked
            return "(a number too large to show)"
    return str(v)


def short(x: str) -> str:
    """A value quoted for an error message, cut to 40 characters."""
    return repr(x if len(x) <= 40 else x[:37] + "...")


class ItemType:
    """One kind of item. ``name`` is the YAML ``type``; ``model`` its pydantic model."""

    name: ClassVar[str]
    model: ClassVar[type[ItemBase]]
    response_format: ClassVar[str]  # the API's response format, for the docs and error messages
    answer_in_explanation: ClassVar[bool] = False  # the explanation may use {{answer}}
    single_answer_path: ClassVar[bool] = True  # with ``calc``, the model's ``answer`` is one result path

    @property
    def template(self) -> str:
        """The student widget's template."""
        return f"student/items/{self.name}.html"

    @property
    def review_template(self) -> str | None:
        """The results page's template for a graded response, or None for the common one."""
        return None

    # ------------------------------------------------------------ variants
    def build(self, v: Variant, calculated: Any) -> None:
        """Set ``v.answer`` and ``v.payload``; ``calculated`` is the calculator's answer (with ``calc``)."""
        raise NotImplementedError

    def public(self, v: Variant) -> dict[str, Any]:
        """What a student sees of the variant beyond its prompt (option lists, the answer's shape)."""
        return {}

    def rules(self, item: BankItem) -> list[Problem]:
        """Lint rules of this type that need no variant."""
        return []

    def seed_rules(self, item: BankItem, seeds: int) -> list[Problem] | None:
        """Lint rules of a calculated item over ``seeds`` variants; None for the common ones (validate.py)."""
        return None

    def worked(self, v: Variant) -> str:
        """The worked solution of a calculated variant."""
        return worked_solution(v.task, v.result, v.model.answer, resolve(v.result, v.model.answer))

    def trivial(self, v: Variant) -> str | None:
        """Why a calculated variant makes the question trivial, or None."""
        return is_trivial(v.task, v.result, v.model.answer)

    # ------------------------------------------------------------ responses
    def json_ok(self, value: Any) -> bool:
        """The response has this type's JSON shape (see ``response_format``)."""
        raise NotImplementedError

    def misfit(self, v: Variant, value: Any) -> str | None:
        """Why a response of the right JSON type still doesn't fit this variant (ids, shape), or None."""
        return None

    def note(self, v: Variant, value: Any) -> str | None:
        """A format note kept with a fitting response the grader can't read yet; None when readable."""
        return None

    def save_view(self, v: Variant) -> Variant:
        """A stand-in for ``v`` holding only what ``misfit`` and ``note`` read (ids, shapes): what an
        autosave checks an answer against, small enough to keep for every question of a class."""
        return Variant(item=None, seed=0, kind=self)  # type: ignore[arg-type]

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        """The same save view, from what the student was shown (``Variant.public()``, as the rendering
        cache keeps it: the ids and shapes are there), without building the variant."""
        return Variant(item=None, seed=0, kind=self)  # type: ignore[arg-type]

    def key_of(self, v: Variant) -> dict[str, Any] | None:
        """What grading reads of the variant, as JSON (services/renderings keeps it, so that a submit
        grades without building the variant); None: the type keeps none (grading builds the variant)."""
        return None

    def from_key(self, item: BankItem, seed: int, key: dict[str, Any]) -> Variant:
        """A stand-in for the variant from ``key_of``'s JSON: what ``grade``, ``accepted`` and ``review``
        read (the answer, the payload), for a type whose ``key_of`` keeps one."""
        raise NotImplementedError

    def grade(self, v: Variant, response: Any) -> Outcome:
        """Compare a response with the key; raise FormatError when it can't be read."""
        raise NotImplementedError

    def grade_full(self, v: Variant, response: Any) -> tuple[Outcome, list[dict[str, Any]] | None]:
        """The outcome and, for a multi-part type, one result per part (None for one-part types)."""
        return self.grade(v, response), None

    # ------------------------------------------------------------ pages
    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        """The response from the plain form's fields (``form.get``/``getlist``); None when left blank."""
        return form.get(field(q["id"])) or None

    def blank_on_page(self, q: dict[str, Any], value: Any) -> bool:
        """True when the plain form's value is what the widget shows for no answer (nothing to save)."""
        return value is None

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        """A stored response as the widget can show it; None (blank) when it doesn't fit."""
        return value if isinstance(value, str) else None

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        """A response (never None) as plain text for a results page."""
        return numbers_text(value)

    def review(self, v: Variant, response: Any, result: dict[str, Any], points: float,
               view: dict[str, Any] | None = None) -> dict[str, Any]:
        """Extra fields of a graded question for the results page (``review_template`` shows them);
        ``view``: the variant's public view as rendered ahead (services/renderings), when at hand."""
        return {}

    def describe_html(self, q: dict[str, Any], value: Any, name: Namer, name_html: Namer) -> str:
        """A response (never None) as HTML for a results page: option texts with their math.

        ``name_html`` gives an option's rendered HTML (safe) from its id, ``name`` its plain text.
        """
        return str(escape(self.describe(q, value, name)))

    def accepted(self, v: Variant) -> str | None:
        """What the key accepts, in words, for a results page once feedback is shown (a range); or None."""
        return None

    # ------------------------------------------------------------ previews
    def preview(self, v: Variant) -> dict[str, Any]:
        """The preview's type-specific fields shown with the prompt (option lists and their feedback)."""
        return {}

    def preview_marking(self, v: Variant) -> dict[str, Any]:
        """The preview's fields on how a response is marked (a tolerance)."""
        return {}

    def answer_text(self, v: Variant) -> str:
        """The key as a line of a terminal preview."""
        return str(v.answer)

    def stress_key(self, v: Variant, answer: Any) -> str:
        """The key as one bar of the stress test's distribution."""
        return _show(answer)

    def stress_number(self, v: Variant, answer: Any) -> float | None:
        """The key as one number of the stress test's histogram, or None."""
        return None


def _show(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}->{x}" for k, x in v.items())
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt(v, 4)
    return str(v)
