"""LTI 1.3 with the Flask test client against the mock LMS of tests/lti/mockplatform.py (served on a port)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from quizengine.lti import keys, outbox, registry
from quizengine.models import Attempt, LtiScoreOutbox, LtiUser, User, UserSession
from quizengine.services import scores
from quizengine.services.attempts import question_id
from quizengine.services.clock import aware, now
from quizengine.services.closing import expire_due
from quizengine.services.views import key_view
from tests.lti.mockplatform import CLAIM, MockPlatform, rsa_key
from tests.web.conftest import FAST_HASH

QUIZ = "module-04-prep"


@pytest.fixture
def platform(app, db):
    def tool_jwks():
        with db.read() as s:
            return keys.jwks(s)

    with MockPlatform(tool_url="http://localhost", tool_jwks=tool_jwks) as p:
        with db.write() as s:
            registry.add_platform(s, p.issuer, p.client_id, [p.deployment_id], p.url + "/auth", p.url + "/token",
                                  p.url + "/jwks", [], outbox.now())
        yield p


def login_redirect(client, platform, hint: str, who: str) -> dict[str, str]:
    """The tool's answer to the LMS's login initiation: the authorization request's parameters."""
    r = client.get(platform.login_url(hint, who))
    assert r.status_code == 302, r.text
    assert r.location.startswith(platform.url + "/auth?")
    return dict(parse_qsl(urlsplit(r.location).query))


def launch(client, platform, hint: str, who: str, tamper=None, key=None, kid=None):
    params = login_redirect(client, platform, hint, who)
    answer = platform.authorize(params, tamper, key, kid)
    assert answer["action"] == "http://localhost/lti/launch"
    return client.post("/lti/launch", data={"id_token": answer["id_token"], "state": answer["state"]})


def deep_link(client, platform, quiz_id: str = QUIZ) -> str:
    """An instructor adds the quiz to the course; the id of the resource link the LMS made for it."""
    r = launch(client, platform, "deep-link", "prof-1")
    assert r.status_code == 200, r.text
    launch_id = re.search(r'name="launch_id" value="([^"]+)"', r.text).group(1)
    r = client.post("/lti/deep-link", data={"launch_id": launch_id, "quiz_id": quiz_id})
    assert r.status_code == 200, r.text
    assert f"form-action 'self' {platform.url}" in r.headers["Content-Security-Policy"]
    action = unescape(re.search(r'action="([^"]+)" id="lti-return"', r.text).group(1))
    token = re.search(r'name="JWT" value="([^"]+)"', r.text).group(1)
    assert action == platform.url + "/deep_link_return"
    assert requests.post(action, data={"JWT": token}, timeout=10).status_code == 200
    return platform.newest_link


def sessions(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(UserSession))


def answer_key_and_submit(client, db, attempt_id: int, right: int) -> Attempt:
    """Answer the first ``right`` questions from the key (the rest blank), then submit through the page."""
    with db.read() as s:
        key = key_view(s.get(Attempt, attempt_id))["questions"]
    for q in key[:right]:
        r = client.post(f"/attempts/{attempt_id}/autosave", json={"question": q["id"], "response": q["answer"]})
        assert r.status_code == 200, r.text
    assert client.post(f"/attempts/{attempt_id}/submit").status_code == 302
    with db.read() as s:
        return s.get(Attempt, attempt_id)


def start(client, db) -> int:
    r = client.post(f"/quizzes/{QUIZ}/start")
    assert r.status_code == 302, r.text
    return int(r.location.rstrip("/").rsplit("/", 1)[1])


