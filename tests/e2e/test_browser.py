"""Browser end-to-end tests: Playwright driving Debian's Chromium against `quizengine serve`."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.live import LiveServer

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PASSWORD = "student-password"
TEACHER_PASSWORD = "teacher-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    banks = tmp / "banks"
    shutil.copytree(SAMPLE, banks)
    srv = LiveServer(tmp, banks)
    srv.add_class(["ann"], PASSWORD, TEACHER_PASSWORD)
    srv.start()
    srv.banks = banks
    yield srv
    srv.stop()


def login(page: Page, server: LiveServer, username: str, password: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def answer_everything(page: Page, key: dict[str, object]) -> None:
    """Answer each question from the key, with the mouse for some widgets and the keyboard for others."""
    for section in page.locator("section.question").all():
        qid, kind = section.get_attribute("data-id"), section.get_attribute("data-type")
        answer = key[qid]
        if kind == "single_choice":
            section.locator(f'input[value="{answer}"]').click()  # mouse
        elif kind == "multiple_select":
            for cid in answer:
                section.locator(f'input[value="{cid}"]').check()
        elif kind == "true_false":
            radio = section.locator(f'input[value="{"true" if answer else "false"}"]')
            radio.focus()
            page.keyboard.press("Space")  # keyboard
        elif kind == "short_text":
            section.locator("input").click()
            page.keyboard.type(str(answer))
        elif kind == "numeric":
            cells = section.locator("input.num")
            values = answer if isinstance(answer, list) else [answer]
            flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
            cells.first.click()
            for k, v in enumerate(flat):  # type each cell, Tab to the next (keyboard)
                page.keyboard.type(repr(v))
                if k < len(flat) - 1:
                    page.keyboard.press("Tab")
            page.keyboard.press("Tab")
        elif kind == "multipart":  # one numeric widget per part
            for pid, value in answer.items():
                values = value if isinstance(value, list) else [value]
                flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
                cells = section.locator(f'.part[data-part="{pid}"] input.num')
                for k, v in enumerate(flat):
                    cells.nth(k).fill(repr(v))
                cells.last.press("Tab")
        elif kind == "matching":
            for left, right in answer.items():
                section.locator(f'input[name="q-{qid}-{left}"][value="{right}"]').check()
        elif kind == "ordering":
            for pos, oid in enumerate(answer):
                for _ in range(10):
                    ids = section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)")
                    if ids.index(oid) == pos:
                        break
                    section.locator(f'li[data-id="{oid}"] button.move.up').click()
        else:
            raise AssertionError(kind)


def test_student_takes_the_quiz_reloads_and_sees_feedback(server, browser):
    page = browser.new_page()
    login(page, server, "ann", PASSWORD)
    card = page.locator("section.card", has_text="Every question type")
    card.get_by_role("button", name=re.compile("Start attempt")).click()
    expect(page.locator("section.question")).to_have_count(8)
    attempt_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    teacher = server.token("teacher", TEACHER_PASSWORD)
    status, key_data = server.api("GET", f"/api/v1/attempts/{attempt_id}/key", token=teacher)
    assert status == 200
    key = {q["id"]: q["answer"] for q in key_data["questions"]}
    answer_everything(page, key)
    # every change is autosaved: the navigator marks all 8 answered, each status says Saved
    expect(page.locator(".qnav a.answered")).to_have_count(8, timeout=15000)
    expect(page.locator(".status.ok")).to_have_count(8, timeout=15000)
    page.reload()
    for section in page.locator("section.question").all():
        qid, kind = section.get_attribute("data-id"), section.get_attribute("data-type")
        answer = key[qid]
        if kind == "single_choice":
            expect(section.locator(f'input[value="{answer}"]')).to_be_checked()
        elif kind == "multiple_select":
            for cid in answer:
                expect(section.locator(f'input[value="{cid}"]')).to_be_checked()
        elif kind == "true_false":
            expect(section.locator(f'input[value="{"true" if answer else "false"}"]')).to_be_checked()
        elif kind == "short_text":
            expect(section.locator("input")).to_have_value(str(answer))
        elif kind == "numeric":
            values = answer if isinstance(answer, list) else [answer]
            flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
            cells = section.locator("input.num")
            for k, v in enumerate(flat):
                assert float(cells.nth(k).input_value()) == pytest.approx(v)
        elif kind == "multipart":  # one numeric widget per part
            for pid, value in answer.items():
                values = value if isinstance(value, list) else [value]
                flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
                cells = section.locator(f'.part[data-part="{pid}"] input.num')
                for k, v in enumerate(flat):
                    assert float(cells.nth(k).input_value()) == pytest.approx(v)
        elif kind == "matching":
            for left, right in answer.items():
                expect(section.locator(f'input[name="q-{qid}-{left}"][value="{right}"]')).to_be_checked()
        elif kind == "ordering":
            assert section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)") == answer
    page.get_by_role("button", name="Save and finish…").click()
    expect(page.get_by_text("Every question has an answer.")).to_be_visible()
    page.get_by_role("button", name="Submit now").click()
    expect(page.locator("h1")).to_contain_text("8 / 8")
    expect(page.locator(".question.right")).to_have_count(8)
    assert page.get_by_text("Worked solution with your numbers").count() >= 1
    # the worked solution uses this student's own numbers: the dW entries of their variant
    status, attempt = server.api("GET", f"/api/v1/attempts/{attempt_id}", token=server.token("ann", PASSWORD))
    matrix = next(q for q in attempt["questions"] if q["type"] == "numeric" and len(q["shape"]) == 2)
    from quizengine.bank.params import fmt

    text = page.locator("body").inner_text()
    for row in key[matrix["id"]]:
        for v in row:
            assert fmt(v) in text
    page.close()


def test_instructor_previews_seeds_edits_banks_and_downloads_grades(server, browser, tmp_path):
    page = browser.new_page(accept_downloads=True)
    login(page, server, "teacher", TEACHER_PASSWORD)
    page.goto(server.url + "/instructor/banks/items/s-num-delta?seed=1")
    first = page.locator("section.card .prompt").inner_text()
    page.get_by_role("link", name="seed 2 →").click()
    second = page.locator("section.card .prompt").inner_text()
    assert first != second and re.findall(r"-?\d+\.\d+", first) != re.findall(r"-?\d+\.\d+", second)
    # an invalid save is refused, the error stands beside its line, the file is unchanged
    path = server.banks / "sample.yaml"
    before = path.read_text()
    page.goto(server.url + "/instructor/banks/edit/sample.yaml")
    text = page.locator("textarea").input_value()
    page.locator(".cm-content").click()  # the code editor over the textarea
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text.replace("answer: false", "answer: maybe", 1))
    page.get_by_role("button", name="Validate and save").click()
    expect(page.get_by_text("Not saved.")).to_be_visible()
    bad_line = next(i for i, line in enumerate(text.splitlines(), start=1) if "answer: false" in line)
    row = page.locator("tr.bad")
    expect(row.locator("td.ln")).to_have_text(str(bad_line))
    expect(row.locator("td.msg")).to_contain_text("valid boolean")
    assert path.read_text() == before
    # the grades CSV holds the student's score
    page.goto(server.url + "/instructor/quizzes/every-type/gradebook")
    with page.expect_download() as dl:
        page.get_by_role("link", name="plain", exact=True).click()
    target = tmp_path / "grades.csv"
    dl.value.save_as(target)
    rows = {r["username"]: r for r in csv.DictReader(io.StringIO(target.read_text()))}
    assert float(rows["ann"]["score"]) == 8.0 and rows["ann"]["percent"] == "100.00"
    page.close()
