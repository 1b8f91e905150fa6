"""Instructor area: access rules, bank editor, analysis numbers, regrade, overrides, exports, roster."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from quizengine.models import Attempt, AttemptQuestion, BankFileVersion, CurrentItem, ItemVersion, Response, User
from quizengine.services import analysis
from quizengine.services.banks import variant_of

QUIZ = "module-04-prep"

PAGES = [
    ("get", "/instructor/"), ("get", f"/instructor/quizzes/{QUIZ}/gradebook"),
    ("get", f"/instructor/quizzes/{QUIZ}/grades.csv"), ("get", f"/instructor/quizzes/{QUIZ}/responses.csv"),
    ("get", f"/instructor/quizzes/{QUIZ}/analysis"), ("get", f"/instructor/quizzes/{QUIZ}/settings"),
    ("post", f"/instructor/quizzes/{QUIZ}/settings"), ("get", "/instructor/attempts/1"),
    ("post", "/instructor/attempts/1/override"), ("get", "/instructor/regrade/vocab-epoch-definition"),
    ("post", "/instructor/regrade/vocab-epoch-definition"), ("get", "/instructor/roster"), ("post", "/instructor/roster"),
    ("post", "/instructor/roster/1/reset"), ("get", "/instructor/banks/"),
    ("get", "/instructor/banks/items/vocab-epoch-definition"), ("get", "/instructor/banks/items/vocab-epoch-definition/stress"),
    ("get", "/instructor/banks/edit/vocabulary.yaml"), ("post", "/instructor/banks/edit/vocabulary.yaml"),
    ("get", "/instructor/banks/history/vocabulary.yaml"),
]


@pytest.mark.parametrize("method,url", PAGES)
def test_students_get_403_on_every_instructor_page(app, users, method, url):
    users.add("ann")
    c = app.test_client()
    users.login(c, "ann")
    assert getattr(c, method)(url).status_code == 403


@pytest.mark.parametrize("method,url", PAGES[:6])
def test_anonymous_users_are_sent_to_login(client, method, url):
    r = getattr(client, method)(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_bank_review_lists_filters_and_searches(teacher):
    page = teacher.get("/instructor/banks/").get_data(as_text=True)
    assert "vocab-epoch-definition" in page and "bp-hidden-delta" in page
    page = teacher.get("/instructor/banks/?topic=backpropagation&type=numeric").get_data(as_text=True)
    assert "bp-hidden-delta" in page and "vocab-epoch-definition" not in page
    page = teacher.get("/instructor/banks/?q=mazur").get_data(as_text=True)
    assert "bp-mazur-total-error" in page and "vocab-epoch-definition" not in page


def test_item_page_switches_seed_and_shows_answer_spec_and_mistakes(teacher):
    a = teacher.get("/instructor/banks/items/bp-hidden-delta?seed=3").get_data(as_text=True)
    b = teacher.get("/instructor/banks/items/bp-hidden-delta?seed=4").get_data(as_text=True)
    for page in (a, b):
        assert "Worked solution with your numbers" in page and "Calculator spec" in page
        assert "Buggy calculators" in page and "derivative_as_value" in page
    assert "seed=2" in a and "seed=4" in a and "random=1" in a
    assert a.split("<h2>Seed", 1)[1] != b.split("<h2>Seed", 1)[1]
    assert teacher.get("/instructor/banks/items/nope").status_code == 404


def test_stress_test_page(teacher):
    page = teacher.get("/instructor/banks/items/bp-hidden-delta/stress").get_data(as_text=True)
    assert "200 seeds" in page and "Most common answers" in page and "Every seed passes the checks." in page


def test_editor_refuses_an_invalid_save_and_keeps_the_file(teacher, banks_copy, db):
    path = banks_copy / "vocabulary.yaml"
    before = path.read_text()
    broken = before.replace("prompt:", "promt:", 1)
    line = next(i for i, l in enumerate(broken.splitlines(), start=1) if "promt:" in l)
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": broken})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert f"vocabulary.yaml:{line}:" in page and "unknown key &#39;promt&#39;" in page
    assert f'<td class="ln">{line}</td>' in page  # the error stands beside its line
    assert path.read_text() == before
    with db.read() as s:
        assert s.scalar(select(BankFileVersion.id)) is None


def test_editor_saves_atomically_keeps_versions_and_reloads(teacher, banks_copy, db):
    path = banks_copy / "vocabulary.yaml"
    before = path.read_text()
    data = yaml.safe_load(before)
    item = data["items"][0]
    edited = before.replace(f"id: {item['id']}\n", f"id: {item['id']}\n    # reviewed\n", 1).replace(
        "title: ", "title: Edited ", 1)
    r = teacher.post("/instructor/banks/edit/vocabulary.yaml", data={"text": edited})
    assert r.status_code == 302
    assert path.read_text() == edited
    assert not list(banks_copy.glob(".vocabulary.yaml.*"))  # no temp file left behind
    with db.read() as s:
        versions = list(s.scalars(select(BankFileVersion).where(BankFileVersion.path == "vocabulary.yaml")))
        assert [v.content for v in versions] == [before, edited]
    hist = teacher.get("/instructor/banks/history/vocabulary.yaml").get_data(as_text=True)
    assert "saved in the editor" in hist and "as found on disk" in hist
    first, second = versions
    diff = teacher.get(f"/instructor/banks/history/vocabulary.yaml?a={first.id}&b={second.id}").get_data(as_text=True)
    assert "+    # reviewed" in diff and "-title: " in diff


@pytest.mark.parametrize("rel", ["../secret.yaml", "quizzes/../../x.yaml", "%2e%2e/x.yaml", "vocabulary.txt",
                                 "/etc/passwd.yaml", "..%2Fx.yaml"])
def test_editor_refuses_paths_outside_the_banks(teacher, banks_copy, rel):
    r = teacher.post(f"/instructor/banks/edit/{rel}", data={"text": "x: 1"})
    assert r.status_code in (308, 400, 404)  # 308: the router folds "//etc" into "/etc", inside the banks
    assert not (banks_copy.parent / "secret.yaml").exists() and not (banks_copy.parent / "x.yaml").exists()


# -- item analysis against hand-computed values

def _crafted_attempts(db, scores: list[list[float]], times: list[float]):
    """Students s0..sN with one submitted attempt each on three fixed items, with the given scores."""
    with db.write() as s:
        ivs = [s.scalar(select(ItemVersion).join(CurrentItem, CurrentItem.item_version_id == ItemVersion.id)
                        .where(ItemVersion.item_id == i))
               for i in ("vocab-epoch-definition", "act-tanh-zero-centred", "bp-hidden-delta")]
        t = datetime.now(timezone.utc)
        for n, row in enumerate(scores):
            u = User(username=f"s{n}", role="student", password_hash="x", created_at=t)
            s.add(u)
            s.flush()
            a = Attempt(user_id=u.id, quiz_id=QUIZ, number=1, state="submitted", started_at=t, submitted_at=t,
                        score=sum(row), max_score=3.0)
            s.add(a)
            s.flush()
            for slot, (iv, sc) in enumerate(zip(ivs, row)):
                aq = AttemptQuestion(attempt_id=a.id, slot=slot, item_version_id=iv.id, seed=n, points=1.0, score=sc,
                                     result={"mistake": "derivative_as_value"} if slot == 2 and sc == 0 else {})
                s.add(aq)
                s.flush()
                v = variant_of(iv, n)
                if slot == 0:  # single choice: the first two pick the key, the others the same wrong option
                    wrong = min((c for c in v.choices if c.id != v.answer), key=lambda c: c.text)
                    value = v.answer if sc else wrong.id
                elif slot == 1:
                    value = v.answer if sc else (not v.answer)
                else:
                    value = v.answer if sc else [9.0 for _ in v.answer]
                s.add(Response(question_id=aq.id, value=value, seq=1, saved_at=t, first_saved_at=t,
                               active_s=times[n] if slot == 0 else 5.0))


def test_analysis_numbers_match_hand_computed_values(db):
    # Scores of 4 students on items A (vocab-epoch-definition), B (act-tanh-zero-centred), C (bp-hidden-delta):
    #   s0: 1 1 1   s1: 1 0 1   s2: 0 0 1   s3: 0 0 0
    _crafted_attempts(db, [[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], times=[10, 20, 30, 40])
    with db.read() as s:
        stats = analysis.analyse(s, QUIZ)
    items = {i.item_id: i for i in stats.items}
    a, b, c = items["vocab-epoch-definition"], items["act-tanh-zero-centred"], items["bp-hidden-delta"]
    # facility: mean score fraction
    assert (a.facility, b.facility, c.facility) == (0.5, 0.25, 0.75)
    # discrimination by hand: A: x=(1,1,0,0), rest=(2,1,1,0): cov 1, sxx 1, syy 2 -> 1/sqrt(2)
    assert a.discrimination == pytest.approx(1 / math.sqrt(2))
    # B: x=(1,0,0,0), rest=(2,2,1,0): cov .75, sxx .75, syy 2.75 -> .75/sqrt(.75*2.75)
    assert b.discrimination == pytest.approx(0.75 / math.sqrt(0.75 * 2.75))
    assert c.discrimination == pytest.approx(0.75 / math.sqrt(0.75 * 2.75))
    # alpha: k=3, item variances .25 + .1875 + .1875 = .625, total variance 1.25 -> 1.5 * (1 - .5) = .75
    assert stats.alpha == pytest.approx(0.75)
    assert stats.totals == pytest.approx([100.0, 200 / 3, 100 / 3, 0.0])
    assert a.mean_time_s == 25.0
    # distractors: two picked the key, two the same wrong option
    picks = {(n, ok) for _, n, ok in a.distractors if n}
    assert picks == {(2, True), (2, False)}
    # the wrong numeric answer and its mistake
    assert c.wrong_numeric[0][1] == 1 and c.wrong_numeric[0][2] == "derivative_as_value"
    assert c.mistakes == [("derivative_as_value", 1)]
    assert "too hard" not in b.flags and b.flags == []
    assert analysis.pearson([1, 1], [1, 2]) is None  # no variance: undefined, not 0


def test_flags_use_the_documented_thresholds():
    st = analysis.ItemStats("x", "numeric", "t", n=10, facility=0.96, discrimination=0.1)
    assert st.flags == ["too easy", "not discriminating"]
    assert analysis.ItemStats("y", "numeric", "t", n=10, facility=0.1, discrimination=0.5).flags == ["too hard"]
    assert analysis.ItemStats("z", "numeric", "t", n=9, facility=0.1, discrimination=0.1).flags == []  # too few


def test_analysis_page_has_svg_charts(teacher, db):
    _crafted_attempts(db, [[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], times=[10, 20, 30, 40])
    page = teacher.get(f"/instructor/quizzes/{QUIZ}/analysis").get_data(as_text=True)
    assert page.count("<svg") == 2 and "Cronbach" in page and "0.750" in page
    assert "<script" not in page


# -- overrides, regrade, exports, roster, settings

def _attempt_with_answers(client, users, n_right=3):
    users.add("ann", full_name="Ann A", student_id="S-1", email="ann@example.org")
    h = users.token(client, "ann")
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    key = {q["id"]: q for q in client.get(f"/api/v1/attempts/{a['attempt_id']}/key",
                                          headers=users.token(client, "teacher")).json["questions"]}
    for q in a["questions"][:n_right]:
        client.put(f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}", headers=h,
                   json={"response": key[q["id"]]["answer"]})
    result = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=h).json
    return a, key, result


def test_override_needs_a_reason_and_is_audited(app, users):
    users.add("teacher", "instructor")
    c = app.test_client()
    a, key, result = _attempt_with_answers(c, users)
    users.login(c, "teacher")
    aid = a["attempt_id"]
    q = a["questions"][5]["id"]
    assert c.post(f"/instructor/attempts/{aid}/override", data={"question": q, "score": "1"}).status_code == 400
    assert c.post(f"/instructor/attempts/{aid}/override", data={"question": q, "score": "99", "reason": "x"}).status_code == 400
    r = c.post(f"/instructor/attempts/{aid}/override", data={"question": q, "score": "0.5", "reason": "partial credit"})
    assert r.status_code == 302
    page = c.get(f"/instructor/attempts/{aid}").get_data(as_text=True)
    assert "partial credit" in page and "teacher" in page and "override" in page
    csv_text = c.get(f"/instructor/quizzes/{QUIZ}/grades.csv").get_data(as_text=True)
    row = next(csv.DictReader(io.StringIO(csv_text)))
    assert float(row["score"]) == pytest.approx(result["score"] + 0.5)


def test_regrade_shows_before_after_then_applies(app, users, banks_copy, db):
    from quizengine.services.banks import load_banks

    users.add("teacher", "instructor")
    c = app.test_client()
    a, key, result = _attempt_with_answers(c, users, n_right=20)
    # find a static choice or true/false question and change its key in a copy of the banks
    target = next(k for k in key.values() if k["item_id"].startswith("vocab-") or k["answer"] in (True, False))
    item_id = target["item_id"]
    for path in banks_copy.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for item in data["items"]:
            if item["id"] == item_id:
                if item["type"] == "true_false":
                    item["answer"] = not item["answer"]
                elif "choices" in item:
                    flags = [ch.get("correct", False) for ch in item["choices"]]
                    for ch in item["choices"]:
                        ch["correct"] = False
                    if item["type"] == "single_choice":
                        item["choices"][(flags.index(True) + 1) % len(flags)]["correct"] = True
                    else:
                        item["choices"][flags.index(True)]["correct"] = True
                        if len([f for f in flags if f]) == 1:
                            item["choices"][(flags.index(True) + 1) % len(flags)]["correct"] = True
                else:
                    item["answers"] = ["zzz-not-the-old-answer"] if item["type"] == "short_text" else item.get("answers")
                    if item["type"] == "matching":
                        item["pairs"][0]["right"], item["pairs"][1]["right"] = item["pairs"][1]["right"], item["pairs"][0]["right"]
                    if item["type"] == "ordering":
                        item["sequence"] = list(reversed(item["sequence"]))
                path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with db.write() as s:
        assert load_banks(s, banks_copy).new_versions == 1
        new_version = s.get(CurrentItem, item_id).item_version_id
    users.login(c, "teacher")
    page = c.get(f"/instructor/regrade/{item_id}?version={new_version}").get_data(as_text=True)
    assert "ann" in page and "<strong>1</strong> attempt affected" in page
    r = c.post(f"/instructor/regrade/{item_id}", data={"version": new_version, "reason": "fixed key"})
    assert r.status_code == 200 and "Yes, regrade 1 attempt" in r.get_data(as_text=True)  # a confirmation first
    with db.read() as s:
        assert next(q for q in s.get(Attempt, a["attempt_id"]).questions
                    if q.item_version.item_id == item_id).item_version_id != new_version
    r = c.post(f"/instructor/regrade/{item_id}", data={"version": new_version, "reason": "fixed key", "confirmed": "1"},
               follow_redirects=True)
    assert r.status_code == 200 and "1 scores changed" in r.get_data(as_text=True)
    with db.read() as s:
        att = s.get(Attempt, a["attempt_id"])
        assert att.score < result["score"]
        aq = next(q for q in att.questions if q.item_version.item_id == item_id)
        assert aq.item_version_id == new_version
    assert "fixed key" in c.get(f"/instructor/attempts/{a['attempt_id']}").get_data(as_text=True)


def test_every_export_format_parses_back_to_the_api_scores(app, users):
    users.add("teacher", "instructor")
    c = app.test_client()
    a, key, result = _attempt_with_answers(c, users, n_right=4)
    users.add("bob", full_name="Bob B", student_id="S-2", email="bob@example.org")
    users.login(c, "teacher")
    plain = list(csv.DictReader(io.StringIO(c.get(f"/instructor/quizzes/{QUIZ}/grades.csv?format=plain").get_data(as_text=True))))
    assert [r["username"] for r in plain] == ["ann", "bob"]
    assert float(plain[0]["score"]) == result["score"] and plain[1]["score"] == ""
    assert float(plain[0]["max_score"]) == result["max_score"]
    canvas = list(csv.reader(io.StringIO(c.get(f"/instructor/quizzes/{QUIZ}/grades.csv?format=canvas").get_data(as_text=True))))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                         "Module 04 preparation quiz (module-04-prep)"]
    assert canvas[1][0] == "Points Possible" and float(canvas[1][5]) == result["max_score"]
    by_sis = {row[2]: row for row in canvas[2:]}
    assert float(by_sis["S-1"][5]) == result["score"] and by_sis["S-2"][5] == ""
    moodle = list(csv.DictReader(io.StringIO(c.get(f"/instructor/quizzes/{QUIZ}/grades.csv?format=moodle").get_data(as_text=True))))
    assert moodle[0] == {"Username": "ann", "Email address": "ann@example.org",
                         "Module 04 preparation quiz": f"{result['score']:.10g}"}
    responses = list(csv.DictReader(io.StringIO(c.get(f"/instructor/quizzes/{QUIZ}/responses.csv").get_data(as_text=True))))
    assert len(responses) == 20 and {r["username"] for r in responses} == {"ann"}
    assert sum(float(r["score"]) for r in responses) == pytest.approx(result["score"])
    assert {"item_id", "item_version", "seed", "response", "time_s"} <= set(responses[0])


def test_roster_import_in_the_browser_all_or_nothing(teacher, db):
    bad = "username,full_name,student_id,email\ncarl,Carl,1,c@x\ncarl,Carl2,2,d@x\n"
    r = teacher.post("/instructor/roster", data={"text": bad})
    assert r.status_code == 400 and "line 3: username &#39;carl&#39; repeats line 2" in r.get_data(as_text=True)
    with db.read() as s:
        assert s.scalar(select(User.id).where(User.username == "carl")) is None
    good = "username,full_name,student_id,email\ncarl,Carl C,1,c@x\ndora,Dora D,2,d@x\n"
    r = teacher.post("/instructor/roster", data={"roster": (io.BytesIO(good.encode()), "roster.csv")},
                     content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Generated passwords" in page and "Dora D" in page
    import re

    password = re.search(r"<td>dora</td><td><code>([^<]+)</code>", page).group(1)
    assert teacher.application.test_client().post("/login", data={"username": "dora", "password": password}).status_code == 302


def test_password_reset_shows_a_new_password_once(teacher, users, db, app):
    users.add("ann")
    with db.read() as s:
        uid = s.scalar(select(User.id).where(User.username == "ann"))
    r = teacher.post(f"/instructor/roster/{uid}/reset", data={"confirmed": "1"}, follow_redirects=True)
    text = r.get_data(as_text=True)
    new = text.split("New password for ann: ")[1].split(" ")[0]
    c = app.test_client()
    assert users.login(c, "ann").status_code == 401
    assert users.login(c, "ann", new).status_code == 302


def test_settings_set_dates_that_survive_a_bank_reload(teacher, db, app):
    from quizengine.models import Quiz
    from quizengine.services.banks import load_banks

    r = teacher.post(f"/instructor/quizzes/{QUIZ}/settings",
                     data={"opens_at": "2030-01-01T09:00", "closes_at": "2030-01-02T09:00", "time_limit_min": "30",
                           "max_attempts": "3"})
    assert r.status_code == 302
    with db.write() as s:
        load_banks(s, Path(app.config["BANKS"]))
    with db.read() as s:
        q = s.get(Quiz, QUIZ)
        assert q.time_limit_s is not None and q.opens_at is not None and q.dates_locked
    r = teacher.post(f"/instructor/quizzes/{QUIZ}/settings", data={"opens_at": "2030-01-02T09:00", "closes_at": "2030-01-01T09:00"})
    assert r.status_code == 400 and b"after the opening time" in r.data
