"""The registry of item types: one module each (schema, variant, response checks, form, grading,
display) plus its widget template ``templates/student/items/NAME.html``.

Everything else asks the registry: the bank schema's ``Item`` union, ``ITEM_TYPES``, the API's
response formats and its OpenAPI enum. A new type is one module, one template and one entry in
``TYPES`` below.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Union

from pydantic import Field

from ...constants import MAX_RESPONSE_BYTES
from ..core import Variant
from . import matching, multipart, multiple_select, numeric, ordering, short_text, single_choice, true_false
from .base import ItemType, ResponseRefused

TYPES: tuple[ItemType, ...] = (
    single_choice.TYPE, multiple_select.TYPE, true_false.TYPE, numeric.TYPE, short_text.TYPE, matching.TYPE,
    ordering.TYPE, multipart.TYPE,
)
REGISTRY: dict[str, ItemType] = {t.name: t for t in TYPES}
ITEM_TYPES: tuple[str, ...] = tuple(REGISTRY)
RESPONSE_FORMATS: dict[str, str] = {t.name: t.response_format for t in TYPES}

# The discriminated union a bank item is validated against (pydantic picks the model by `type`).
Item = Annotated[Union[tuple(t.model for t in TYPES)], Field(discriminator="type")]  # type: ignore[valid-type]


def item_type(name: str) -> ItemType:
    """The registered type called ``name`` (KeyError for an unknown one)."""
    return REGISTRY[name]


def check_response(v: Variant, value: Any) -> str | None:
    """Refuse (ResponseRefused) a response that does not fit the question; return a format note.

    Refused, never stored: more than MAX_RESPONSE_BYTES of JSON (413), the wrong JSON type, choice
    ids the variant doesn't have, lists of the wrong shape, numbers too long to read at a bounded
    cost (400). Kept with a note (the student can fix it; it scores 0 until then): numeric text that
    doesn't read as a number, such as ``abc`` or ``1,5``. (Characters and nesting that no response
    may hold are the caller's check: ``services.attempts.check_value``.)
    """
    if value is None:
        return None
    if len(json.dumps(value)) > MAX_RESPONSE_BYTES:
        raise ResponseRefused(413, f"the response is too large (at most {MAX_RESPONSE_BYTES} bytes as JSON)")
    kind = v.kind
    if not kind.json_ok(value):
        raise ResponseRefused(400, f"a {kind.name} response must be {kind.response_format}")
    problem = kind.misfit(v, value)
    if problem:
        raise ResponseRefused(400, problem)
    return kind.note(v, value)


__all__ = ["ITEM_TYPES", "Item", "ItemType", "MAX_RESPONSE_BYTES", "REGISTRY", "RESPONSE_FORMATS", "ResponseRefused",
           "TYPES", "check_response", "item_type"]
