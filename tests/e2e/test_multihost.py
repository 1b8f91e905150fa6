"""Past one machine: two `quizengine serve` instances on one PostgreSQL database.

Both instances have their own instance folder, port and workers, and share the database, the
secret key and the banks folder, as N hosts behind a load balancer would (README, "Several hosts").
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from quizengine.models import Attempt, AttemptState, LtiLineItem, LtiPlatform, LtiScoreOutbox, User
from tests.live import LiveServer
from tests.lti.mockplatform import SCOPES, LineItem, MockPlatform
from tests.pg import throwaway_postgres

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
TIMED = 12  # students whose timed attempts both instances' sweepers race to close
QUIZZES = {
    "multi": "id: multi\ntitle: Multi\nmax_attempts: 100\nslots:\n  - {items: [s-num-static]}\n",
    "edited": "id: edited\ntitle: Edited\nmax_attempts: 100\nslots:\n  - {items: [s-single]}\n",
    # 0.02 minutes: a 1 s time limit, the shortest a quiz may have
    "timed": "id: timed\ntitle: Timed\ntime_limit_min: 0.02\nslots:\n  - {items: [s-tf]}\n",
}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multihost")
    banks = tmp / "banks"
    shutil.copytree(SAMPLE, banks)
    for name, text in QUIZZES.items():
        (banks / "quizzes" / f"{name}.yaml").write_text(text)
    with throwaway_postgres() as url:
        servers = []
        for name in ("a", "b"):
            (tmp / name).mkdir()
            srv = LiveServer(tmp / name, banks, workers=2, database_url=url)
            # Every worker of both hosts sweeps 5 times a second; the login rates are off (every
            # client here is 127.0.0.1), the per-(username, address) throttle stays on.
            srv.env.update(QUIZENGINE_EXPIRY_SWEEP_SECONDS="0.2", QUIZENGINE_LOGINS_PER_ADDRESS="0",
                           QUIZENGINE_LOGINS_PER_SECOND="0")
            servers.append(srv)
        a, b = servers
        roster = "username,full_name,student_id,email,password\n" + "".join(
            f"{u},{u.upper()},{k},{u}@example.org,password-{u}\n"
            for k, u in enumerate(["ann", "bob", "cat", *(f"t{i}" for i in range(TIMED))]))
        a.import_roster(roster)  # migrates the database first
        a.add_user("prof", "instructor", "password-prof")
        a.start()  # one after the other: each start loads the banks
        b.start()
        try:
            yield a, b, url
        finally:
            a.stop()
            b.stop()


def form_login(base: str, username: str, password: str) -> requests.Session:
    http = requests.Session()
    csrf = csrf_of(http.get(base + "/login", timeout=10).text)
    r = http.post(base + "/login", data={"csrf_token": csrf, "username": username, "password": password},
                  allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:500]
    return http


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def same_cookies(http: requests.Session) -> requests.Session:
    """A second client holding only the first one's cookies (another tab, routed to the other host)."""
    other = requests.Session()
    other.cookies.update(http.cookies)
    return other


# ---------------------------------------------------------------- 1. sessions and tokens

def test_a_session_and_a_token_from_one_host_work_on_the_other(hosts):
    a, b, _ = hosts
    on_a = form_login(a.url, "ann", "password-ann")
    on_b = same_cookies(on_a)
    page = on_b.get(b.url + "/", timeout=10)
    assert page.status_code == 200 and "ANN" in page.text and page.url.startswith(b.url + "/")
    assert "/login" not in page.url

    token = a.token("ann", "password-ann")
    status, quizzes = b.api("GET", "/api/v1/quizzes", token=token)
    assert status == 200 and {q["id"] for q in quizzes} >= {"multi", "edited"}

    # Logging out on B ends the session on A as well: it is a row of the shared database.
    logout = on_b.post(b.url + "/logout", data={"csrf_token": csrf_of(page.text)}, allow_redirects=False, timeout=10)
    assert logout.status_code == 302
    after = on_a.get(a.url + "/", allow_redirects=False, timeout=10)
    assert after.status_code == 302 and "/login" in after.headers["Location"]


