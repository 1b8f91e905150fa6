"""The item-type registry: every type has its module, template and docs, and checks responses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quizengine.bank.types import ITEM_TYPES, REGISTRY, ResponseRefused, check_response
from quizengine.bank.types.numeric import NumericPayload
from quizengine.bank.types.single_choice import ChoicePayload
from quizengine.web.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_TYPES = ("single_choice", "multiple_select", "true_false", "numeric", "short_text", "matching", "ordering",
                  "multipart")  # multipart: CONTRACT section 3a


def test_the_registry_holds_the_contract_types_in_order():
    assert ITEM_TYPES == CONTRACT_TYPES
    assert all(REGISTRY[name].name == name and REGISTRY[name].model.model_fields["type"].annotation.__args__ == (name,)
               for name in ITEM_TYPES)


def test_every_type_has_its_widget_template_and_no_template_is_orphaned():
    folder = ROOT / "templates" / "student" / "items"
    assert {p.stem for p in folder.glob("*.html")} == set(ITEM_TYPES)
    for t in REGISTRY.values():
        assert (ROOT / "templates" / t.template).is_file()


def test_bank_docs_have_one_section_per_type():
    text = (ROOT / "banks" / "README.md").read_text()
    section = text.split("## The eight types", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^### `([a-z_]+)`", section, re.M) == list(ITEM_TYPES)


def test_openapi_type_enum_and_response_formats_come_from_the_registry():
    doc = openapi_document()
    question = doc["components"]["schemas"]["Question"]["properties"]
    assert question["type"]["enum"] == list(ITEM_TYPES)
    described = question["response"]["description"]
    for t in REGISTRY.values():
        assert f"{t.name}: {t.response_format}" in described


# -- checking a response before it is stored (the sample bank has one item of every type)

@pytest.mark.parametrize("item_id,value,status,message", [
    # the wrong JSON type: the message states the type's format
    ("s-single", ["c1"], 400, r"a single_choice response must be a choice id \(string\)"),
    ("s-multi", "c1", 400, "a multiple_select response must be a list of choice ids"),
    ("s-tf", "yes", 400, "a true_false response must be true or false"),
    ("s-num-static", {"x": 1}, 400, "a numeric response must be a number, a numeric string"),
    ("s-text", 3, 400, "a short_text response must be a string"),
    ("s-match", ["l1"], 400, "a matching response must be an object"),
    ("s-order", "o1", 400, "an? ordering response must be a list of ids in order"),
    # the right type, but not this variant's ids or shape
    ("s-single", "c9", 400, "'c9' is not an option of this question"),
    ("s-multi", ["c1", "c1"], 400, "each option can be ticked once only"),
    ("s-match", {"l9": "r1"}, 400, "'l9' is not a term of this question"),
    ("s-order", ["o1"], 400, "an ordering lists every entry once"),
    ("s-num-static", [1, 2], 400, "this answer is one number, not a list"),
    ("s-num-matrix", [1, 2, 3, 4], 400, "this answer is a 2 x 2 matrix"),
    # a number too long to read at a bounded cost, and more than 8 KiB of JSON
    ("s-num-static", "1" * 51, 400, "not saved: .* too long a number"),
    ("s-text", "x" * 9000, 413, "the response is too large"),
])
def test_refused_responses(variant, item_id, value, status, message):
    with pytest.raises(ResponseRefused, match=message) as e:
        check_response(variant(item_id), value)
    assert e.value.status == status


@pytest.mark.parametrize("item_id,value,note", [
    ("s-single", "c1", None), ("s-multi", [], None), ("s-tf", False, None), ("s-text", "anything", None),
    ("s-match", {}, None), ("s-order", ["o4", "o3", "o2", "o1"], None), ("s-num-static", None, None),
    ("s-num-static", "0.25", None), ("s-num-static", "1/4", None),
    ("s-num-static", "abc", "'abc' is not a number"),  # kept with a note: the student can fix it
    ("s-num-static", "1,5", "use a dot as the decimal separator"),
])
def test_accepted_responses_and_format_notes(variant, item_id, value, note):
    got = check_response(variant(item_id), value)
    assert got is None if note is None else note in got


def test_each_type_keeps_its_own_variant_payload(variant):
    numeric, computed = variant("s-num-delta", 11), variant("s-computed-choice", 1)
    assert isinstance(numeric.payload, NumericPayload) and numeric.payload.shape == ()
    assert all(isinstance(x, float) for x in numeric.payload.mistakes.values())  # numbers
    assert isinstance(computed.payload, ChoicePayload)
    assert set(computed.payload.mistakes.values()) <= {c.id for c in computed.payload.choices}  # option ids
    assert variant("s-tf").payload is None and variant("s-text").payload is None
    assert variant("s-num-matrix", 2).payload.shape == (2, 2)
