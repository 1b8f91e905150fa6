"""The student's pages in Chromium (issue 11): a 390 px phone run, a keyboard-only run, axe-core at
WCAG 2.1 AA, the math font, the countdown, unreadable answers; screenshots for a person to look at
in test-artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.axe import WCAG_21_AA
from tests.live import LiveServer

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "student-password"
TEACHER_PASSWORD = "teacher-password"
STUDENTS = ("ann", "bob", "cid", "dee", "eve", "fay")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-student")
    banks = tmp / "banks"
    shutil.copytree(DATA / "sample", banks)
    shutil.copy(DATA / "ux" / "ux.yaml", banks)
    for quiz in (DATA / "ux" / "quizzes").iterdir():
        shutil.copy(quiz, banks / "quizzes")
    srv = LiveServer(tmp, banks)
    srv.add_class(STUDENTS, PASSWORD, TEACHER_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


def login(page: Page, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My quizzes")).to_be_visible()


def start(page: Page, title: str) -> int:
    page.locator("section.card", has_text=title).get_by_role("button", name=re.compile("Start attempt")).click()
    expect(page.locator("section.question").first).to_be_visible()
    return int(page.url.split("#")[0].rstrip("/").rsplit("/", 1)[1])


def key_of(server: LiveServer, attempt_id: int) -> dict[str, object]:
    status, data = server.api("GET", f"/api/v1/attempts/{attempt_id}/key", token=server.token("teacher", TEACHER_PASSWORD))
    assert status == 200, data
    return {q["id"]: q["answer"] for q in data["questions"]}


def no_sideways_scroll(page: Page) -> None:
    """The page is no wider than the viewport: wide content scrolls inside its own box. Measured once
    the page has loaded (its stylesheet applied: a page just navigated to may show its text before
    the stylesheet has arrived, the wide boxes not yet scrolling) and its fonts are ready."""
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready.then(() => true)")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def math_font_loaded(page: Page) -> None:
    page.evaluate("document.fonts.ready")
    assert page.evaluate("""() => document.fonts.check('20px "STIX Two Math"')
        && [...document.fonts].some(f => f.family.includes('STIX Two Math') && f.status === 'loaded')""")
    # and it is the font the formulas use
    family = page.locator("math").first.evaluate("m => getComputedStyle(m).fontFamily")
    assert family.startswith('"STIX Two Math"')


def axe_clean(page: Page, what: str) -> None:
    results = Axe().run(page, options=WCAG_21_AA)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def order_by_drag(page: Page, section, answer: list[str]) -> None:
    """Put the ordering question in the key's order by dragging each entry's handle."""
    for pos, oid in enumerate(answer):
        ids = section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)")
        if ids.index(oid) == pos:
            continue
        section.locator("ol.ordering").scroll_into_view_if_needed()
        handle = section.locator(f'li[data-id="{oid}"] .handle').bounding_box()
        target = section.locator("li").nth(pos).bounding_box()
        page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        page.mouse.move(handle["x"] + 4, target["y"] + 3, steps=6)  # above the middle of the entry at pos
        page.mouse.up()
        assert section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)").index(oid) == pos


def answer_ux_quiz(page: Page, key: dict[str, object], tap: bool) -> None:
    """Answer the ux-math quiz from its key: taps on a phone, clicks and drags on a desktop."""
    for section in page.locator("section.question").all():
        qid, kind = section.get_attribute("data-id"), section.get_attribute("data-type")
        answer = key[qid]
        if kind == "matching":
            for left, right in answer.items():
                radio = section.locator(f'input[name="q-{qid}-{left}"][value="{right}"]')
                radio.tap() if tap else radio.check()
        elif kind == "single_choice":
            radio = section.locator(f'input[value="{answer}"]')
            radio.tap() if tap else radio.check()
        elif kind == "true_false":
            radio = section.locator(f'input[value="{"true" if answer else "false"}"]')
            radio.tap() if tap else radio.check()
        elif kind == "numeric":
            section.locator("input.num").fill(f"{answer:.2e}")  # -1.23e-03: minus and e, on a phone too
        elif kind == "ordering":
            if tap:  # the named buttons
                for pos, oid in enumerate(answer):
                    while section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)").index(oid) > pos:
                        section.locator(f'li[data-id="{oid}"] button.move.up').tap()
            else:
                order_by_drag(page, section, answer)
        else:
            raise AssertionError(kind)


def finish(page: Page) -> None:
    expect(page.locator(".qnav a.answered")).to_have_count(5, timeout=15000)
    page.get_by_role("button", name="Save and finish…").click()
    expect(page.get_by_text("Every question has an answer.")).to_be_visible()
    page.get_by_role("button", name="Submit now").click()
    expect(page.locator("h1 .total")).to_contain_text("5 / 5")


def test_desktop_student_flow_with_drag_math_and_screenshots(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, server, "ann")
    aid = start(page, "Math and wide content")
    key = key_of(server, aid)
    math_font_loaded(page)
    # matching options are rendered HTML with math (no raw LaTeX), each formula named by its source
    match = page.locator('section[data-type="matching"]')
    expect(match.locator("select")).to_have_count(0)
    assert "$" not in match.inner_text()
    assert "[0, \\infty)" in match.locator("math").evaluate_all("ms => ms.map(m => m.getAttribute('alttext'))")
    answer_ux_quiz(page, key, tap=False)
    expect(page.locator(".qnav a.answered")).to_have_count(5, timeout=15000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "attempt-desktop")
    finish(page)
    # results: a summary table, pairs as a table, choices with their math, the accepted range
    expect(page.locator("table.summary tbody tr")).to_have_count(5)
    expect(page.locator("table.pairs").first.locator("tbody tr")).to_have_count(3)
    expect(page.locator(".answer math").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Accepted: from -0\.001235\d* to -0\.001224"))).to_be_visible()
    shot(page, "results-desktop")
    page.close()


def test_phone_student_flow_never_scrolls_sideways(server, browser):
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    login(page, server, "bob")
    no_sideways_scroll(page)
    aid = start(page, "Math and wide content")
    key = key_of(server, aid)
    math_font_loaded(page)
    no_sideways_scroll(page)
    # the wide formula, code and table scroll in their own boxes, reachable by keyboard
    for box in ("div.math", "pre", ".prompt .scroll"):
        el = page.locator(f'section[data-type="numeric"] {box}').first
        assert el.evaluate("e => e.scrollWidth > e.clientWidth"), box
        expect(el).to_have_attribute("tabindex", "0")
    # a phone's full keyboard: plain text with no autocapitalisation, not a decimal pad without minus
    num = page.locator("input.num").first
    assert num.get_attribute("inputmode") == "text" and num.get_attribute("autocapitalize") == "off"
    answer_ux_quiz(page, key, tap=True)
    # the sticky bar stays on screen at the bottom of the page
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    assert page.locator(".attempt-bar").bounding_box()["y"] >= -1
    expect(page.locator(".qnav a.answered")).to_have_count(5, timeout=15000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "attempt-phone")
    finish(page)
    no_sideways_scroll(page)
    shot(page, "results-phone")
    ctx.close()


def test_unreadable_answer_is_marked_after_reload_and_listed_before_submitting(server, browser):
    page = browser.new_page()
    login(page, server, "eve")
    aid = start(page, "Math and wide content")
    section = page.locator('section[data-type="numeric"]')
    qid, number = section.get_attribute("data-id"), section.get_attribute("id")[1:]
    box = section.locator("input.num")
    box.fill("1,5")
    box.press("Enter")  # saves that answer; never posts the page
    nav = page.locator(f"#nav-{qid}")
    expect(nav).to_have_class("unreadable", timeout=10000)
    assert page.url.endswith(f"/attempts/{aid}")
    for _ in range(2):  # as saved, then from the server after a reload
        expect(box).to_have_attribute("aria-invalid", "true")
        message = page.locator(f"#fe-{qid}")
        expect(message).to_contain_text("can't be read")
        assert f"fe-{qid}" in box.get_attribute("aria-describedby").split()
        expect(nav).to_have_attribute("title", "answer can't be read")
        page.reload()
    expect(box).to_have_value("1,5")
    axe_clean(page, "attempt page with an unreadable answer")
    page.get_by_role("button", name="Save and finish…").click()
    expect(page.locator("#unreadable")).to_contain_text(f"Question {number}")
    axe_clean(page, "confirmation page")
    # fixed: the mark goes
    page.get_by_role("link", name="Back to the questions").click()
    box.fill("-1.23e-3")
    expect(nav).to_have_class("answered", timeout=10000)
    expect(box).to_have_attribute("aria-invalid", "false")
    page.close()


def test_axe_finds_no_wcag21_aa_violation_on_the_student_pages(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/login")
    axe_clean(page, "login")
    login(page, server, "dee")
    axe_clean(page, "dashboard")
    aid = start(page, "Math and wide content")
    math_font_loaded(page)
    axe_clean(page, "attempt")
    answer_ux_quiz(page, key_of(server, aid), tap=False)
    expect(page.locator(".qnav a.answered")).to_have_count(5, timeout=15000)
    page.get_by_role("button", name="Save and finish…").click()
    axe_clean(page, "confirmation")
    page.get_by_role("button", name="Submit now").click()
    expect(page.locator("table.summary")).to_be_visible()
    axe_clean(page, "results")
    page.goto(server.url + "/quizzes/ux-timed/start")
    axe_clean(page, "timed start")
    page.close()


def test_timed_attempt_is_confirmed_warns_and_submits_at_zero(server, browser):
    page = browser.new_page()
    login(page, server, "dee")
    card = page.locator("section.card", has_text="A very short timed quiz")
    card.get_by_role("link", name=re.compile("Start attempt")).click()  # a page first, not the attempt
    expect(page.get_by_role("heading", name=re.compile("Start A very short timed quiz"))).to_be_visible()
    expect(page.get_by_text(re.compile("time limit of 0.1 minutes"))).to_be_visible()
    page.get_by_role("button", name=re.compile("Start attempt 1 now")).click()
    timer = page.locator(".attempt-bar #timer")
    expect(timer).to_contain_text(re.compile(r"0:0\d"))
    alert = page.locator('#time-alert[aria-live="assertive"]')
    expect(alert).to_have_text(re.compile("1 minute left"))  # under a minute from the start
    shot(page, "attempt-timed-desktop")
    page.locator('input[value="false"]').check()
    expect(page.locator(".status.ok").first).to_be_visible(timeout=5000)
    expect(alert).to_have_text(re.compile("Time is up: submitting your saved answers"), timeout=15000)
    expect(page.get_by_text("Submitted automatically when the time ran out")).to_be_visible(timeout=15000)
    expect(page.locator("h1 .total")).to_contain_text("1 / 2")  # the true/false answer saved before the end
    page.close()


# ---------------------------------------------------------------- the keyboard-only run

FOCUSED = """() => { const e = document.activeElement; const s = e.closest('section.question');
  return {tag: e.tagName, type: e.type || '', name: e.name || '', value: e.value || '', checked: !!e.checked,
          label: e.getAttribute('aria-label') || '', text: e.textContent.trim(),
          qid: s ? s.dataset.id : null, kind: s ? s.dataset.type : null}; }"""


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def lum(c):
        ch = [x / 255 for x in c]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def focus_ring_is_visible(page: Page) -> None:
    ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                         " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }")
    assert ring[0] == "solid" and float(ring[1].rstrip("px")) >= 3, ring
    rgb = tuple(int(x) for x in re.findall(r"\d+", ring[2])[:3])
    for background in ((255, 255, 255), (0xF6, 0xF7, 0xF9)):  # cards and the page
        assert contrast(rgb, background) >= 3, (ring, background)


def test_keyboard_only_student_takes_the_quiz(server, browser):
    page = browser.new_page()
    kb = page.keyboard
    page.goto(server.url + "/login")
    page.get_by_label("Username").focus()  # where a person's first Tab lands; no mouse from here on
    kb.type("cid")
    kb.press("Tab")
    kb.type(PASSWORD)
    kb.press("Enter")
    expect(page.get_by_role("heading", name="My quizzes")).to_be_visible()
    for _ in range(40):
        kb.press("Tab")
        f = page.evaluate(FOCUSED)
        if f["tag"] == "BUTTON" and f["text"].startswith("Start attempt") and page.evaluate(
                "document.activeElement.closest('section').textContent.includes('Every question type')"):
            break
    else:
        raise AssertionError("no Start button reached by Tab")
    kb.press("Enter")
    expect(page.locator("section.question")).to_have_count(8)
    key = key_of(server, int(page.url.rstrip("/").rsplit("/", 1)[1]))
    # the first Tab reaches the skip link, which jumps over the header and the navigator
    kb.press("Tab")
    f = page.evaluate(FOCUSED)
    assert f["tag"] == "A" and f["text"] == "Skip to question 1"
    focus_ring_is_visible(page)
    kb.press("Enter")
    done: set[str] = set()
    for _ in range(120):
        kb.press("Tab")
        f = page.evaluate(FOCUSED)
        if f["tag"] == "BUTTON" and f["text"] == "Save and finish…":
            break
        if not f["qid"]:
            continue
        answer, kind, qid = key[f["qid"]], f["kind"], f["qid"]
        if f["type"] == "radio":  # arrows move through a group and select; Space selects the first
            want = ("true" if answer else "false") if kind == "true_false" else (
                answer[f["name"][len(f"q-{qid}-"):]] if kind == "matching" else answer)
            for _ in range(10):
                if page.evaluate(FOCUSED)["value"] == want:
                    break
                kb.press("ArrowDown")
            kb.press("Space")
            assert page.evaluate(FOCUSED)["checked"]
        elif f["type"] == "checkbox":
            if (f["value"] in answer) != f["checked"]:
                kb.press("Space")
        elif f["type"] == "text" and kind == "short_text":
            before = page.url
            kb.type(str(answer))
            kb.press("Enter")  # saves; never submits the page
            expect(page.locator(f'section[data-id="{qid}"] .status.ok')).to_be_visible(timeout=10000)
            assert page.url == before
        elif f["type"] == "text" and kind == "numeric":
            idx = [int(x) for x in f["name"][len(f"q-{qid}"):].split("-")[1:]]
            value = answer
            for i in idx:
                value = value[i]
            kb.type(repr(value))
        elif f["tag"] == "BUTTON" and kind == "ordering" and qid not in done:
            section = page.locator(f'section[data-id="{qid}"]')
            buttons = section.locator("button.move")
            here = 0  # the first button of the list has focus
            for pos, oid in enumerate(answer):
                while True:
                    ids = section.locator("li").evaluate_all("els => els.map(e => e.dataset.id)")
                    if ids.index(oid) == pos:
                        break
                    target = ids.index(oid) * 2  # its "up" button among all the list's buttons
                    while here != target:
                        kb.press("Tab" if here < target else "Shift+Tab")
                        here += 1 if here < target else -1
                    assert page.evaluate(FOCUSED)["label"].startswith("Move '")
                    kb.press("Enter")  # focus stays on the moved entry's button
                    here -= 2
            live = section.locator('[aria-live="polite"].sr-only')
            expect(live).to_contain_text("is now at position")
            while here < buttons.count() - 1:  # on to the list's last button, then onwards
                kb.press("Tab")
                here += 1
            done.add(qid)
    else:
        raise AssertionError("Save and finish was never reached")
    kb.press("Enter")
    expect(page.get_by_text("Every question has an answer.")).to_be_visible()
    for _ in range(30):
        kb.press("Tab")
        if page.evaluate(FOCUSED)["text"] == "Submit now":
            break
    kb.press("Enter")
    expect(page.locator("h1 .total")).to_contain_text("8 / 8")
    axe_clean(page, "results with a worked solution")  # tables whose headers are only math
    page.close()


def stored_response(server: LiveServer, token: str, attempt_id: int, qid: str) -> object:
    status, data = server.api("GET", f"/api/v1/attempts/{attempt_id}", token=token)
    assert status == 200, data
    return next(q for q in data["questions"] if q["id"] == qid).get("response")


def test_a_matched_term_can_be_cleared_again(server, browser):
    """Each matching term has a last "No match" choice: choosing it takes the term out of the saved
    answer (the whole answer becomes empty when it was the only one), and a reload shows it."""
    page = browser.new_page()
    login(page, server, "fay")
    aid = start(page, "Math and wide content")
    token = server.token("fay", PASSWORD)
    section = page.locator('section[data-type="matching"]')
    qid = section.get_attribute("data-id")
    term = section.locator("fieldset").first
    group = term.locator('input[type="radio"]').first.get_attribute("name")
    left = group[len(f"q-{qid}-"):]
    expect(term.get_by_label("No match")).to_be_checked()  # nothing chosen yet
    right = term.locator('input[type="radio"]').first.get_attribute("value")
    term.locator(f'input[value="{right}"]').check()
    expect(page.locator(f"#nav-{qid}")).to_have_class("answered", timeout=10000)
    deadline = time.monotonic() + 10
    while stored_response(server, token, aid, qid) != {left: right}:
        assert time.monotonic() < deadline, "the choice was never saved"
    term.get_by_label("No match").check()
    expect(page.locator(f"#nav-{qid}")).to_have_class("unanswered", timeout=10000)
    deadline = time.monotonic() + 10
    while stored_response(server, token, aid, qid) not in (None, {}):
        assert time.monotonic() < deadline, "the cleared term is still saved"
    page.reload()
    expect(term.get_by_label("No match")).to_be_checked()
    expect(term.locator(f'input[value="{right}"]')).not_to_be_checked()
    axe_clean(page, "attempt page with a cleared matching term")
    page.close()
