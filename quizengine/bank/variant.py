"""One item under one seed: its numbers, rendered prompt, options, answer and worked solution.

The steps every item takes are here; what differs by type is asked of the item type (bank/types/).
"""

from __future__ import annotations

from .core import (Option, Variant, VariantError, buggy_answers, calculate, is_trivial, mistake_values, parse_path,
                   resolve, values_for)
from .loader import BankItem
from .params import ParamError, largest, noise_floor, render_text
from .schema import Calculated
from .types import item_type


def make_variant(item: BankItem, seed: int) -> Variant:
    """Build the variant of ``item`` for ``seed``; the same seed always gives the same variant."""
    m = item.model
    v = Variant(item=item, seed=seed, kind=item_type(m.type))
    if isinstance(m, Calculated) and (m.params or m.derived or m.calc):
        v.values = values_for(item, seed)
    calculated = None
    if getattr(m, "calc", None) is not None:
        v.spec, v.task, v.result, calculated = calculate(item, seed, v.values, v.kind.single_answer_path)
    v.scale = largest(v.values)
    try:
        with noise_floor(v.scale):
            v.prompt = render_text(m.prompt, v.values)
    except ParamError as e:
        raise VariantError(("prompt",), str(e)) from None
    v.kind.build(v, calculated)
    return v


__all__ = ["Option", "Variant", "VariantError", "buggy_answers", "calculate", "is_trivial", "make_variant",
           "mistake_values", "parse_path", "resolve", "values_for"]
