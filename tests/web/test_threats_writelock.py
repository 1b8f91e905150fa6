"""Issue 9, "nothing slow under the write lock": one test per threat, named after it.

A slow step (grading, password hashing) is made to block on an Event inside the slow function;
meanwhile another student's autosave, a write transaction on the same database, must complete.
Then the Event is released and the slow step must finish with the right result.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from quizengine import server
from quizengine.models import Attempt, ItemVersion, User
from quizengine.passwords import verify_password
from quizengine.services import accounts, closing, grades, scores

QUIZ = "module-04-prep"
WAIT_S = 30  # an upper bound for a thread to reach a point; never a stand-in for synchronisation


class Gate:
    """Wraps a slow function: its first ``callers`` calls wait for ``release``; ``inside`` is set once they all wait."""

    def __init__(self, fn, callers: int = 1):
        self.fn, self.callers, self.calls = fn, callers, 0
        self.inside, self.release, self._lock = threading.Event(), threading.Event(), threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
            held = self.calls <= self.callers
            if self.calls == self.callers:
                self.inside.set()
        if held and not self.release.wait(WAIT_S):
            raise TimeoutError("the test never released the gate")
        return self.fn(*args, **kwargs)


def in_thread(fn):
    """Run fn in a thread; returns the thread and a dict that gets ``value`` or ``error``."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, out


def finish(t, out, gate):
    gate.release.set()
    t.join(WAIT_S)
    assert not t.is_alive()
    if "error" in out:
        raise out["error"]
    return out["value"]


def begin(client, users, name, answered=3, skip_first=False):
    """A student with an open attempt whose first questions hold the key's answers."""
    users.add(name)
    h = users.token(client, name)
    a = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
    key = {q["id"]: q["answer"] for q in client.get(f"/api/v1/attempts/{a['attempt_id']}/key",
                                                     headers=users.token(client, "teacher")).json["questions"]}
    for q in a["questions"][1 if skip_first else 0:answered]:
        assert save(client, h, a["attempt_id"], q["id"], key[q["id"]]).status_code == 200
    return SimpleNamespace(id=a["attempt_id"], h=h, key=key, questions=a["questions"], name=name)


def save(client, h, attempt_id, qid, value):
    return client.put(f"/api/v1/attempts/{attempt_id}/responses/{qid}", headers=h, json={"response": value})


def points(st, n):
    return pytest.approx(sum(q["points"] for q in st.questions[:n]))


def autosave_completes(client, st):
    """Another student's autosave: a write transaction that must not wait for the slow step."""
    q = st.questions[-1]["id"]
    r = save(client, st.h, st.id, q, st.key[q])
    assert r.status_code == 200, r.json


def make_due(db, *attempt_ids, minutes=1):
    with db.write() as s:
        for k, aid in enumerate(attempt_ids):
            s.get(Attempt, aid).expires_at = datetime.now(timezone.utc) - timedelta(minutes=minutes, seconds=len(attempt_ids) - k)


@pytest.fixture
def students(users):
    users.add("teacher", "instructor")
    return users


# -- grading at submit and at expiry

def test_threat_slow_grading_at_submit_does_not_hold_the_write_lock(app, client, students, db, monkeypatch):
    ann, bob = begin(client, students, "ann"), begin(client, students, "bob")
    gate = Gate(grades.grade)
    monkeypatch.setattr(grades, "grade", gate)
    t, out = in_thread(lambda: app.test_client().post(f"/api/v1/attempts/{ann.id}/submit", headers=ann.h))
    try:
        assert gate.inside.wait(WAIT_S)
        autosave_completes(client, bob)
    finally:
        r = finish(t, out, gate)
    assert r.status_code == 200 and r.json["score"] == points(ann, 3)
    again = client.post(f"/api/v1/attempts/{ann.id}/submit", headers=ann.h)
    assert again.json == r.json  # a second submit returns the same result and changes nothing


def test_threat_answer_saved_while_grading_is_graded_not_lost(app, client, students, monkeypatch):
    ann = begin(client, students, "ann", skip_first=True)  # q2 and q3 answered, q1 not yet
    gate = Gate(grades.grade)
    monkeypatch.setattr(grades, "grade", gate)
    t, out = in_thread(lambda: app.test_client().post(f"/api/v1/attempts/{ann.id}/submit", headers=ann.h))
    try:
        assert gate.inside.wait(WAIT_S)
        q1 = ann.questions[0]["id"]
        assert save(client, ann.h, ann.id, q1, ann.key[q1]).status_code == 200  # lands while q2 is graded
    finally:
        r = finish(t, out, gate)
    assert r.status_code == 200 and r.json["score"] == points(ann, 3)  # graded again with q1's answer
    assert r.json["questions"][0]["score"] == pytest.approx(ann.questions[0]["points"])


