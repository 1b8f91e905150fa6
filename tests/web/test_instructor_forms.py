"""Issue 11, parts 1 and 5: the bank editor saves every bank, and the instructor forms keep the work."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlencode
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from quizengine.models import Attempt, CurrentItem, ItemVersion, Quiz, User
from quizengine.services import accounts, editor
from tests.web.test_instructor import QUIZ, _attempt_with_answers, _crafted_attempts


def csrf(client, url: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def unescape(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")


# -- 1. the editor

@pytest.mark.parametrize("rel", ["backpropagation.yaml", "momentum-optimizers.yaml"])
def test_the_shipped_banks_save_unchanged_with_csrf_on(app, teacher, banks_copy, db, rel):
    """Larger than the app's 64 KiB request limit: the editor's route reads up to 3 MiB, before the CSRF check."""
    app.config["WTF_CSRF_ENABLED"] = True
    text = (banks_copy / rel).read_text()
    assert len(urlencode({"text": text})) > app.config["MAX_CONTENT_LENGTH"]  # as the browser sends it
    url = f"/instructor/banks/edit/{rel}"
    r = teacher.post(url, data={"text": text, "csrf_token": csrf(teacher, url)})
    assert r.status_code == 302, unescape(r.get_data(as_text=True))[-800:]
    assert (banks_copy / rel).read_text() == text
    # only that route: another form of the same size is still refused
    r = teacher.post(f"/instructor/quizzes/{QUIZ}/settings", data={"max_attempts": "2", "pad": "x" * 100_000,
                                                                   "csrf_token": csrf(teacher, url)})
    assert r.status_code == 413


def test_a_request_over_the_editors_limit_gets_a_page_saying_what_to_do(teacher, banks_copy):
    before = (banks_copy / "vocabulary.yaml").read_text()
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": "#" * (3 * 1024 * 1024 + 100_000)})
    page = r.get_data(as_text=True)
    assert r.status_code == 413 and "Too large to save" in page and "Nothing was saved" in page
    assert "1 MiB" in page and "3 MiB" in page and "Back" in page and 'href="/instructor/banks/edit/vocabulary.yaml"' in page
    assert '<link rel="stylesheet"' in page  # the page style, not a bare error
    assert (banks_copy / "vocabulary.yaml").read_text() == before


def test_a_file_over_1_mib_keeps_its_text_in_the_editor(teacher, banks_copy):
    big = (banks_copy / "vocabulary.yaml").read_text() + "#" * (editor.MAX_BANK_BYTES + 10) + "\n"
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": big})
    page = r.get_data(as_text=True)
    assert r.status_code == 413 and "a bank file is limited to 1 MiB" in page and "split it into two files" in page
    assert "#" * 1000 in page  # the text is still in the textarea


def test_every_editor_problem_is_listed_and_linked_to_its_line(teacher, banks_copy):
    text = (banks_copy / "vocabulary.yaml").read_text()
    lines = text.split("\n")
    bad = [n for n, line in enumerate(lines, start=1) if re.match(r"\s+type: ", line)][:2]
    for n in bad:
        lines[n - 1] = lines[n - 1].split("type:")[0] + "type: no_such_type"
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": "\n".join(lines)})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "Not saved." in page
    for n in bad:
        assert f'href="#line-{n}" class="goto"><code>vocabulary.yaml:{n}:' in page  # the link ...
        assert f'<tr class="bad" id="line-{n}">' in page  # ... to its line, shown beside its message
        assert f'data-line="{n}"' in page and 'data-severity="error"' in page  # lint markers for the code editor
    assert "2 errors" in page
    assert 'data-unsaved="1"' in page  # leaving the page warns: the text shown is not the file


def test_the_editor_has_cancel_a_code_editor_and_no_inline_script(teacher):
    page = teacher.get("/instructor/banks/edit/vocabulary.yaml").get_data(as_text=True)
    assert ">Cancel</a>" in page and 'wrap="off"' in page
    assert '<script src="/static/vendor/codemirror.min.js"' in page and '<script src="/static/editor.js"' in page
    assert "<script>" not in page and " style=" not in page
    r = teacher.get("/static/vendor/codemirror.min.js")
    assert r.status_code == 200 and b"QECodeMirror" in r.data
    r.close()


# -- 5. settings

def test_settings_list_every_problem_and_keep_what_was_typed(app, teacher, db):
    app.config["TIMEZONE"] = "Europe/Berlin"
    with db.read() as s:
        before = (s.get(Quiz, QUIZ).max_attempts, s.get(Quiz, QUIZ).time_limit_s)
    form = {"opens_at": "2030-01-02T09:00", "closes_at": "2030-01-01T09:00", "time_limit_min": "ten",
            "max_attempts": "500", "repeats": "avoid"}
    r = teacher.post(f"/instructor/quizzes/{QUIZ}/settings", data=form)
    page = unescape(r.get_data(as_text=True))
    assert r.status_code == 400
    for message in ("the closing time must come after the opening time", "time limits are numbers",
                    "a whole number from 1 to 100"):
        assert message in page
    assert "Fix these 3 problems" in page
    for name, value in form.items():
        if name != "repeats":
            assert f'name="{name}"' in page and f'value="{value}"' in page
    assert page.count('aria-invalid="true"') == 3 and "Europe/Berlin" in page
    with db.read() as s:
        assert (s.get(Quiz, QUIZ).max_attempts, s.get(Quiz, QUIZ).time_limit_s) == before


def test_settings_times_are_the_course_time_zone_both_ways(app, teacher, db):
    app.config["TIMEZONE"] = "Europe/Berlin"
    r = teacher.post(f"/instructor/quizzes/{QUIZ}/settings", data={"opens_at": "2030-01-01T09:00"})
    assert r.status_code == 302
    with db.read() as s:
        stored = s.get(Quiz, QUIZ).opens_at
    assert stored.replace(tzinfo=stored.tzinfo or timezone.utc) == datetime(2030, 1, 1, 8, 0, tzinfo=timezone.utc)
    page = teacher.get(f"/instructor/quizzes/{QUIZ}/settings").get_data(as_text=True)
    assert 'value="2030-01-01T09:00"' in page  # shown as typed, in the course's time zone


# -- 5. regrade

def _new_version(db, item_id: str) -> int:
    with db.write() as s:
        iv = s.get(CurrentItem, item_id).item_version
        new = ItemVersion(item_id=item_id, version="f" * 32, topic=iv.topic, type=iv.type, data=iv.data,
                          bank_source=iv.bank_source, created_at=datetime.now(timezone.utc))
        s.add(new)
        s.flush()
        return new.id


def test_regrade_defaults_to_the_current_version_with_date_and_author(teacher, banks_copy, db):
    rel, item_id = "vocabulary.yaml", "vocab-epoch-definition"
    text = (banks_copy / rel).read_text()
    edited = text.replace("what is an **epoch**?", "what, exactly, is an **epoch**?", 1)
    assert edited != text
    assert teacher.post(f"/instructor/banks/edit/{rel}", data={"text": edited}).status_code == 302
    page = teacher.get(f"/instructor/regrade/{item_id}").get_data(as_text=True)
    options = re.findall(r"<option value=\"(\d+)\"( selected)?>([^<]*)</option>", page)
    assert len(options) == 2
    newest, older = options
    assert newest[1] == " selected" and "(current)" in newest[2] and "saved by teacher" in newest[2]
    assert "(current)" not in older[2] and "loaded from the banks folder" in older[2]
    assert re.search(r"\d{4}, \d\d:\d\d", newest[2])  # the date and time


def test_regrade_needs_a_reason_then_a_confirmation_with_the_counts(app, users, db):
    users.add("teacher", "instructor")
    c = app.test_client()
    a, key, result = _attempt_with_answers(c, users, n_right=20)
    item_id = key[a["questions"][0]["id"]]["item_id"]
    version = _new_version(db, item_id)
    users.login(c, "teacher")
    url = f"/instructor/regrade/{item_id}"
    r = c.post(url, data={"version": version, "reason": "  "})
    assert r.status_code == 400 and "give a reason for the regrade" in r.get_data(as_text=True)
    r = c.post(url, data={"version": version, "reason": "new wording"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Confirm the regrade" in page
    assert "<strong>1</strong> attempt affected" in page and "Yes, regrade 1 attempt" in page
    with db.read() as s:
        assert version not in {q.item_version_id for q in s.get(Attempt, a["attempt_id"]).questions}
    r = c.post(url, data={"version": version, "reason": "new wording", "confirmed": "1"}, follow_redirects=True)
    assert "Regraded 1 attempts (1 questions): 0 scores changed" in r.get_data(as_text=True)
    with db.read() as s:
        assert version in {q.item_version_id for q in s.get(Attempt, a["attempt_id"]).questions}
    assert "new wording" in c.get(f"/instructor/attempts/{a['attempt_id']}").get_data(as_text=True)


# -- 5. password reset

def test_password_reset_asks_first_and_warns_of_an_open_attempt(app, teacher, users, db):
    users.add("ann")
    h = users.token(app.test_client(), "ann")
    assert app.test_client().post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).status_code == 201
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
        hash_before = s.get(User, uid).password_hash
    page = teacher.get(f"/instructor/roster/{uid}/reset").get_data(as_text=True)
    assert "Reset the password of" in page and "has an attempt in progress" in page and "Module 04" in page
    assert teacher.post(f"/instructor/roster/{uid}/reset").status_code == 200  # no confirmation: only asks
    with db.read() as s:
        assert s.get(User, uid).password_hash == hash_before
    users.add("bob")
    with db.read() as s:
        bob = s.scalar(select(User.id).where(User.username == "bob"))
    assert "in progress" not in teacher.get(f"/instructor/roster/{bob}/reset").get_data(as_text=True)
    r = teacher.post(f"/instructor/roster/{uid}/reset", data={"confirmed": "1"})
    assert "New password for ann:" in r.get_data(as_text=True)
    with db.read() as s:
        assert s.get(User, uid).password_hash != hash_before


# -- 5. roster import

def test_roster_import_reports_every_problem_at_once(teacher, users, db):
    users.add("ann")
    text = ("username,full_name,student_id,email\n"
            "carl,Carl C,1,carl@example.org\n"
            "dora,,2,dora@example.org\n"      # empty name
            "eve,Eve E,3,not an address\n"    # email
            "ann,Ann Again,4,ann@example.org\n"  # exists already
            "bad name,Bad,5,b@example.org\n"  # username
            "carl,Carl Twice,6,c2@example.org\n")  # repeats line 2
    r = teacher.post("/instructor/roster", data={"text": text})
    page = unescape(r.get_data(as_text=True))
    assert r.status_code == 400 and "Fix these 5 problems" in page
    found = re.findall(r"<li>(line \d+: [^<]*)</li>", page)
    assert [p.split(":")[0] for p in found] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "full_name is empty" in found[0] and "'not an address' is not an address" in found[1]
    assert "'ann' exists already" in found[2] and "username 'bad name'" in found[3] and "repeats line 2" in found[4]
    assert "carl,Carl C,1,carl@example.org" in page  # the pasted text is kept
    with db.read() as s:
        assert s.scalar(select(User.id).where(User.username == "carl")) is None


def test_generated_passwords_download_once_for_that_session_only(app, teacher, users):
    text = "username,full_name,student_id,email\ncarl,Carl C,1,c@example.org\ndora,Dora D,2,d@example.org\n"
    page = teacher.post("/instructor/roster", data={"text": text}).get_data(as_text=True)
    link = re.search(r'href="(/instructor/roster/passwords/[^"]+\.csv)"', page).group(1)
    users.add("other", "instructor")
    other = app.test_client()
    users.login(other, "other")
    assert other.get(link).status_code == 404  # another instructor's session can't take it
    r = teacher.get(link)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["username"] for row in rows] == ["carl", "dora"]
    for row in rows:
        assert row["password"][0].isalnum() and f"<code>{row['password']}</code>" in page
        assert users.login(app.test_client(), row["username"], row["password"]).status_code == 302
    again = teacher.get(link)
    assert again.status_code == 404 and "taken already or has expired" in again.get_data(as_text=True)
    assert not list((Path(app.config["INSTANCE"]) / "downloads").glob("*"))  # nothing left on the server


def test_generated_passwords_never_start_like_a_formula():
    assert all(accounts.generate_password()[0].isalnum() for _ in range(500))


# -- 5. gradebook, analysis, item page

def test_gradebook_has_mean_median_histogram_and_a_sortable_table(teacher, db):
    _crafted_attempts(db, [[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], times=[10, 20, 30, 40])
    page = teacher.get(f"/instructor/quizzes/{QUIZ}/gradebook").get_data(as_text=True)
    # percents 100, 66.7, 33.3, 0: mean 50, median 50
    assert "<dt>Mean</dt><dd>50.0%</dd>" in page and "<dt>Median</dt><dd>50.0%</dd>" in page
    assert "<svg" in page and "Scores of the 4 students with a graded attempt" in page
    assert 'class="sortable"' in page and '<script src="/static/sort.js"' in page and 'data-type="number"' in page
    assert 'class="wide"' in page


def test_item_analysis_flags_from_ten_responses_in_quiz_order(teacher, db):
    _crafted_attempts(db, [[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], times=[10, 20, 30, 40])
    page = teacher.get(f"/instructor/quizzes/{QUIZ}/analysis").get_data(as_text=True)
    order = re.findall(r'<a href="/instructor/banks/items/([^"]+)"><code>', page)
    assert order == ["vocab-epoch-definition", "act-tanh-zero-centred", "bp-hidden-delta"]  # slots 1, 2, 3
    assert 'class="flag"' not in page and "n &lt; 10: not flagged" in page  # act-tanh: facility .25, but n = 4


def test_item_page_refuses_a_bad_seed_and_has_shareable_seed_addresses(teacher):
    r = teacher.get("/instructor/banks/items/bp-hidden-delta?seed=abc")
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "Not a seed: seed must be a whole number from 0 to 2147483647" in page
    assert 'value="abc"' in page and 'aria-invalid="true"' in page and "<h1>" in page
    assert teacher.get("/instructor/banks/items/bp-hidden-delta?seed=-4").status_code == 400
    r = teacher.get("/instructor/banks/items/bp-hidden-delta?random=1")
    assert r.status_code == 302 and re.search(r"/instructor/banks/items/bp-hidden-delta\?seed=\d+$", r.headers["Location"])
    page = teacher.get("/instructor/banks/items/bp-hidden-delta?seed=7").get_data(as_text=True)
    assert 'href="http://localhost/instructor/banks/items/bp-hidden-delta?seed=7"' in page
