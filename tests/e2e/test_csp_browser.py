"""The security headers in a real browser: nothing the CSP blocks on our pages, and no framing."""

from __future__ import annotations

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
WATCH = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
         "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-csp")
    banks = tmp / "banks"
    shutil.copytree(SAMPLE, banks)
    srv = LiveServer(tmp, banks)
    srv.add_class(["ann"], PASSWORD, TEACHER_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


def watched_page(browser) -> tuple[Page, list[str]]:
    """A page whose CSP violations (as events and as console messages) are collected."""
    page = browser.new_page()
    page.add_init_script(WATCH)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return page, errors


def login(page: Page, server: LiveServer, username: str, password: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_threat_csp_breaks_nothing_on_the_attempt_page(server, browser):
    page, errors = watched_page(browser)
    login(page, server, "ann", PASSWORD)
    page.locator("section.card", has_text="Every question type").get_by_role(
        "button", name=re.compile("Start attempt")).click()
    expect(page.locator("section.question")).to_have_count(8)
    # the matrix widget lays out its columns from a class, not an inline style
    grid = page.locator("section.question .grid").last
    columns = int(grid.get_attribute("data-shape").split(",")[-1])
    assert len(grid.evaluate("g => getComputedStyle(g).gridTemplateColumns").split()) == columns
    # the autosave script runs under the policy
    text = page.locator("section.question[data-type=short_text] input")
    text.fill("anything")
    text.press("Tab")
    expect(page.locator("section.question[data-type=short_text] .status.ok")).to_have_count(1, timeout=15000)
    assert page.evaluate("window.__csp") == [] and errors == []
    page.close()


def test_threat_csp_breaks_nothing_on_instructor_pages(server, browser):
    page, errors = watched_page(browser)
    login(page, server, "teacher", TEACHER_PASSWORD)
    for path in ("/instructor/", "/instructor/banks/", "/instructor/banks/items/s-num-delta?seed=1",
                 "/instructor/quizzes/every-type/analysis", "/instructor/roster", "/instructor/banks/edit/sample.yaml"):
        page.goto(server.url + path)
        assert page.evaluate("window.__csp") == [], path
    assert errors == []
    page.close()


def test_threat_framing_of_the_submit_and_reset_pages(server, browser):
    page = browser.new_page()
    login(page, server, "teacher", TEACHER_PASSWORD)
    # the roster links to each student's reset page, whose button resets the password
    page.goto(server.url + "/instructor/roster")
    reset = page.get_by_role("link", name=re.compile("^Reset password")).first.get_attribute("href")
    # frame the reset page and its button; frame-ancestors 'none' refuses even our own origin, so
    # a page of ours stands in for the attacker's
    buttons = page.evaluate("""path => new Promise(done => {
        const f = document.createElement('iframe');
        f.onload = () => { let doc = null; try { doc = f.contentDocument; } catch (e) {}
                           done(doc && doc.location.href !== 'about:blank' ? doc.querySelectorAll('button').length : -1); };
        f.src = path;
        document.body.appendChild(f);
    })""", reset)
    assert buttons == -1  # refused: nothing of the page is rendered in the frame
    # the same page on its own has the button
    page.goto(server.url + reset)
    expect(page.get_by_role("button", name=re.compile("^Reset the password"))).to_have_count(1)
    page.close()
