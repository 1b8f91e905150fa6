"""The items a start draws from are cached per process under a stamp read from the database at every
start: any bank load, on this host or another one, must change the stamp."""

from __future__ import annotations

from quizengine.services.banks import load_banks
from quizengine.services.draw import current_items
from tests.web.conftest import BANKS

QUIZ = "id: stamp-quiz\ntitle: Stamp\nslots:\n  - {topic: stamp, count: 2}\n"


def bank(a: str, b: str) -> str:
    return ("topic: stamp\ntitle: Stamp\nitems:\n"
            f"  - {{id: stamp-a, type: true_false, prompt: '{a}', answer: true}}\n"
            f"  - {{id: stamp-b, type: true_false, prompt: '{b}', answer: true}}\n")


def test_a_load_that_keeps_the_sum_of_version_ids_still_refreshes_the_pool(db, tmp_path):
    (tmp_path / "quizzes").mkdir()
    (tmp_path / "quizzes" / "stamp.yaml").write_text(QUIZ)
    versions = []
    try:
        # a1 b1 (ids i, i+1), then a2 (i+2), then a1 again (back to i) with b2 (i+3): the same count and
        # the same sum of ids as before the last load
        for a, b in [("A one", "B one"), ("A two", "B one"), ("A one", "B two")]:
            (tmp_path / "stamp.yaml").write_text(bank(a, b))
            with db.write() as s:
                load_banks(s, tmp_path)
            with db.read() as s:
                pool = {p.item_id: p.item_version_id for p in current_items(s)}
            versions.append(pool)
    finally:  # PostgreSQL keeps the item tables across tests: the shipped banks are current again
        with db.write() as s:
            load_banks(s, BANKS)
    first, second, third = versions
    assert second["stamp-a"] > second["stamp-b"] > first["stamp-a"]
    assert third["stamp-a"] == first["stamp-a"]  # the revert brought back the stored version
    assert third["stamp-b"] > second["stamp-a"]  # the new version of b, not the cached old one
    assert sum(third.values()) == sum(second.values())