@pytest.mark.parametrize("how", ["sweep", "reading the attempt"])
def test_threat_slow_grading_at_expiry_does_not_hold_the_write_lock(app, client, students, db, monkeypatch, how):
    ann, bob = begin(client, students, "ann"), begin(client, students, "bob")
    make_due(db, ann.id)
    gate = Gate(grades.grade)
    monkeypatch.setattr(grades, "grade", gate)
    monkeypatch.setattr(closing, "_TROUBLE", {})
    expire = (lambda: server.sweep(app)) if how == "sweep" else \
        (lambda: app.test_client().get(f"/api/v1/attempts/{ann.id}", headers=ann.h).json["state"])
    t, out = in_thread(expire)
    try:
        assert gate.inside.wait(WAIT_S)
        autosave_completes(client, bob)
    finally:
        got = finish(t, out, gate)
    assert got == (1 if how == "sweep" else "expired")
    with db.read() as s:
        a = s.get(Attempt, ann.id)
        assert a.state == "expired" and a.score == points(ann, 3)
        assert s.get(Attempt, bob.id).state == "open"


def test_threat_submit_and_sweep_at_once_grade_the_attempt_once(app, client, students, db, monkeypatch):
    ann = begin(client, students, "ann")
    make_due(db, ann.id)
    gate = Gate(grades.grade, callers=2)  # both have read the attempt and are grading it
    monkeypatch.setattr(grades, "grade", gate)
    monkeypatch.setattr(closing, "_TROUBLE", {})
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == "ann"))
    t1, out1 = in_thread(lambda: closing.submit_attempt(db, user, ann.id))
    t2, out2 = in_thread(lambda: closing.expire_due(db))
    assert gate.inside.wait(WAIT_S)
    closed = [finish(t1, out1, gate), finish(t2, out2, gate)]
    assert int(closed[0]) + closed[1] == 1  # exactly one of them wrote the grades
    with db.read() as s:
        a = s.get(Attempt, ann.id)
        assert a.state == "expired" and a.score == points(ann, 3)


def test_two_sweeps_at_once_close_each_attempt_once(app, client, students, db, monkeypatch):
    ann = begin(client, students, "ann")
    make_due(db, ann.id)
    gate = Gate(closing._grade_work)  # the first sweep waits while grading ann's attempt
    monkeypatch.setattr(closing, "_grade_work", gate)
    monkeypatch.setattr(closing, "_TROUBLE", {})
    t1, out1 = in_thread(lambda: closing.expire_due(db))
    assert gate.inside.wait(WAIT_S)
    second = closing.expire_due(db)  # another worker's, or another host's, sweep meanwhile
    first = finish(t1, out1, gate)
    assert first + second == 1  # exactly one of them wrote the grades
    # On PostgreSQL the second sweep leaves the attempt the first one claimed; on SQLite (one host,
    # no claims) it grades it too, and the first sweep's write finds the attempt closed.
    assert gate.calls == (2 if db.is_sqlite else 1)
    with db.read() as s:
        a = s.get(Attempt, ann.id)
        assert a.state == "expired" and a.score == points(ann, 3)


# -- the sweeper

def test_threat_sweep_with_one_attempt_whose_grading_raises_still_expires_the_others(app, client, students, db,
                                                                                      monkeypatch, caplog):
    sts = [begin(client, students, name) for name in ("ann", "bob", "cy")]
    bad = sts[0]
    make_due(db, *(st.id for st in sts))  # the bad one is due first, so it is graded first
    original = closing._grade_work

    def grade_work(work, deadline):
        if work.attempt_id == bad.id:
            raise RuntimeError("this item's grader is broken")
        return original(work, deadline)

    monkeypatch.setattr(closing, "_grade_work", grade_work)
    monkeypatch.setattr(closing, "_TROUBLE", {})
    assert server.sweep(app) == 2
    assert f"attempt {bad.id} left open" in caplog.text and "grader is broken" in caplog.text
    with db.read() as s:
        assert [s.get(Attempt, st.id).state for st in sts] == ["open", "expired", "expired"]
    monkeypatch.setattr(closing, "_grade_work", original)  # the item is fixed: the next sweep submits it
    assert server.sweep(app) == 1
    with db.read() as s:
        a = s.get(Attempt, bad.id)
        assert a.state == "expired" and a.score == points(bad, 3)


