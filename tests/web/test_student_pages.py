"""The student's pages as HTML (issue 11 parts 2-4): unreadable answers, the timed start, widgets
that phones and screen readers can use, results people can read. The browser side is
tests/e2e/test_student_pages.py."""

from __future__ import annotations

import re
from html import unescape

from markupsafe import escape
from sqlalchemy import select

from quizengine.models import User
from quizengine.services import scores
from tests.web.conftest import set_quiz
from tests.web.everytype import ITEMS, add_quiz

QUIZ = "module-04-prep"


def start_every_type(client, users, db) -> tuple[int, dict[str, str]]:
    """Log ann in and start the every-type quiz; its attempt id and question ids keyed like ITEMS."""
    add_quiz(db)
    users.add("ann")
    users.login(client, "ann")
    r = client.post("/quizzes/threats-every-type/start")
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    return aid, {kind: f"q{k + 1}" for k, kind in enumerate(ITEMS)}


def autosave(client, aid: int, qid: str, response, seq: int = 0):
    r = client.post(f"/attempts/{aid}/autosave", json={"question": qid, "response": response, "seq": seq})
    assert r.status_code == 200, r.json
    return r.json


def test_unreadable_answer_is_marked_after_a_reload_and_listed_on_the_confirmation(client, users, db):
    aid, q = start_every_type(client, users, db)
    assert "format_error" in autosave(client, aid, q["numeric"], "1,5")
    autosave(client, aid, q["true_false"], True)
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)  # a reload: from the stored value
    nav = re.search(rf'<a href="#q\d+" id="nav-{q["numeric"]}" class="(\w+)"', page)
    assert nav and nav.group(1) == "unreadable"
    assert re.search(rf'id="nav-{q["true_false"]}" class="answered"', page)
    box = re.search(rf'<input class="num" name="q-{q["numeric"]}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in box and f'aria-describedby="fe-{q["numeric"]} ' in box
    message = unescape(re.search(rf'<p class="error format-error" id="fe-{q["numeric"]}">([^<]*)</p>', page).group(1))
    assert "can't be read" in message and "1,5" in message
    # the other fields are not marked
    vector = re.search(rf'<input class="num" name="q-{q["vector"]}-0"[^>]*>', page).group(0)
    assert 'aria-invalid="false"' in vector
    confirm = client.get(f"/attempts/{aid}/confirm").get_data(as_text=True)
    number = q["numeric"][1:]
    assert re.search(rf'<li><a href="[^"]*#q{number}">Question {number}</a>: [^<]*1,5', confirm)
    # fixed, the mark goes
    autosave(client, aid, q["numeric"], "1.5", seq=1)
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert re.search(rf'id="nav-{q["numeric"]}" class="answered"', page)
    assert "can't be read" not in client.get(f"/attempts/{aid}/confirm").get_data(as_text=True)


def test_numeric_fields_take_minus_e_and_slash_on_a_phone(client, users, db):
    aid, _ = start_every_type(client, users, db)
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    boxes = re.findall(r'<input class="num"[^>]*>', page)
    assert len(boxes) == 1 + 2 + 4
    for box in boxes:
        assert 'type="text"' in box and 'inputmode="text"' in box and 'autocapitalize="off"' in box
        assert 'spellcheck="false"' in box
    assert 'inputmode="decimal"' not in page


def test_matching_is_radio_groups_with_rendered_math_and_no_select(client, users, db):
    aid, q = start_every_type(client, users, db)
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert "<select" not in page and "<option" not in page
    section = page.split(f'data-id="{q["matching"]}"', 1)[1].split("</section>", 1)[0]
    assert section.count("<fieldset>") >= 2 and section.count("<legend>") == section.count("<fieldset>")
    assert re.search(rf'<input type="radio" name="q-{q["matching"]}-l1" value="r1"', section)
    assert "<math" in section and "$" not in re.sub(r"<math.*?</math>", "", section, flags=re.S)
    # every formula carries its source as a plain-text name
    for tag in re.findall(r"<math[^>]*>", section):
        assert re.search(r'alttext="[^"]+"', tag) and re.search(r'aria-label="[^"]+"', tag)
    # the plain form still saves a pair
    r = client.post(f"/attempts/{aid}/save", data={f"q-{q['matching']}-l1": "r2"})
    assert r.status_code == 302
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert re.search(rf'name="q-{q["matching"]}-l1" value="r2"\s+checked', page)


def test_attempt_page_has_a_skip_link_a_sticky_countdown_and_finish_as_the_primary_action(client, users, db):
    set_quiz(db, time_limit_s=600)
    users.add("ann")
    users.login(client, "ann")
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert re.search(r'<a class="skip" href="#q1">Skip to question 1</a>', page)
    bar = page.split('<div class="attempt-bar">', 1)[1].split("<form", 1)[0]
    assert 'class="qnav"' in bar and 'role="timer"' in bar and 'aria-live="assertive"' in bar
    assert re.search(r'<button type="submit" name="then" value="confirm" class="primary">Save and finish', page)
    # Save first in the form: without the script, Enter in a field saves, never finishes
    assert page.index(">Save</button>") < page.index(">Save and finish")


def test_timed_quiz_starts_after_a_confirmation_page(client, users, db):
    set_quiz(db, time_limit_s=1800)
    users.add("ann")
    users.login(client, "ann")
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert f'href="/quizzes/{QUIZ}/start"' in dashboard  # a link to the page, not the POST
    page = client.get(f"/quizzes/{QUIZ}/start").get_data(as_text=True)
    assert "time limit of <strong>30 minutes</strong>" in page and "5 minutes and 1 minute" in page
    assert f'<form method="post" action="/quizzes/{QUIZ}/start"' in page
    assert client.get("/dashboard").status_code == 200 and "Continue attempt" not in client.get("/dashboard").text
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    # with the attempt open, the page leads to it
    r = client.get(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/attempts/{aid}")
    assert client.get("/quizzes/no-such-quiz/start").status_code == 404


def test_results_show_a_summary_human_answers_each_format_error_once_and_the_override(client, users, db):
    aid, q = start_every_type(client, users, db)
    note = autosave(client, aid, q["numeric"], "abc")["format_error"]
    autosave(client, aid, q["true_false"], False)
    autosave(client, aid, q["matching"], {"l1": "r1", "l2": "r2"})
    assert client.post(f"/attempts/{aid}/submit").status_code == 302
    users.add("teacher", "instructor")
    with db.write() as s:
        teacher = s.scalar(select(User).where(User.role == "instructor"))
        scores.override(s, aid, q["numeric"], 0.5, "the unit was asked for ambiguously", teacher)
    page = client.get(f"/attempts/{aid}/result").get_data(as_text=True)
    summary = page.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    assert summary.count("<tr>") == 1 + len(ITEMS)
    assert page.count(str(escape(note))) == 1  # not again as the feedback
    assert "Score changed by your instructor to 0.5 /" in page and "the unit was asked for ambiguously" in page
    numeric = page.split(f'id="r{q["numeric"][1:]}"', 1)[1].split("</section>", 1)[0]
    assert "question partial" in page.split(f'id="r{q["numeric"][1:]}"', 1)[0].rsplit("<section", 1)[1]
    assert "Accepted: from " in numeric
    true_false = page.split(f'id="r{q["true_false"][1:]}"', 1)[1].split("</section>", 1)[0]
    assert "Your answer:</strong> False" in true_false
    matching = page.split(f'id="r{q["matching"][1:]}"', 1)[1].split("</section>", 1)[0]
    assert '<table class="pairs">' in matching and "<math" in matching and "->" not in matching