def test_deep_link_launch_submit_posts_the_score_with_its_submission_time(client, db, platform):
    link = deep_link(client, platform)
    dl = platform.recorded.deep_links[-1]
    item = dl[CLAIM.replace("lti/claim/", "lti-dl/claim/") + "content_items"][0]
    assert item["type"] == "ltiResourceLink" and item["custom"] == {"quiz": QUIZ}
    assert item["lineItem"]["resourceId"] == QUIZ and item["lineItem"]["scoreMaximum"] > 0
    assert dl[CLAIM.replace("lti/claim/", "lti-dl/claim/") + "data"] == "dl-data-prof-1"  # echoed back
    student = client.application.test_client()
    r = launch(student, platform, "link:" + link, "stud-1")
    assert r.status_code == 302 and r.location.endswith(f"/lti/quiz/{QUIZ}")
    page = student.get(r.location)
    assert page.status_code == 200 and "Start attempt 1" in page.text
    # framed by the platform only: CSP frame-ancestors is its origin, and no X-Frame-Options: DENY
    assert f"frame-ancestors {platform.url}" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in page.headers
    attempt_id = start(student, db)
    a = answer_key_and_submit(student, db, attempt_id, right=7)
    assert a.score is not None and a.score > 0
    [(lineitem, body, ctype)] = platform.recorded.scores
    assert ctype == "application/vnd.ims.lis.v1.score+json"
    assert lineitem == platform.links[link]["line_item"]
    assert body["userId"] == "stud-1"
    assert body["scoreGiven"] == pytest.approx(a.score) and body["scoreMaximum"] == pytest.approx(a.max_score)
    assert body["activityProgress"] == "Completed" and body["gradingProgress"] == "FullyGraded"
    assert body["submission"]["submittedAt"] == aware(a.submitted_at).isoformat(timespec="milliseconds")
    assert body["timestamp"] >= body["submission"]["submittedAt"]
    assert platform.recorded.token_requests, "scores go with an access token from the client-credentials grant"
    # an override posts the new score, with the same submission time and a later timestamp
    with db.write() as s:
        teacher = s.scalar(select(User).where(User.role == "instructor"))
        q = question_id(s.get(Attempt, attempt_id).questions[-1])
        scores.override(s, attempt_id, q, 1.0, "accepted by hand", teacher)
    second = platform.recorded.scores[-1][1]
    assert len(platform.recorded.scores) == 2
    assert second["scoreGiven"] == pytest.approx(a.score + 1.0)
    assert second["submission"]["submittedAt"] == body["submission"]["submittedAt"]
    assert second["timestamp"] > body["timestamp"]


def test_student_launched_twice_keeps_one_account_and_its_attempts(client, db, platform):
    link = deep_link(client, platform)
    first = client.application.test_client()
    assert launch(first, platform, "link:" + link, "stud-1").status_code == 302
    attempt_id = start(first, db)
    again = client.application.test_client()
    assert launch(again, platform, "link:" + link, "stud-1").status_code == 302
    page = again.get(f"/lti/quiz/{QUIZ}")
    assert "Continue attempt" in page.text and f"/attempts/{attempt_id}" in page.text
    with db.read() as s:
        links = list(s.scalars(select(LtiUser).where(LtiUser.sub == "stud-1")))
        user = s.get(User, links[0].user_id)
    assert len(links) == 1 and user.role == "student" and user.full_name == "Sam Student"
    assert user.student_id == "S-1001" and user.email == "sam@example.edu"
    # no password opens the account: it logs in through the LMS only
    assert client.post("/login", data={"username": user.username, "password": "!lti"}).status_code == 401


def test_lms_instructor_reaches_the_instructor_area_and_a_student_does_not(client, db, platform):
    link = deep_link(client, platform)
    assert client.get("/instructor/").status_code == 200
    r = launch(client, platform, "link:" + link, "prof-1")
    assert r.status_code == 302 and r.location.endswith(f"/instructor/quizzes/{QUIZ}/gradebook")
    student = client.application.test_client()
    launch(student, platform, "link:" + link, "stud-1")
    assert student.get("/instructor/").status_code == 403


def test_a_student_cannot_deep_link(client, db, platform):
    r = launch(client, platform, "deep-link", "stud-1")
    assert r.status_code == 403 and "only an instructor" in r.text
    assert sessions(db) == 0


def test_failed_score_post_is_kept_shown_and_retried_until_taken(client, db, platform):
    link = deep_link(client, platform)
    student = client.application.test_client()
    launch(student, platform, "link:" + link, "stud-1")
    platform.fail_scores = 1
    a = answer_key_and_submit(student, db, start(student, db), right=3)
    assert platform.recorded.scores == []
    with db.read() as s:
        row = s.scalar(select(LtiScoreOutbox))
    assert row.tries == 1 and "503" in row.last_error and row.version > row.sent_version
    page = client.get(f"/instructor/quizzes/{QUIZ}/gradebook").text
    assert "1 pending, 0 failed" in page and "503" in page
    assert outbox.deliver_due(db) == 0  # not due yet: it waits its backoff
    assert outbox.deliver_due(db, outbox.now() + timedelta(minutes=1)) == 1
    [(_, body, _)] = platform.recorded.scores
    assert body["scoreGiven"] == pytest.approx(a.score)
    assert "Every score has reached the LMS" in client.get(f"/instructor/quizzes/{QUIZ}/gradebook").text


