"""The instructor's pages in Chromium (issue 11): the editor saves the shipped banks and links its
errors to their lines, the gradebook sorts, and axe-core finds no WCAG 2.1 AA violation on any page.

Screenshots of the editor (an error highlighted) and the gradebook go to test-artifacts/screenshots/
for a person to look at."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.e2e.axe import violations
from tests.live import LiveServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
QUIZ = "module-04-prep"
PASSWORD, TEACHER_PASSWORD = "student-password", "teacher-password"
STUDENTS = ["ann", "bob", "cyd"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("instructor-e2e")
    banks = tmp / "banks"
    shutil.copytree(ROOT / "banks", banks, ignore=shutil.ignore_patterns("README.md"))
    srv = LiveServer(tmp, banks)
    srv.add_class(STUDENTS, PASSWORD, TEACHER_PASSWORD)
    srv.start()
    srv.banks = banks  # type: ignore[attr-defined]
    teacher = srv.token("teacher", TEACHER_PASSWORD)
    srv.attempts = []  # type: ignore[attr-defined]
    for k, user in enumerate(STUDENTS[:2]):  # two submitted attempts, right to a different degree
        token = srv.token(user, PASSWORD)
        status, attempt = srv.api("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=token)
        assert status == 201, attempt
        _, key = srv.api("GET", f"/api/v1/attempts/{attempt['attempt_id']}/key", token=teacher)
        for q in key["questions"][: 12 - 6 * k]:
            srv.api("PUT", f"/api/v1/attempts/{attempt['attempt_id']}/responses/{q['id']}", {"response": q["answer"]},
                    token=token)
        assert srv.api("POST", f"/api/v1/attempts/{attempt['attempt_id']}/submit", token=token)[0] == 200
        srv.attempts.append(attempt["attempt_id"])  # type: ignore[attr-defined]
    status, _ = srv.api("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=srv.token("cyd", PASSWORD))
    assert status == 201  # cyd's attempt stays open: the reset page warns of it
    # a new version of an item the attempts drew, for the regrade pages
    item_id = next(q["item_id"] for q in key["questions"] if q["item_id"].startswith("vocab-"))
    data = yaml.safe_load((banks / "vocabulary.yaml").read_text())
    item = next(i for i in data["items"] if i["id"] == item_id)
    item["prompt"] += " (reworded)"
    (banks / "vocabulary.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    srv.cli("load-banks")
    srv.regrade_item = item_id  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.fixture
def page(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    p = context.new_page()
    p.errors = []  # type: ignore[attr-defined]
    # script errors and CSP refusals land here (a 4xx page's status is reported too: not an error here)
    p.on("console", lambda m: p.errors.append(m.text)
         if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.goto(server.url + "/login")
    p.get_by_label("Username").fill("teacher")
    p.get_by_label("Password").fill(TEACHER_PASSWORD)
    p.get_by_role("button", name="Log in").click()
    expect(p.locator("h1")).to_have_text("Quizzes")
    yield p
    context.close()


def shot(page: Page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_accessible(page: Page, what: str) -> None:
    found = violations(page)
    report = "\n".join(f"{v['id']} ({v['impact']}): {v['help']}: " + "; ".join(str(n["target"]) for n in v["nodes"][:5])
                       for v in found)
    assert found == [], f"{what}: {len(found)} WCAG 2.1 AA violations\n{report}"


@pytest.mark.parametrize("rel", ["backpropagation.yaml", "momentum-optimizers.yaml"])
def test_the_large_shipped_banks_save_unchanged_in_the_browser(server, page, rel):
    path = server.banks / rel
    before = path.read_bytes()
    page.goto(f"{server.url}/instructor/banks/edit/{rel}")
    expect(page.locator(".cm-editor")).to_be_visible()  # the code editor took over the textarea
    page.set_default_timeout(90_000)  # the first save checks all ~50 items on 200 seeds; later ones only what changed
    page.get_by_role("button", name="Validate and save").click()
    expect(page.locator(".flash")).to_contain_text(f"Saved {rel}", timeout=90_000)
    assert path.read_bytes() == before
    assert page.errors == []  # type: ignore[attr-defined]


def test_editor_errors_are_linked_to_their_highlighted_lines(server, page):
    rel = "vocabulary.yaml"
    before = (server.banks / rel).read_text()
    page.goto(f"{server.url}/instructor/banks/edit/{rel}")
    content = page.locator(".cm-content")
    expect(content).to_be_visible()
    content.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("colour: blue\n")  # line 1: a key no bank has
    # the text is changed: leaving asks first, and staying keeps it
    asked = []
    page.once("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    page.get_by_role("link", name="Cancel").click()
    assert asked == ["beforeunload"] and "/edit/" in page.url
    page.get_by_role("button", name="Validate and save").click()
    problems = page.locator("#problems")
    expect(problems).to_contain_text("Not saved.", timeout=60000)
    link = problems.locator("a.goto").first
    expect(link).to_contain_text(f"{rel}:1:")
    # the line is highlighted in the editor, with a lint marker and the message
    expect(page.locator(".cm-line.cm-problemLine").first).to_contain_text("colour: blue")
    expect(page.locator(".cm-lintRange-error").first).to_be_visible()
    expect(page.locator(".cm-gutter-lint .cm-lint-marker-error").first).to_be_visible()
    expect(page.locator("tr#line-1 td.msg")).to_contain_text("colour")
    # the link moves the cursor to its line
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    expect(page.locator(".cm-activeLine")).not_to_contain_text("colour")
    link.click()
    expect(page.locator(".cm-activeLine")).to_have_text("colour: blue")
    expect(page.locator(".cm-editor.cm-focused")).to_be_visible()
    assert (server.banks / rel).read_text() == before
    page.locator("#problems").scroll_into_view_if_needed()
    shot(page, "instructor-editor-error", full_page=False)
    assert_accessible(page, "editor with an error")
    # the editor scrolls sideways inside its own box, not the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_gradebook_sorts_and_summarises(server, page):
    page.goto(f"{server.url}/instructor/quizzes/{QUIZ}/gradebook")
    expect(page.locator(".summary")).to_contain_text("Median")
    expect(page.locator(".summary svg")).to_be_visible()
    width = page.locator("table#gradebook").bounding_box()["width"]
    assert width > 1000  # the whole window, not 832 px
    header = page.locator("th", has=page.get_by_role("button", name="%"))
    users = lambda: page.locator("#gradebook tbody tr td:first-child").all_inner_texts()  # noqa: E731
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert users()[:2] == ["bob", "ann"] and users()[-1] == "cyd"  # blanks last
    header.get_by_role("button").press("Enter")  # by keyboard too
    expect(header).to_have_attribute("aria-sort", "descending")
    assert users()[:2] == ["ann", "bob"]
    expect(page.locator(".sort-status")).to_have_text("Sorted by %, descending.")
    shot(page, "instructor-gradebook")
    assert page.errors == []  # type: ignore[attr-defined]


def test_every_instructor_page_passes_axe_at_wcag21_aa(server, page):
    ann_attempt = server.attempts[0]
    pages = {
        "home": "/instructor/",
        "settings": f"/instructor/quizzes/{QUIZ}/settings",
        "banks": "/instructor/banks/",
        "item page": "/instructor/banks/items/bp-hidden-delta?seed=3",
        "item page, bad seed": "/instructor/banks/items/bp-hidden-delta?seed=abc",
        "stress test": "/instructor/banks/items/bp-hidden-delta/stress",
        "editor": "/instructor/banks/edit/vocabulary.yaml",
        "history": "/instructor/banks/history/vocabulary.yaml",
        "gradebook": f"/instructor/quizzes/{QUIZ}/gradebook",
        "item analysis": f"/instructor/quizzes/{QUIZ}/analysis",
        "review of an attempt": f"/instructor/attempts/{ann_attempt}",
        "regrade": f"/instructor/regrade/{server.regrade_item}",
        "roster": "/instructor/roster",
    }
    for what, path in pages.items():
        page.goto(server.url + path)
        assert_accessible(page, what)
        if what == "banks":  # answered at once, the checks still running: their progress shows
            expect(page.locator("#bank-checks progress")).to_be_visible()
            shot(page, "instructor-banks-checking", full_page=False)
    # the forms' other states: errors listed, a regrade's preview and confirmation, a reset's question
    page.goto(f"{server.url}/instructor/quizzes/{QUIZ}/settings")
    page.get_by_label("Attempts allowed").fill("500")
    page.get_by_label("Time limit in minutes").fill("ten")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#problems li")).to_have_count(2)
    expect(page.get_by_label("Attempts allowed")).to_have_value("500")
    assert_accessible(page, "settings with errors")
    shot(page, "instructor-settings-with-errors")
    page.goto(f"{server.url}/instructor/roster")
    page.get_by_label("or paste it").fill("username,full_name,student_id,email\nann,,1,not-an-address\n")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#problems li")).to_have_count(3)
    assert_accessible(page, "roster with problems")
    shot(page, "instructor-roster-with-problems")
    page.get_by_role("link", name=re.compile(r"^Reset password\s+of cyd")).click()
    expect(page.locator(".problems")).to_contain_text("attempt in progress")
    assert_accessible(page, "password reset question")
    shot(page, "instructor-password-reset-question")
    page.goto(f"{server.url}/instructor/regrade/{server.regrade_item}")
    expect(page.locator("#version option[selected]")).to_contain_text("(current)")
    page.get_by_role("button", name="Show before / after").click()
    assert_accessible(page, "regrade preview")
    page.get_by_label("Reason").fill("checking the pages")
    page.get_by_role("button", name="Regrade…").click()
    expect(page.get_by_role("heading", name="Confirm the regrade")).to_be_visible()
    assert_accessible(page, "regrade confirmation")
    shot(page, "instructor-regrade-confirmation")
    assert page.errors == []  # type: ignore[attr-defined]


def test_roster_passwords_download_once(server, page, tmp_path):
    page.goto(f"{server.url}/instructor/roster")
    page.get_by_label("or paste it").fill("username,full_name,student_id,email\ndee,Dee D,9,dee@example.org\n")
    page.get_by_role("button", name="Import").click()
    link = page.get_by_role("link", name="Download the passwords (CSV, once)")
    with page.expect_download() as dl:
        link.click()
    target = tmp_path / "passwords.csv"
    dl.value.save_as(target)
    lines = target.read_text().splitlines()
    assert lines[0] == "username,password" and re.fullmatch(r"dee,[A-Za-z0-9][A-Za-z0-9_-]+", lines[1])
    assert lines[1].split(",")[1] in page.locator("table").first.inner_text()
    status, _ = server.api("POST", "/api/v1/auth/token", {"username": "dee", "password": lines[1].split(",")[1]})
    assert status == 200
    response = page.request.get(server.url + link.get_attribute("href"))
    assert response.status == 404  # taken once
