"""The bank list answers at once while every item is checked in the background (CI once timed out
waiting 30 s for a list that validated 285 items on 200 seeds inside the request)."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from quizengine.services import bank_checks

ITEM = "vocab-epoch-definition"
BANKS = Path(__file__).resolve().parents[2] / "banks"
SEEDS = 3  # the tests' BANK_CHECK_SEEDS (tests/web/conftest.py)


@pytest.fixture
def banks(banks_copy):
    """A private copy of the banks (a board is kept per folder, so each test starts with none)."""
    return banks_copy


@contextlib.contextmanager
def held(app):
    """Hold the host's check lock, as a child of another worker checking would: ours waits for it."""
    store = Path(app.config["INSTANCE"]) / "bank-checks"
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def shipped_checked(tmp_path_factory) -> Path:
    """A store holding every shipped item's results, checked once for the module by the child's own
    code (a process: it lowers its priority): the tests about what an edit rechecks start from it
    instead of each checking the 285 items again. (The first test checks them all from nothing.)"""
    store = tmp_path_factory.mktemp("shipped-checks")
    subprocess.run([sys.executable, "-c", "import sys; from quizengine.services.bank_checks import run; run(*sys.argv[1:])",
                    str(BANKS), str(store), str(SEEDS)], check=True, stdout=subprocess.DEVNULL, timeout=600)
    return store


def start_from(app, store: Path) -> None:
    """Put the stored results of ``store`` in the app's store, as an earlier run of the host left them
    (an item's key is its text, its validator and the seeds, not its folder)."""
    assert app.config["BANK_CHECK_SEEDS"] == SEEDS
    mine = Path(app.config["INSTANCE"]) / "bank-checks"
    mine.mkdir(parents=True, exist_ok=True)
    for f in store.glob("*.json"):
        shutil.copy(f, mine)


def checked_by_children(app) -> list[str]:
    """The items the check children checked, in order (each prints a line per item to checks.log)."""
    log = Path(app.config["INSTANCE"]) / "bank-checks" / "checks.log"
    return re.findall(r"^checked (\S+)$", log.read_text(), re.M) if log.exists() else []


def board(app):
    with app.app_context():
        return bank_checks.board(Path(app.config["BANKS"]), Path(app.config["INSTANCE"]) / "bank-checks",
                                 app.config["BANK_CHECK_SEEDS"])


def states(page: str) -> dict[str, str]:
    """item id -> the state its row shows."""
    rows = re.findall(r'<code>([\w-]+)</code></a></td>.*?<td class="state-(\w+)">', page, re.S)
    return dict(rows)


def test_the_list_answers_before_the_checks_finish_and_shows_them_when_they_do(app, teacher, banks):
    with held(app):
        page = teacher.get("/instructor/banks/").get_data(as_text=True)
        total = len(states(page))
        assert total > 200 and set(states(page).values()) == {"checking"}
        assert f"0 of {total} items checked" in page and "bank-checks.js" in page
        assert teacher.get("/instructor/banks/progress").get_json() == {"checked": 0, "total": total, "complete": False}
    board(app).wait()
    assert teacher.get("/instructor/banks/progress").get_json() == {"checked": total, "total": total, "complete": True}
    page = teacher.get("/instructor/banks/").get_data(as_text=True)
    assert "checking" not in set(states(page).values()) and "bank-checks.js" not in page
    assert sorted(checked_by_children(app)) == sorted(states(page))  # every item checked once


def test_a_problem_found_by_the_checks_shows_on_the_list_and_the_item_page(app, teacher, banks, shipped_checked):
    start_from(app, shipped_checked)
    path = banks / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text())
    entry = next(i for i in data["items"] if i["id"] == ITEM)
    entry.pop("explanation")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with held(app):
        page = teacher.get(f"/instructor/banks/items/{ITEM}").get_data(as_text=True)  # checked now, not waiting
        assert "no explanation" in page
    board(app).wait()
    page = teacher.get("/instructor/banks/?state=warning").get_data(as_text=True)
    assert states(page).get(ITEM) == "warning" and "no explanation" in page


