"""The student flow through the HTML pages (no JavaScript), and role checks on pages."""

from __future__ import annotations



from quizengine.services import views
from quizengine.services.attempts import load_attempt
from quizengine.services.clock import now

QUIZ = "module-04-prep"


def form_value(q: dict, answer):
    """Encode a key answer as the plain form would send it."""
    name = f"q-{q['id']}"
    t = q["type"]
    if t in ("single_choice", "short_text"):
        return {name: answer}
    if t == "true_false":
        return {name: "true" if answer else "false"}
    if t == "multiple_select":
        return {name: answer}
    if t == "numeric":
        if not q["shape"]:
            return {name: repr(answer)}
        if len(q["shape"]) == 1:
            return {f"{name}-{i}": repr(v) for i, v in enumerate(answer)}
        return {f"{name}-{i}-{j}": repr(v) for i, row in enumerate(answer) for j, v in enumerate(row)}
    if t == "matching":
        return {f"{name}-{k}": v for k, v in answer.items()}
    if t == "ordering":
        return {f"{name}-{oid}": str(pos + 1) for pos, oid in enumerate(answer)}
    if t == "multipart":  # each part is a numeric widget named q-ID-PART
        out = {}
        for p in q["parts"]:
            out.update(form_value({"id": f"{q['id']}-{p['id']}", "type": "numeric", "shape": p["shape"]}, answer[p["id"]]))
        return out
    raise AssertionError(t)


def test_login_page_and_bad_login(client, users):
    users.add("ann")
    assert b"Log in" in client.get("/login").data
    r = users.login(client, "ann", "wrong-password")
    assert r.status_code == 401 and b"Wrong username or password" in r.data


def test_whole_flow_without_javascript(client, users, app):
    users.add("ann", full_name="Ann Student")
    users.add("teacher", "instructor")
    users.login(client, "ann")
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Module 04 preparation quiz" in page and "Start attempt 1" in page
    r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert page.count('class="card question"') == 20 and 'class="qnav"' in page and "<math" in page
    with app.extensions["quizengine.db"].read() as s:
        teacher = s.query(__import__("quizengine.models", fromlist=["User"]).User).filter_by(username="teacher").one()
        view = views.attempt_view(s, load_attempt(s, teacher, aid), now())
        key = views.key_view(load_attempt(s, teacher, aid))
    answers = {q["id"]: q["answer"] for q in key["questions"]}
    form = {}
    for q in view["questions"]:
        form.update(form_value(q, answers[q["id"]]))
    r = client.post(f"/attempts/{aid}/save", data=form)
    assert r.status_code == 302
    page = client.get(f"/attempts/{aid}").get_data(as_text=True)
    assert "Saved (20 answers)." in page and page.count('class="answered"') == 20
    confirm = client.get(f"/attempts/{aid}/confirm").get_data(as_text=True)
    assert "Every question has an answer." in confirm
    r = client.post(f"/attempts/{aid}/submit")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/attempts/{aid}/result")
    result = client.get(f"/attempts/{aid}/result").get_data(as_text=True)
    total = sum(q["points"] for q in view["questions"])
    from quizengine.bank.params import fmt

    assert f"{fmt(total)} / {fmt(total)}" in result
    assert "Worked solution with your numbers" in result and "Correct answer:" in result


def test_confirmation_lists_unanswered(client, users):
    users.add("ann")
    users.login(client, "ann")
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempts/{aid}/confirm").get_data(as_text=True)
    assert "You have not answered 20 questions" in page


def test_students_get_403_on_instructor_pages_and_404_on_others_attempts(client, users, app):
    users.add("ann")
    users.add("bob")
    users.login(client, "bob")
    bob_aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    other = app.test_client()
    users.login(other, "ann")
    for url in ["/instructor/", f"/instructor/quizzes/{QUIZ}/gradebook", f"/instructor/quizzes/{QUIZ}/grades.csv",
                f"/instructor/attempts/{bob_aid}"]:
        assert other.get(url).status_code == 403, url
    for url in [f"/attempts/{bob_aid}", f"/attempts/{bob_aid}/result", f"/attempts/{bob_aid}/confirm"]:
        assert other.get(url).status_code == 404, url
    assert other.post(f"/attempts/{bob_aid}/submit").status_code == 404
    assert other.post(f"/attempts/{bob_aid}/save", data={}).status_code == 404


def test_pages_need_login(client):
    for url in ["/dashboard", "/instructor/", "/attempts/1"]:
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_instructor_gradebook_and_csv_download(client, users):
    users.add("ann", full_name="=cmd|' /C calc'!A0")
    users.add("teacher", "instructor")
    users.login(client, "teacher")
    page = client.get(f"/instructor/quizzes/{QUIZ}/gradebook").get_data(as_text=True)
    assert "ann" in page
    for fmt in ("plain", "canvas", "moodle"):
        r = client.get(f"/instructor/quizzes/{QUIZ}/grades.csv?format={fmt}")
        assert r.status_code == 200 and r.mimetype == "text/csv"
    plain = client.get(f"/instructor/quizzes/{QUIZ}/grades.csv").get_data(as_text=True)
    assert "'=cmd" in plain  # formula injection escaped


def test_logout(client, users):
    users.add("ann")
    users.login(client, "ann")
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_page_autosave_accepts_millisecond_seq_and_refuses_older(client, users):
    """Pages before issue 9 sent seq = Date.now(): such seqs are still taken; a stale tab's older seq is refused."""
    users.add("ann")
    users.login(client, "ann")
    aid = int(client.post(f"/quizzes/{QUIZ}/start").headers["Location"].rsplit("/", 1)[1])
    now_ms = 1_790_000_000_000
    r = client.post(f"/attempts/{aid}/autosave", json={"question": "q1", "response": None, "seq": now_ms})
    assert r.status_code == 200 and r.json["seq"] == now_ms
    r = client.post(f"/attempts/{aid}/autosave", json={"question": "q1", "response": None, "seq": now_ms - 5})
    assert r.status_code == 409


def test_head_requests_answer_like_get_not_like_a_failed_form(client, users):
    """A HEAD (link checkers, load balancers' health checks) is a GET without a body, not a login attempt."""
    for path in ("/login",):
        r = client.head(path)
        assert r.status_code == 200, path
        assert r.data == b""
    users.add("ann")
    users.login(client, "ann")
    assert client.head("/account/password").status_code == 200