def test_a_score_the_lms_keeps_refusing_can_be_given_up_and_a_later_change_is_sent(client, db, platform):
    link = deep_link(client, platform)
    student = client.application.test_client()
    launch(student, platform, "link:" + link, "stud-1")
    platform.fail_scores = outbox.FAILED_AFTER
    attempt_id = start(student, db)
    a = answer_key_and_submit(student, db, attempt_id, right=3)
    t = outbox.now()
    for _ in range(outbox.FAILED_AFTER - 1):  # each retry once its backoff has passed
        t += timedelta(hours=2)
        assert outbox.deliver_due(db, t) == 0
    page = client.get(f"/instructor/quizzes/{QUIZ}/gradebook").text
    assert "0 pending, 1 failed" in page and "Stop retrying the 1 failed" in page
    r = client.post(f"/lti/quizzes/{QUIZ}/dismiss")
    assert r.status_code == 302
    page = client.get(r.location).text
    assert "1 failed scores will no longer be sent" in page and "Every score has reached the LMS" in page
    assert outbox.deliver_due(db, t + timedelta(days=1)) == 0 and platform.recorded.scores == []
    with db.write() as s:  # the score changes: the new one is sent
        teacher = s.scalar(select(User).where(User.role == "instructor"))
        scores.override(s, attempt_id, question_id(s.get(Attempt, attempt_id).questions[-1]), 1.0, "by hand", teacher)
    [(_, body, _)] = platform.recorded.scores
    assert body["scoreGiven"] == pytest.approx(a.score + 1.0)


def test_expiry_by_the_sweeper_posts_the_score_submitted_at_the_deadline(client, db, platform):
    from tests.web.conftest import set_quiz

    link = deep_link(client, platform)
    set_quiz(db, QUIZ, time_limit_s=60)
    student = client.application.test_client()
    launch(student, platform, "link:" + link, "stud-1")
    attempt_id = start(student, db)
    assert expire_due(db, now() + timedelta(minutes=2)) == 1
    with db.read() as s:
        a = s.get(Attempt, attempt_id)
    [(_, body, _)] = platform.recorded.scores
    assert a.state == "expired"
    assert body["submission"]["submittedAt"] == aware(a.expires_at).isoformat(timespec="milliseconds")


def test_roster_sync_from_the_lms_creates_and_links_members(client, db, platform):
    deep_link(client, platform)  # the instructor's launch tells the tool the course and its NRPS URL
    page = client.get("/instructor/roster").text
    ctx = re.search(r'action="/lti/roster/(\d+)/sync"', page).group(1)
    r = client.post(f"/lti/roster/{ctx}/sync")
    assert r.status_code == 302
    assert "3 members, 2 new accounts, 1 updated" in client.get("/instructor/roster").text
    with db.read() as s:
        linked = {l.sub: s.get(User, l.user_id) for l in s.scalars(select(LtiUser))}
    assert linked["stud-2"].full_name == "Robin Roe" and linked["stud-2"].role == "student"
    assert linked["prof-1"].role == "instructor"
    # a later launch of a synced student lands in the same account
    student = client.application.test_client()
    platform.add_link("l-2", "Quiz", {"quiz": QUIZ})
    launch(student, platform, "link:l-2", "stud-2")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LtiUser).where(LtiUser.sub == "stud-2")) == 1