# ---------------------------------------------------------------- 2. autosaves alternating between hosts

def test_autosaves_alternating_between_hosts_keep_their_order(hosts):
    a, b, _ = hosts
    token = a.token("bob", "password-bob")
    status, attempt = b.api("POST", "/api/v1/quizzes/multi/attempts", token=token)
    assert status == 201, attempt
    aid, qid = attempt["attempt_id"], attempt["questions"][0]["id"]
    path = f"/api/v1/attempts/{aid}/responses/{qid}"
    for seq in range(1, 11):
        srv = a if seq % 2 else b
        status, body = srv.api("PUT", path, {"response": f"{seq}.5", "seq": seq}, token=token)
        assert status == 200, (seq, body)
    for srv in (a, b):  # an older seq is stale on either host, and the stored answer comes back
        status, body = srv.api("PUT", path, {"response": "5.5", "seq": 5}, token=token)
        assert status == 409 and body["seq"] == 10 and body["response"] == "10.5", body
    for srv in (a, b):
        status, view = srv.api("GET", f"/api/v1/attempts/{aid}", token=token)
        saved = {q["id"]: q for q in view["questions"]}[qid]
        assert status == 200 and (saved["seq"], saved["response"]) == (10, "10.5"), view


# ---------------------------------------------------------------- 3. a bank edit on one host, served by the other

def test_a_bank_edit_on_one_host_is_served_by_the_other_within_a_second(hosts):
    a, b, _ = hosts
    prof = form_login(a.url, "prof", "password-prof")
    editor = prof.get(a.url + "/instructor/banks/edit/sample.yaml", timeout=30)
    assert editor.status_code == 200
    text = (SAMPLE / "sample.yaml").read_text()
    mark = f"edited-{time.time_ns()}"
    new = text.replace("What is an **epoch**?", f"What is an **epoch** ({mark})?")
    assert new != text
    token = a.token("cat", "password-cat")
    status, before = b.api("POST", "/api/v1/quizzes/edited/attempts", token=token)  # B has served the old one
    assert status == 201 and mark not in str(before["questions"])
    b.api("POST", f"/api/v1/attempts/{before['attempt_id']}/submit", token=token)

    saved = prof.post(a.url + "/instructor/banks/edit/sample.yaml",
                      data={"csrf_token": csrf_of(editor.text), "text": new}, allow_redirects=False, timeout=120)
    assert saved.status_code == 302, saved.text[:2000]
    deadline, seen = time.monotonic() + 1.0, None
    while time.monotonic() < deadline:  # each try is a new attempt started on B
        status, started = b.api("POST", "/api/v1/quizzes/edited/attempts", token=token)
        assert status == 201, started
        if mark in str(started["questions"]):
            seen = time.monotonic()
            break
        b.api("POST", f"/api/v1/attempts/{started['attempt_id']}/submit", token=token)
    assert seen is not None, "host B still drew the old item version a second after the save on host A"
    # The instructor's item page on B shows the edit too (the shared banks folder, validated again).
    page = same_cookies(prof).get(b.url + "/instructor/banks/items/s-single", timeout=120)
    assert page.status_code == 200 and mark in page.text

    # A quiz's settings saved on A: B's students see them from the next request on.
    form = prof.get(a.url + "/instructor/quizzes/multi/settings", timeout=30)
    changed = prof.post(a.url + "/instructor/quizzes/multi/settings", allow_redirects=False, timeout=30,
                        data={"csrf_token": csrf_of(form.text), "opens_at": "", "closes_at": "", "time_limit_min": "",
                              "max_attempts": "77", "repeats": "avoid"})
    assert changed.status_code == 302, changed.text[:2000]
    status, quizzes = b.api("GET", "/api/v1/quizzes", token=token)
    assert status == 200 and {q["id"]: q["max_attempts"] for q in quizzes}["multi"] == 77


# ---------------------------------------------------------------- 4. login throttles

