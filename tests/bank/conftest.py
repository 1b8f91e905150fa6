"""Fixtures over the small sample bank in tests/data/sample (one item of every type)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quizengine.bank.catalog import Catalog, load_catalog
from quizengine.bank.variant import Variant, make_variant

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    cat = load_catalog([SAMPLE])
    assert not cat.problems, [str(p) for p in cat.problems]
    return cat


@pytest.fixture(scope="session")
def variant(catalog):
    def make(item_id: str, seed: int = 0) -> Variant:
        return make_variant(catalog.items[item_id], seed)

    return make
