"""The bank list answers at once while every item is checked in the background (CI once timed out
waiting 30 s for a list that validated 285 items on 200 seeds inside the request)."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from quizengine.services import bank_checks

ITEM = "vocab-epoch-definition"


@pytest.fixture
def teacher(client, users):
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    return client


@pytest.fixture
def banks(app, tmp_path):
    """A private copy of the banks (a board is kept per folder, so each test starts with none)."""
    dst = tmp_path / "banks"
    shutil.copytree(app.config["BANKS"], dst)
    app.config["BANKS"] = str(dst)
    return dst


class Gate:
    """check_item, held back in the background thread until opened; counts the items it checked."""

    def __init__(self, real):
        self.real, self.open, self.calls = real, threading.Event(), []

    def __call__(self, item, seeds):
        if threading.current_thread().name.startswith("background"):
            assert self.open.wait(60), "the test never opened the gate"
        self.calls.append(item.id)
        return self.real(item, seeds)


@pytest.fixture
def gate(monkeypatch):
    g = Gate(bank_checks.check_item)
    monkeypatch.setattr(bank_checks, "check_item", g)
    yield g
    g.open.set()  # never leave a background thread waiting


def board(app):
    with app.app_context():
        return bank_checks.board(Path(app.config["BANKS"]), Path(app.config["INSTANCE"]) / "bank-checks",
                                 app.config["BANK_CHECK_SEEDS"])


def states(page: str) -> dict[str, str]:
    """item id -> the state its row shows."""
    rows = re.findall(r'<code>([\w-]+)</code></a></td>.*?<td class="state-(\w+)">', page, re.S)
    return dict(rows)


def test_the_list_answers_before_the_checks_finish_and_shows_them_when_they_do(app, teacher, banks, gate):
    page = teacher.get("/instructor/banks/").get_data(as_text=True)
    total = len(states(page))
    assert total > 200 and set(states(page).values()) == {"checking"}
    assert f"0 of {total} items checked" in page and "bank-checks.js" in page
    assert teacher.get("/instructor/banks/progress").get_json() == {"checked": 0, "total": total, "complete": False}
    gate.open.set()
    board(app).wait()
    assert teacher.get("/instructor/banks/progress").get_json() == {"checked": total, "total": total, "complete": True}
    page = teacher.get("/instructor/banks/").get_data(as_text=True)
    assert "checking" not in set(states(page).values()) and "bank-checks.js" not in page
    assert sorted(gate.calls) == sorted(states(page))  # every item checked once


def test_a_problem_found_by_the_checks_shows_on_the_list_and_the_item_page(app, teacher, banks, gate):
    path = banks / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text())
    entry = next(i for i in data["items"] if i["id"] == ITEM)
    entry.pop("explanation")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    page = teacher.get(f"/instructor/banks/items/{ITEM}").get_data(as_text=True)  # checked now, not waiting
    assert "no explanation" in page
    gate.open.set()
    board(app).wait()
    page = teacher.get("/instructor/banks/?state=warning").get_data(as_text=True)
    assert states(page).get(ITEM) == "warning" and "no explanation" in page


def test_stored_results_are_reused_and_an_edit_rechecks_only_the_item_it_changed(app, teacher, banks, gate):
    path = banks / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text())
    for later in data["items"][5:8]:
        later.pop("explanation")  # a warning each, at a place that the edit below will move
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    gate.open.set()
    teacher.get("/instructor/banks/")
    board(app).wait()
    everything = len(gate.calls)
    bank_checks._BOARDS.clear()  # as a restart, or another worker of the host, would start
    second = board(app)
    assert second.complete and len(gate.calls) == everything  # read from the instance folder
    old = "  prompt: In the Google Machine Learning Glossary, what is an **epoch**?\n"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, "  # a comment that moves every later item down a line\n" + old))
    edited = board(app)
    edited.wait()
    assert second.stale and edited.complete and gate.calls[everything:] == [ITEM]
    # the items after it were not checked again, but their problems point at their new lines
    ours = [i for i in edited.catalog.items.values() if i.path == str(path)]
    fresh = [p for i in ours for p in gate.real(i, edited.seeds)]
    assert len(fresh) == 3 and sorted(map(str, fresh)) == sorted(str(p) for i in ours for p in edited.checked[i.id])


def test_the_editor_checks_only_the_items_an_edit_changed(app, teacher, banks, gate):
    gate.open.set()
    text = (banks / "vocabulary.yaml").read_text()
    assert teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": text}).status_code == 302
    first = len(gate.calls)
    assert first == text.count("\n  - id: ")  # the first save checks every item of the file
    edited = text.replace("what is an **epoch**?", "what is one **epoch**?")
    assert teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": edited}).status_code == 302
    assert gate.calls[first:] == [ITEM] and (banks / "vocabulary.yaml").read_text() == edited
    broken = edited.replace("what is one **epoch**?", "what is {{nothing}} an **epoch**?")
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": broken})
    assert r.status_code == 422 and "refers to an undefined parameter" in r.get_data(as_text=True)


def test_a_changed_validator_invalidates_stored_results(app, teacher, banks, gate, monkeypatch):
    gate.open.set()
    board(app).wait()
    checked = len(gate.calls)
    bank_checks._BOARDS.clear()
    monkeypatch.setattr(bank_checks, "_code_stamp", "another validator")
    board(app).wait()
    assert len(gate.calls) == 2 * checked


def test_progress_counts_what_another_worker_stored(app, teacher, banks, gate):
    b = board(app)  # its background is held at the gate
    assert teacher.get("/instructor/banks/progress").get_json()["checked"] == 0
    for item in list(b.catalog.items.values())[:5]:  # as another worker's background stores them
        bank_checks.checked(item, b.keys[item.id], b.seeds, b.store)
    assert teacher.get("/instructor/banks/progress").get_json()["checked"] == 5
    page = teacher.get("/instructor/banks/").get_data(as_text=True)
    assert list(states(page).values()).count("checking") == b.total - 5
