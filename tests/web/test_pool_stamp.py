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


def test_loading_the_same_banks_again_keeps_the_stamp_and_a_change_moves_it(db, tmp_path):
    from quizengine.services.draw import STAMP

    (tmp_path / "quizzes").mkdir()
    (tmp_path / "quizzes" / "stamp.yaml").write_text(QUIZ)
    (tmp_path / "stamp.yaml").write_text(bank("A one", "B one"))
    stamps = []
    try:
        for change in (None, None, "quiz", None, "item"):
            if change == "quiz":
                (tmp_path / "quizzes" / "stamp.yaml").write_text(QUIZ.replace("title: Stamp", "title: Stamp, renamed"))
            elif change == "item":
                (tmp_path / "stamp.yaml").write_text(bank("A one", "B two"))
            with db.write() as s:
                load_banks(s, tmp_path)
            with db.read() as s:
                stamps.append(tuple(s.execute(STAMP).one()))
    finally:
        with db.write() as s:
            load_banks(s, BANKS)
    assert stamps[1] == stamps[0]  # every `serve` start loads the banks: the plans made ahead stay valid
    assert stamps[2][2] > stamps[1][2] and stamps[2][:2] == stamps[1][:2]  # the quiz's title: stamped
    assert stamps[3] == stamps[2]
    assert stamps[4][2] > stamps[3][2] and stamps[4][1] != stamps[3][1]  # a new item version