def test_lti_session_cookie_works_in_an_lms_iframe_over_https(app, client, db, platform):
    app.config.update(HTTPS=True, SESSION_COOKIE_SECURE=True)
    link = deep_link(client, platform)
    student = app.test_client()
    r = student.get(platform.login_url("link:" + link, "stud-1"))
    state_cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("lti1p3-state"))
    assert "Secure" in state_cookie and "SameSite=None" in state_cookie and "Partitioned" in state_cookie
    params = dict(parse_qsl(urlsplit(r.location).query))
    answer = platform.authorize(params)
    r = student.post("/lti/launch", data={"id_token": answer["id_token"], "state": answer["state"]},
                     base_url="https://localhost")
    assert r.status_code == 302, r.text
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie
    # a password login keeps the app's usual cookie and may not be framed at all
    plain = app.test_client()
    with db.write() as s:
        from quizengine.services import accounts

        accounts.add_user(s, "ann", "student", "password-123", method=FAST_HASH)
    r = plain.post("/login", data={"username": "ann", "password": "password-123"}, base_url="https://localhost")
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "SameSite=Lax" in cookie
    page = plain.get("/dashboard", base_url="https://localhost")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_jwks_publishes_the_current_and_previous_keys_only(client, db, platform):
    before = client.get("/lti/jwks").json["keys"]
    with db.write() as s:
        keys.rotate(s, outbox.now())
    after = client.get("/lti/jwks").json["keys"]
    assert len(before) == 1 and len(after) == 2 and after[1]["kid"] == before[0]["kid"]
    assert all(set(k) <= {"kty", "n", "e", "kid", "alg", "use"} for k in after)  # no private part (d, p, q, ...)
    with db.write() as s:
        keys.rotate(s, outbox.now())
    assert before[0]["kid"] not in {k["kid"] for k in client.get("/lti/jwks").json["keys"]}
    # a deep-linking answer signed with the new key still verifies at the platform
    deep_link(client, platform)


def test_scheduled_rotation_happens_when_the_key_is_older_than_the_setting(db, platform):
    from quizengine.lti import tasks

    with db.read() as s:
        old = keys.jwks(s)["keys"][0]["kid"]
    tasks.sweep(db, key_days=90)
    with db.read() as s:
        assert keys.jwks(s)["keys"][0]["kid"] == old
        key = s.scalar(select(keys.LtiKey).where(keys.LtiKey.role == "current"))
    with db.write() as s:
        s.get(keys.LtiKey, key.kid).created_at = outbox.now() - timedelta(days=91)
    tasks.sweep(db, key_days=90)
    with db.read() as s:
        kids = [k["kid"] for k in keys.jwks(s)["keys"]]
    assert len(kids) == 2 and kids[0] != old and kids[1] == old


# ---------------------------------------------------------------- refused launches: a clear 4xx and no session

def _drop(*names):
    def tamper(c):
        for n in names:
            c.pop(n, None)
    return tamper


def _set(**values):
    """A tamper that sets claims; a callable value is called when the token is made (times are
    relative to then, not to when this file was imported: a slow run must not age them)."""
    def tamper(c):
        for k, v in values.items():
            c[CLAIM + k[6:] if k.startswith("claim_") else k] = v() if callable(v) else v
    return tamper


REFUSED = [
    # token authenticity
    ("wrong_audience", dict(tamper=lambda c: (c.update(aud="another-tool"), c.pop("azp"))), 401, "no platform is registered"),
    ("azp_not_an_audience", dict(tamper=_set(azp="another-tool")), 401, "not among the audiences"),
    ("several_audiences_without_azp", dict(tamper=lambda c: (c.update(aud=["quizengine-tool", "x"]), c.pop("azp"))),
     401, "no azp"),
    ("expired_token", dict(tamper=_set(exp=lambda: int(time.time()) - 120, iat=lambda: int(time.time()) - 400)), 401, "expired"),
    ("issued_in_the_future", dict(tamper=_set(iat=lambda: int(time.time()) + 600)), 401, "future"),
    ("issued_too_long_ago", dict(tamper=_set(iat=lambda: int(time.time()) - 3 * 3600)), 401, "issued more than"),
    ("wrong_signature", dict(key=rsa_key()), 401, "signature does not verify"),
    ("unknown_key", dict(key=rsa_key(), kid="nobody"), 401, "not among the platform's keys"),
    ("wrong_issuer_claim", dict(tamper=_set(iss="https://elsewhere.example")), 401, "no platform is registered"),
    # deployment and message
    ("unknown_deployment", dict(tamper=_set(claim_deployment_id="deployment-9")), 403, "deployment-9"),
    ("wrong_message_type", dict(tamper=_set(claim_message_type="LtiSubmissionReviewRequest")), 400,
     "message type 'LtiSubmissionReviewRequest' is not supported"),
    # missing claims
    ("missing_exp", dict(tamper=_drop("exp")), 400, "'exp'"),
    ("missing_iat", dict(tamper=_drop("iat")), 400, "'iat'"),
    ("missing_sub", dict(tamper=_drop("sub")), 400, "sub"),
    ("missing_roles", dict(tamper=_drop(CLAIM + "roles")), 400, "Roles"),
    ("missing_deployment_id", dict(tamper=_drop(CLAIM + "deployment_id")), 400, "deployment"),
    ("missing_resource_link", dict(tamper=_drop(CLAIM + "resource_link")), 400, "Resource Link"),
    ("missing_message_type", dict(tamper=_drop(CLAIM + "message_type")), 400, "message type None"),
]