def test_threat_slow_attempt_runs_over_its_budget_and_goes_last_so_the_others_expire(app, client, students, db,
                                                                                      monkeypatch, caplog):
    sts = [begin(client, students, name) for name in ("ann", "bob", "cy")]
    slow = sts[0]
    make_due(db, *(st.id for st in sts))  # the slow one is due first
    clock = [1000.0]
    monkeypatch.setattr(closing, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    original = closing._grade_work

    def grade_work(work, deadline):
        if work.attempt_id == slow.id:
            clock[0] += 100.0  # grading this one takes 100 s (of the test's clock)
        return original(work, deadline)

    monkeypatch.setattr(closing, "_grade_work", grade_work)
    monkeypatch.setattr(closing, "_TROUBLE", {})
    # First sweep: the slow attempt runs over its budget and uses up the sweep's; the rest wait.
    assert server.sweep(app) == 0
    assert f"attempt {slow.id} left open" in caplog.text and "time budget" in caplog.text
    # Next sweep: it goes last, so the others are submitted first.
    assert server.sweep(app) == 2
    with db.read() as s:
        assert [s.get(Attempt, st.id).state for st in sts] == ["open", "expired", "expired"]
    assert closing._TROUBLE == {slow.id: 2}


def test_threat_sweep_interval_is_configured_not_hard_coded(monkeypatch, tmp_path):
    from quizengine.config import from_env

    monkeypatch.setenv("QUIZENGINE_SECRET_KEY", "k")
    monkeypatch.setenv("QUIZENGINE_INSTANCE", str(tmp_path))
    monkeypatch.delenv("QUIZENGINE_EXPIRY_SWEEP_SECONDS", raising=False)
    assert from_env()["EXPIRY_SWEEP_SECONDS"] == 15.0
    monkeypatch.setenv("QUIZENGINE_EXPIRY_SWEEP_SECONDS", "2.5")
    assert from_env()["EXPIRY_SWEEP_SECONDS"] == 2.5
    monkeypatch.setenv("QUIZENGINE_EXPIRY_SWEEP_SECONDS", "soon")
    with pytest.raises(ValueError, match="QUIZENGINE_EXPIRY_SWEEP_SECONDS='soon': give a number of seconds"):
        from_env()


# -- regrade

def test_threat_slow_regrade_does_not_hold_the_write_lock(app, client, students, db, monkeypatch):
    ann, bob = begin(client, students, "ann"), begin(client, students, "bob")
    assert client.post(f"/api/v1/attempts/{ann.id}/submit", headers=ann.h).status_code == 200
    with db.write() as s:
        aq = s.get(Attempt, ann.id).questions[0]
        iv = aq.item_version
        new = ItemVersion(item_id=iv.item_id, version="regrade-test", topic=iv.topic, type=iv.type, data=iv.data,
                          bank_source=iv.bank_source, created_at=datetime.now(timezone.utc))
        s.add(new)
        s.flush()
        item_id, new_id, aq_id = iv.item_id, new.id, aq.id
    gate = Gate(scores.grade_question)
    monkeypatch.setattr(scores, "grade_question", gate)
    teacher = app.test_client()
    students.login(teacher, "teacher")
    t, out = in_thread(lambda: teacher.post(f"/instructor/regrade/{item_id}", follow_redirects=True,
                                            data={"version": new_id, "reason": "r", "confirmed": "1"}))
    try:
        assert gate.inside.wait(WAIT_S)
        autosave_completes(client, bob)
    finally:
        r = finish(t, out, gate)
    assert r.status_code == 200 and "Regraded 1 attempts (1 questions)" in r.get_data(as_text=True)
    with db.read() as s:
        a = s.get(Attempt, ann.id)
        assert next(q for q in a.questions if q.id == aq_id).item_version_id == new_id
        assert a.score == points(ann, 3)  # same content, same score


# -- roster import

def roster(n, start=0, password=True):
    head = "username,full_name,student_id,email" + (",password" if password else "") + "\n"
    return head + "".join(f"s{k},Student {k},S-{k},s{k}@example.org" + (f",password-{k:04d}" if password else "") + "\n"
                          for k in range(start, start + n))


def student_count(db):
    with db.read() as s:
        return s.scalar(select(func.count(User.id)).where(User.role == "student"))


def test_threat_roster_import_hashes_passwords_outside_the_write_lock(app, client, students, db, monkeypatch):
    bob = begin(client, students, "bob")
    gate = Gate(accounts.hash_password)
    monkeypatch.setattr(accounts, "hash_password", gate)
    teacher = app.test_client()
    students.login(teacher, "teacher")
    t, out = in_thread(lambda: teacher.post("/instructor/roster", data={"text": roster(5)}, follow_redirects=True))
    try:
        assert gate.inside.wait(WAIT_S)
        autosave_completes(client, bob)
        assert student_count(db) == 1  # nothing written while hashing
    finally:
        r = finish(t, out, gate)
    assert r.status_code == 200 and "Roster imported: 5 students" in r.get_data(as_text=True)
    assert student_count(db) == 6
    with db.read() as s:
        u = s.scalar(select(User).where(User.username == "s3"))
        assert verify_password(u.password_hash, "password-0003")


@pytest.mark.parametrize("line,field,problem", [
    # the PostgreSQL 500s of issue 9
    ("s1,Ann\x00Nul,S-1,a@example.org", "full_name", "contains the control character U+0000"),
    ("s1," + "N" * 5000 + ",S-1,a@example.org", "full_name", "5000 characters; at most 200"),
    # more of the same kind
    ("s1,Ann,S-1\x07,a@example.org", "student_id", "contains the control character U+0007"),
    ("s1,Ann,S-1," + "e" * 190 + "@example.org", "email", "202 characters; at most 200"),
    ("s1,Ann," + "9" * 101 + ",a@example.org", "student_id", "101 characters; at most 100"),
    ("s" + "1" * 150 + ",Ann,S-1,a@example.org", "username", "151 characters; at most 100"),
])
def test_threat_roster_with_nul_or_overlong_fields_is_a_clear_400_and_imports_nothing(app, students, db, line,
                                                                                       field, problem):
    teacher = app.test_client()
    students.login(teacher, "teacher")
    text = "username,full_name,student_id,email\ns0,Good Row,S-0,g@example.org\n" + line + "\n"
    r = teacher.post("/instructor/roster", data={"text": text})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and f"line 3: {field}: {problem}" in page
    assert "line 2" not in page and student_count(db) == 0  # all rows or none


def test_threat_roster_too_slow_to_hash_in_a_page_is_refused_before_writing(app, students, db, monkeypatch):
    clock, calls, lock = [0.0], [0], threading.Lock()
    monkeypatch.setattr(accounts, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    real = accounts.hash_password

    def one_second_hash(pw, method):
        with lock:
            clock[0] += 1.0  # each hash takes 1 s (of the test's clock)
            calls[0] += 1
        return real(pw, method)

    monkeypatch.setattr(accounts, "hash_password", one_second_hash)
    teacher = app.test_client()
    students.login(teacher, "teacher")
    r = teacher.post("/instructor/roster", data={"text": roster(100)})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "hashing 100 passwords takes about" in page
    assert "import at most" in page and "quizengine users import" in page
    assert calls[0] < 100 and student_count(db) == 0


def test_threat_cli_roster_import_states_its_progress(runner, monkeypatch, tmp_path):
    from quizengine.cli import main

    monkeypatch.setenv("QUIZENGINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("QUIZENGINE_SECRET_KEY", "cli-secret")
    monkeypatch.setenv("QUIZENGINE_INSTANCE", str(tmp_path / "instance"))
    f = tmp_path / "roster.csv"
    f.write_text(roster(3))
    r = runner.invoke(main, ["users", "import", str(f)])
    assert r.exit_code == 0, r.output
    assert "hashed 3/3 passwords" in r.stderr and "imported 3 students" in r.stdout
    f.write_text("username,full_name,student_id,email\ns9,Nul\x00Name,S-9,n@example.org\n")
    r = runner.invoke(main, ["users", "import", str(f), "--passwords-out", str(tmp_path / "pw.csv")])
    assert r.exit_code == 2 and "line 2: full_name: contains the control character U+0000" in r.stderr
