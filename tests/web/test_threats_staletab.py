"""Issue 9, part 7 "nothing lost": a stale tab, a blank field or a skewed clock never loses an answer.

Each test is named after the threat it covers. The page tests post the form exactly as a browser
would submit the page it was given (every field, the hidden seq fields included).
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from tests.live import LiveServer

QUIZ = "module-04-prep"
SKEWED_MS = 1_790_003_600_000  # what a device whose clock is an hour ahead sent as seq (Date.now())


class FormFields(HTMLParser):
    """The fields a browser submits for the attempt form: inputs, checked boxes, selected options."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") in ("radio", "checkbox"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            else:
                self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            chosen = next((v for v, sel in self._options if sel), self._options[0][0] if self._options else "")
            self.fields.append((self._select, chosen))
            self._select = None


def page_form(client, aid: int) -> MultiDict:
    """Load the attempt page (a tab) and return the form it would post."""
    page = client.get(f"/attempts/{aid}")
    assert page.status_code == 200
    parser = FormFields()
    parser.feed(page.get_data(as_text=True))
    return MultiDict(parser.fields)


def stored(client, h: dict, aid: int) -> dict[str, tuple[object, int | None]]:
    """Every question's stored (response, seq), as the API shows them."""
    got = client.get(f"/api/v1/attempts/{aid}", headers=h).json
    return {q["id"]: (q["response"], q["seq"]) for q in got["questions"]}


@pytest.fixture
def ann(client, users):
    """Ann logged in on the page client (a browser) with an attempt started, and her API token (another device)."""
    users.add("ann")
    users.login(client, "ann")
    h = users.token(client, "ann")
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    got = client.get(f"/api/v1/attempts/{aid}", headers=h).json
    scalars = [q["id"] for q in got["questions"] if q["type"] == "numeric" and not q["shape"]]
    assert len(scalars) >= 4
    return aid, h, scalars[:4]


def test_threat_stale_tab_save_and_finish_does_not_erase_newer_answers(client, ann):
    aid, h, (qa, qb, qc, _) = ann
    api = f"/api/v1/attempts/{aid}/responses/"
    assert client.put(api + qa, headers=h, json={"response": "1"}).status_code == 200
    old_tab = page_form(client, aid)  # shows qa = "1", qb and qc blank
    assert old_tab[f"q-{qa}"] == "1" and old_tab[f"q-{qb}"] == ""
    # another device then answers qa anew and qb for the first time
    seq_a = stored(client, h, aid)[qa][1]
    assert client.put(api + qa, headers=h, json={"response": "2", "seq": seq_a + 1}).status_code == 200
    assert client.put(api + qb, headers=h, json={"response": "0.25"}).status_code == 200
    before = stored(client, h, aid)
    # the old tab answers qc and presses "Save and finish"
    old_tab[f"q-{qc}"] = "7"
    old_tab["then"] = "confirm"
    r = client.post(f"/attempts/{aid}/save", data=old_tab)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/attempts/{aid}")  # not on to confirm
    after = stored(client, h, aid)
    assert after[qa] == before[qa] == ("2", seq_a + 1)
    assert after[qb] == before[qb] and after[qb][0] == "0.25"
    assert after[qc][0] == "7"
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert f"Kept the newer answer to question {qa[1:]}:" in page and "changed in another tab or device" in page
    assert page_form(client, aid)[f"q-{qa}"] == "2"  # the newer answer is shown


def test_threat_blank_field_does_not_erase_a_stored_answer(client, ann):
    aid, h, (qa, qb, qc, qd) = ann
    api = f"/api/v1/attempts/{aid}/responses/"
    for q, v in ((qa, "1"), (qc, "3")):
        assert client.put(api + q, headers=h, json={"response": v}).status_code == 200
    tab = page_form(client, aid)  # qa "1", qb blank, qc "3", qd blank
    assert client.put(api + qb, headers=h, json={"response": "2"}).status_code == 200  # answered elsewhere
    before = stored(client, h, aid)
    tab[f"q-{qc}"] = ""  # the student clears qc on this page; qa is left as it was shown
    r = client.post(f"/attempts/{aid}/save", data=tab)
    assert r.status_code == 302
    after = stored(client, h, aid)
    assert after[qb] == before[qb] == ("2", before[qb][1])  # blank when rendered, blank now: not saved
    assert after[qa] == before[qa]  # unchanged: not written (same seq)
    assert after[qc][0] is None and after[qc][1] > before[qc][1]  # cleared on purpose: saved
    assert after[qd] == (None, None)  # blank and never answered: nothing stored
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert "Saved (1 answers)." in page and "Kept" not in page, re.findall(r"Saved[^<]*|Kept[^<]*", page)


def test_threat_equal_seq_with_a_different_value_is_stale(client, ann):
    aid, h, (qa, *_) = ann
    url = f"/api/v1/attempts/{aid}/responses/{qa}"
    assert client.put(url, headers=h, json={"response": "1", "seq": 5}).status_code == 200
    r = client.put(url, headers=h, json={"response": "2", "seq": 5})
    assert r.status_code == 409 and "stale" in r.json["error"] and "send seq 6" in r.json["error"]
    # the 409 carries the stored answer, so a client can show it without another request
    assert (r.json["response"], r.json["seq"]) == ("1", 5) and r.json["saved_at"]
    r = client.post(f"/attempts/{aid}/autosave", json={"question": qa, "response": "3", "seq": 5})
    assert r.status_code == 409 and r.json["seq"] == 5
    assert stored(client, h, aid)[qa] == ("1", 5)


def test_threat_equal_seq_with_the_same_value_is_an_idempotent_repeat(client, ann):
    aid, h, (qa, *_) = ann
    url = f"/api/v1/attempts/{aid}/responses/{qa}"
    first = client.put(url, headers=h, json={"response": "1.5", "seq": 5})
    again = client.put(url, headers=h, json={"response": "1.5", "seq": 5})
    assert first.status_code == again.status_code == 200
    assert again.json == first.json  # same saved_at and seq: the repeat wrote nothing
    r = client.post(f"/attempts/{aid}/autosave", json={"question": qa, "response": "1.5", "seq": 5})
    assert r.status_code == 200 and r.json["seq"] == 5
    assert stored(client, h, aid)[qa] == ("1.5", 5)


def test_threat_clock_skew_between_devices_does_not_lock_one_out(client, ann):
    """Device A once sent Date.now() an hour ahead; both devices then save by the server's version."""
    aid, h, (qa, *_) = ann
    url = f"/attempts/{aid}/autosave"
    r = client.post(url, json={"question": qa, "response": "0", "seq": SKEWED_MS})
    assert r.status_code == 200
    known = {"A": r.json["seq"], "B": int(page_form(client, aid)[f"seq-{qa}"])}  # B loads its page now
    assert known["B"] == SKEWED_MS
    for k in range(1, 7):  # the devices take turns; each sends its known seq + 1, adopting a 409's seq
        device = "AB"[k % 2]
        r = client.post(url, json={"question": qa, "response": str(k), "seq": known[device] + 1})
        if r.status_code == 409:  # the other device saved since: show its answer, adopt its seq, retry
            assert r.json["response"] == str(k - 1)
            known[device] = r.json["seq"]
            r = client.post(url, json={"question": qa, "response": str(k), "seq": known[device] + 1})
        assert r.status_code == 200, (device, r.json)
        known[device] = r.json["seq"]
        assert stored(client, ann[1], aid)[qa][0] == str(k)
    assert stored(client, h, aid)[qa][1] == SKEWED_MS + 6  # one step per save, whatever the clocks say


# ---------------------------------------------------------------- in a browser

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PASSWORD = "student-password"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("staletab")
    banks = tmp / "banks"
    shutil.copytree(SAMPLE, banks)
    srv = LiveServer(tmp, banks)
    srv.add_user("ann", "student", PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.slow
def test_threat_stale_tab_in_a_browser_never_wins_and_shows_the_newer_answer(live):
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.conftest import ARGS, CHROMIUM
    from tests.e2e.test_browser import login

    if not Path(CHROMIUM).exists():  # make test installs it (scripts/ensure-debian); never skip silently
        pytest.fail(f"{CHROMIUM} is missing: make test installs it (scripts/ensure-debian), or apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()
        a = context.new_page()
        login(a, live, "ann", PASSWORD)
        card = a.locator("section.card", has_text="Every question type")
        card.get_by_role("button", name=re.compile("Start")).click()
        expect(a.locator("section.question")).to_have_count(8)
        aid = int(a.url.rstrip("/").rsplit("/", 1)[1])
        a.add_init_script("{ const real = Date.now; Date.now = () => real() + 3600 * 1000; }")  # an hour ahead
        a.reload()
        b = context.new_page()  # a second tab, loaded before any answer is saved
        b.goto(a.url)
        text_a, text_b = (t.locator('section[data-type="short_text"]') for t in (a, b))
        choice_a, choice_b = (t.locator('section[data-type="single_choice"]') for t in (a, b))
        token = live.token("ann", PASSWORD)

        def saved(section) -> object:
            qid = section.get_attribute("data-id")
            status, data = live.api("GET", f"/api/v1/attempts/{aid}", token=token)
            assert status == 200
            return next(q["response"] for q in data["questions"] if q["id"] == qid)

        def type_in(section, text: str) -> None:
            section.locator("input").fill(text)

        # autosave: tab A answers; tab B, loaded before, doesn't win and shows tab A's answer
        type_in(text_a, "hyperparameter")
        expect(text_a.locator(".status")).to_have_class(re.compile("ok"))
        type_in(text_b, "parameter")
        expect(text_b.locator(".status")).to_contain_text("changed in another tab or device")
        expect(text_b.locator("input")).to_have_value("hyperparameter")
        assert saved(text_a) == "hyperparameter"
        # tab B has caught up: its next change is saved, whatever tab A's clock says...
        type_in(text_b, "hyper-parameter")
        expect(text_b.locator(".status")).to_have_text(re.compile("^Saved"))
        assert saved(text_a) == "hyper-parameter"
        # ...and tab A, stale now, shows tab B's answer instead of overwriting it, then saves again
        type_in(text_a, "parameters")
        expect(text_a.locator(".status")).to_contain_text("changed in another tab or device")
        expect(text_a.locator("input")).to_have_value("hyper-parameter")
        assert saved(text_a) == "hyper-parameter"
        type_in(text_a, "hyperparameters")
        expect(text_a.locator(".status")).to_have_text(re.compile("^Saved"))
        assert saved(text_a) == "hyperparameters"

        # the Save form: tab A picks an option; tab B (stale) picks another, is shown A's, then picks again
        first, second = (choice_a.locator("input[type=radio]").nth(k).get_attribute("value") for k in (0, 1))
        choice_a.locator(f'input[value="{first}"]').check()
        expect(choice_a.locator(".status")).to_have_text(re.compile("^Saved"))
        # (click, not check: the page may put A's choice back before a check could confirm its own)
        choice_b.locator(f'input[value="{second}"]').click()
        expect(choice_b.locator(".status")).to_contain_text("changed in another tab or device")
        expect(choice_b.locator(f'input[value="{first}"]')).to_be_checked()
        choice_b.locator(f'input[value="{second}"]').check()
        expect(choice_b.locator(".status")).to_have_text(re.compile("^Saved"))
        assert saved(choice_a) == second
        # tab A's "Save and finish" posts its older choice: the newer one is kept, and the page says so
        a.get_by_role("button", name="Save and finish…").click()
        expect(a.locator(".flash", has_text="Kept the newer answer")).to_be_visible()
        expect(a.locator('section[data-type="single_choice"]').locator(f'input[value="{second}"]')).to_be_checked()
        assert saved(choice_a) == second and saved(text_a) == "hyperparameters"
        browser.close()


@pytest.mark.slow
def test_threat_stale_tab_shows_the_newer_answer_in_every_widget(live):
    """A stale tab's conflicting save puts the stored answer into each kind of widget."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.conftest import ARGS, CHROMIUM
    from tests.e2e.test_browser import login

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make test installs it (scripts/ensure-debian), or apt-get install chromium")
    live.add_user("bob", "student", PASSWORD)
    live.add_user("teacher", "instructor", PASSWORD)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        login(page, live, "bob", PASSWORD)
        card = page.locator("section.card", has_text="Every question type")
        card.get_by_role("button", name=re.compile("Start")).click()
        expect(page.locator("section.question")).to_have_count(8)
        aid = int(page.url.rstrip("/").rsplit("/", 1)[1])
        status, key = live.api("GET", f"/api/v1/attempts/{aid}/key", token=live.token("teacher", PASSWORD))
        assert status == 200
        answers = {q["id"]: q["answer"] for q in key["questions"]}
        token = live.token("bob", PASSWORD)
        for qid, answer in answers.items():  # another device answers everything after this page loaded
            body = {"response": answer, "seq": 5}
            put = live.api("PUT", f"/api/v1/attempts/{aid}/responses/{qid}", body, token=token)
            assert put[0] == 200
        # this tab now sends a change for every question (a blank one: it knew of no answer)
        page.evaluate("""() => document.querySelectorAll("section.question").forEach((s) =>
            s.querySelector("input, select").dispatchEvent(new Event("change", {bubbles: true})))""")
        expect(page.locator(".status", has_text="changed in another tab or device")).to_have_count(8)
        shown = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll("section.question"))
            .map((s) => [s.dataset.id, {
                checked: Array.from(s.querySelectorAll("input:checked")).map((c) => c.value),
                text: Array.from(s.querySelectorAll("input.num, input:not([type])")).map((c) => c.value),
                pairs: Object.fromEntries(Array.from(s.querySelectorAll('input[type="radio"]:checked'))
                    .filter((e) => e.name.startsWith("q-" + s.dataset.id + "-")).map((e) => [e.name, e.value])),
                order: Array.from(s.querySelectorAll("li")).map((li) => li.dataset.id),
                ranks: Array.from(s.querySelectorAll("input.rank")).map((r) => r.value)}]))""")
        kinds = dict(zip(page.locator("section.question").evaluate_all("els => els.map(e => e.dataset.id)"),
                         page.locator("section.question").evaluate_all("els => els.map(e => e.dataset.type)")))
        for qid, answer in answers.items():
            got, kind = shown[qid], kinds[qid]
            if kind in ("single_choice", "multiple_select"):
                assert sorted(got["checked"]) == sorted([answer] if kind == "single_choice" else answer)
            elif kind == "true_false":
                assert got["checked"] == ["true" if answer else "false"]
            elif kind == "short_text":
                assert got["text"] == [answer]
            elif kind == "numeric":
                flat = [v for row in (answer if isinstance(answer, list) else [answer])
                        for v in (row if isinstance(row, list) else [row])]
                assert [float(x) for x in got["text"]] == pytest.approx(flat)
            elif kind == "matching":
                assert got["pairs"] == {f"q-{qid}-{k}": v for k, v in answer.items()}
            elif kind == "ordering":
                assert got["order"] == answer and got["ranks"] == [str(k + 1) for k in range(len(answer))]
            else:
                raise AssertionError(kind)
        expect(page.locator(".qnav a.answered")).to_have_count(8)
        browser.close()