@pytest.mark.parametrize("threat,how,status,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_threat_refused_launch_gets_a_clear_4xx_and_no_session(client, db, platform, threat, how, status, message):
    platform.add_link("l-1", "Quiz", {"quiz": QUIZ})
    r = launch(client, platform, "link:l-1", "stud-1", **how)
    assert r.status_code == status, r.text
    assert message in unescape(r.text)
    assert sessions(db) == 0
    assert client.get("/dashboard").status_code == 302  # to the login page: nobody is logged in
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(LtiUser)) == 0


def test_threat_replayed_launch_is_refused(client, db, platform):
    platform.add_link("l-1", "Quiz", {"quiz": QUIZ})
    params = login_redirect(client, platform, "link:l-1", "stud-1")
    answer = platform.authorize(params)
    form = {"id_token": answer["id_token"], "state": answer["state"]}
    assert client.post("/lti/launch", data=form).status_code == 302
    attacker = client.application.test_client()
    # the same state and id_token again: the state is used up
    r = attacker.post("/lti/launch", data=form)
    assert r.status_code == 401 and "used before" in r.text
    # the old id_token under a fresh state of the attacker's own: its nonce is used up
    fresh = login_redirect(attacker, platform, "link:l-1", "stud-1")
    r = attacker.post("/lti/launch", data={"id_token": answer["id_token"], "state": fresh["state"]})
    assert r.status_code == 401 and "nonce was used before" in r.text
    assert sessions(db) == 1 and attacker.get("/dashboard").status_code == 302


def test_threat_launch_without_the_login_cookie_is_refused(client, db, platform):
    """A launch forged into another browser (login CSRF) lacks the state cookie of the browser that logged in."""
    platform.add_link("l-1", "Quiz", {"quiz": QUIZ})
    answer = platform.authorize(login_redirect(client, platform, "link:l-1", "stud-1"))
    victim = client.application.test_client()
    r = victim.post("/lti/launch", data={"id_token": answer["id_token"], "state": answer["state"]})
    assert r.status_code == 401 and "login cookie" in r.text
    assert sessions(db) == 0


def test_threat_expired_state_is_refused(client, db, platform):
    platform.add_link("l-1", "Quiz", {"quiz": QUIZ})
    answer = platform.authorize(login_redirect(client, platform, "link:l-1", "stud-1"))
    from quizengine.models import LtiNonce

    with db.write() as s:
        for row in s.scalars(select(LtiNonce)):
            row.expires_at = outbox.now() - timedelta(seconds=1)
    r = client.post("/lti/launch", data={"id_token": answer["id_token"], "state": answer["state"]})
    assert r.status_code == 401 and "expired" in r.text
    assert sessions(db) == 0


def test_threat_login_from_an_unregistered_platform_is_refused(client, platform):
    r = client.get("/lti/login?iss=https://evil.example&login_hint=x&target_link_uri=http://localhost/lti/launch")
    assert r.status_code == 400 and "quizengine lti add-platform" in r.text


def test_threat_link_to_an_unknown_quiz_is_404_without_session(client, db, platform):
    platform.add_link("l-9", "Nothing", {"quiz": "no-such-quiz"})
    r = launch(client, platform, "link:l-9", "stud-1")
    assert r.status_code == 404 and "no-such-quiz" in r.text
    assert sessions(db) == 0


def test_link_without_custom_quiz_opens_the_quiz_of_its_deep_linked_line_item(client, db, platform):
    link = deep_link(client, platform)
    platform.links[link]["custom"] = {}  # an LMS that dropped the custom parameter: the line item's resourceId names it
    student = client.application.test_client()
    r = launch(student, platform, "link:" + link, "stud-1")
    assert r.status_code == 302 and r.location.endswith(f"/lti/quiz/{QUIZ}")