def test_stored_results_are_reused_and_an_edit_rechecks_only_the_item_it_changed(app, teacher, banks, shipped_checked):
    start_from(app, shipped_checked)  # the three items edited below are checked again, the others read
    path = banks / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text())
    for later in data["items"][5:8]:
        later.pop("explanation")  # a warning each, at a place that the edit below will move
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    teacher.get("/instructor/banks/")
    board(app).wait()
    everything = len(checked_by_children(app))
    assert 0 < everything <= len(data["items"])  # at most the rewritten file's items: the others were stored
    bank_checks._BOARDS.clear()  # as a restart, or another worker of the host, would start
    second = board(app)
    assert second.complete and second.runner is None  # read from the instance folder: no child
    old = "  prompt: In the Google Machine Learning Glossary, what is an **epoch**?\n"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, "  # a comment that moves every later item down a line\n" + old))
    edited = board(app).wait()
    assert edited.complete and checked_by_children(app)[everything:] == [ITEM]
    # the items after it were not checked again, but their problems point at their new lines
    ours = [i for i in edited.catalog.items.values() if i.path == str(path)]
    fresh = [p for i in ours for p in bank_checks.check_item(i, edited.seeds)]
    assert len(fresh) == 3 and sorted(map(str, fresh)) == sorted(str(p) for i in ours for p in edited.checked[i.id])


def test_the_editor_checks_only_the_items_an_edit_changed(app, teacher, banks, monkeypatch):
    calls = []
    real = bank_checks.check_item
    monkeypatch.setattr(bank_checks, "check_item", lambda item, seeds: calls.append(item.id) or real(item, seeds))
    text = (banks / "vocabulary.yaml").read_text()
    assert teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": text}).status_code == 302
    assert len(calls) == text.count("\n  - id: ")  # the first save checks every item of the file
    first = len(calls)
    edited = text.replace("what is an **epoch**?", "what is one **epoch**?")
    assert teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": edited}).status_code == 302
    assert calls[first:] == [ITEM] and (banks / "vocabulary.yaml").read_text() == edited
    broken = edited.replace("what is one **epoch**?", "what is {{nothing}} an **epoch**?")
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": broken})
    assert r.status_code == 422 and "refers to an undefined parameter" in r.get_data(as_text=True)


def test_an_items_key_follows_its_text_the_validator_and_the_seeds_not_its_place(app, banks, tmp_path, monkeypatch):
    items = list(bank_checks.load_catalog([banks]).items.values())
    keys = bank_checks.item_keys(items, 3)
    moved = tmp_path / "elsewhere"
    shutil.copytree(banks, moved)
    assert bank_checks.item_keys(list(bank_checks.load_catalog([moved]).items.values()), 3) == keys
    assert len({k for k, _ in keys.values()}) == len(items)  # no two items share one
    assert all(keys[i][0] != k for i, (k, _) in bank_checks.item_keys(items, 4).items())
    monkeypatch.setattr(bank_checks, "_code_stamp", "another validator")
    assert all(keys[i][0] != k for i, (k, _) in bank_checks.item_keys(items, 3).items())


def test_progress_counts_what_another_worker_stored(app, teacher, banks):
    with held(app):
        b = board(app)  # its child waits for the lock
        assert teacher.get("/instructor/banks/progress").get_json()["checked"] == 0
        for item in list(b.catalog.items.values())[:5]:  # as another worker's child stores them
            bank_checks.checked(item, b.keys[item.id], b.seeds, b.store)
        assert teacher.get("/instructor/banks/progress").get_json()["checked"] == 5
        page = teacher.get("/instructor/banks/").get_data(as_text=True)
        assert list(states(page).values()).count("checking") == b.total - 5