def test_login_failures_on_one_host_count_on_the_other(hosts):
    a, b, _ = hosts
    for _ in range(3):  # the free failures of the pair (username, address), on A
        status, body = a.api("POST", "/api/v1/auth/token", {"username": "cat", "password": "wrong"})
        assert status == 401, body
    status, body = b.api("POST", "/api/v1/auth/token", {"username": "cat", "password": "wrong"})
    assert status == 401, body  # a 4th failure, on B: the pair now waits
    for srv in (a, b):
        r = requests.post(srv.url + "/api/v1/auth/token", json={"username": "cat", "password": "password-cat"},
                          timeout=30)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, (srv.url, r.text)


# ---------------------------------------------------------------- 5. two hosts' sweepers

def test_the_sweepers_of_both_hosts_grade_each_expired_attempt_once_and_post_it_once(hosts):
    a, b, url = hosts
    engine = create_engine(url)
    try:
        sweep_race(a, b, engine)
    finally:
        engine.dispose()


def sweep_race(a: LiveServer, b: LiveServer, engine) -> None:  # type: ignore[no-untyped-def]
    with MockPlatform(tool_url=a.url) as platform:
        a.cli("lti", "add-platform", *platform.registration_args())
        with Session(engine) as s, s.begin():
            pid = s.scalar(select(LtiPlatform.id).where(LtiPlatform.issuer == platform.issuer))
            users = dict(s.execute(select(User.username, User.id).where(User.username.like("t%"))).all())
            for k in range(TIMED):
                item = f"{platform.url}/lineitems/{k}"
                platform.line_items[item] = LineItem(item, "Timed", 1.0, "timed", f"link-{k}")
                s.add(LtiLineItem(user_id=users[f"t{k}"], quiz_id="timed", platform_id=pid, lineitem=item,
                                  lti_sub=f"sub-{k}", scopes=SCOPES))
        tokens = [a.token(f"t{k}", f"password-t{k}") for k in range(TIMED)]
        results: list[tuple[int, object]] = [(0, None)] * TIMED

        def start(k: int) -> None:
            srv = (a, b)[k % 2]
            status, attempt = srv.api("POST", "/api/v1/quizzes/timed/attempts", token=tokens[k])
            if status == 201:  # refused when the second is already up on a busy machine: then it scores 0
                srv.api("PUT", f"/api/v1/attempts/{attempt['attempt_id']}/responses/q1",
                        {"response": k % 2 == 0, "seq": 1}, token=tokens[k])
            results[k] = (status, attempt)

        threads = [threading.Thread(target=start, args=(k,)) for k in range(TIMED)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(status == 201 for status, _ in results), results
        ids = [attempt["attempt_id"] for _, attempt in results]

        # Nobody reads the attempts again: only the sweepers (2 hosts x 2 workers) close them.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as s:
                open_left = s.scalar(select(func.count()).where(Attempt.id.in_(ids), Attempt.state == AttemptState.OPEN))
                unsent = s.scalar(select(func.count()).select_from(LtiScoreOutbox)
                                  .where(LtiScoreOutbox.version > LtiScoreOutbox.sent_version))
                outbox = s.scalar(select(func.count()).select_from(LtiScoreOutbox))
            if open_left == 0 and outbox == TIMED and unsent == 0:
                break
            time.sleep(0.1)  # polling the database, with a deadline
        assert (open_left, outbox, unsent) == (0, TIMED, 0)
        with Session(engine) as s:
            attempts = list(s.scalars(select(Attempt).where(Attempt.id.in_(ids))))
            versions = list(s.scalars(select(LtiScoreOutbox.version)))
        assert all(x.state == AttemptState.EXPIRED and x.submitted_at is not None for x in attempts)
        # Each grade's transaction bumps its outbox row once: version 1 means graded (and written) once.
        assert versions == [1] * TIMED
        posted = [item for item, _, _ in platform.recorded.scores]
        assert sorted(posted) == sorted(platform.line_items), "each score posted exactly once"
        by_id = {x.id: x for x in attempts}
        graded = {f"sub-{k}": (by_id[i].score, by_id[i].max_score) for k, i in enumerate(ids)}
        assert {body["userId"]: (body["scoreGiven"], body["scoreMaximum"])
                for _, body, _ in platform.recorded.scores} == graded
