"""LTI 1.3 end to end: Chromium, the mock LMS (tests/lti/mockplatform.py) and `quizengine serve`.

An instructor deep-links module-04-prep into the course; a student launches it inside the LMS's
iframe, takes it and submits; the LMS receives the score with its submission time. A regrade
(through the instructor's own LMS launch) posts a new score with the same submission time.
"""

from __future__ import annotations

import re

import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from quizengine.db import Database
from quizengine.models import Attempt, AttemptQuestion, ItemVersion
from quizengine.services.clock import aware
from tests.e2e.test_browser import answer_everything
from tests.lti.mockplatform import MockPlatform
from tests.live import LiveServer

pytestmark = pytest.mark.slow

BANKS = Path(__file__).resolve().parents[2] / "banks"
QUIZ = "module-04-prep"
TEACHER_PASSWORD = "teacher-password"


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """(the tool's live server, the mock LMS) with the LMS registered in the tool."""
    tmp = tmp_path_factory.mktemp("lti")
    banks = tmp / "banks"
    shutil.copytree(BANKS, banks)
    srv = LiveServer(tmp, banks)
    with MockPlatform(tool_url=srv.url) as platform:
        srv.cli("lti", "add-platform", *platform.registration_args())
        srv.add_user("teacher", "instructor", TEACHER_PASSWORD)
        srv.start()
        srv.banks = banks
        try:
            yield srv, platform
        finally:
            srv.stop()


class InFrame:
    """The tool's iframe in the LMS page, shaped like a Page for tests/e2e/test_browser.answer_everything."""

    def __init__(self, page: Page, name: str = "tool"):
        self.page, self.keyboard = page, page.keyboard
        self.frame = page.frame(name=name)

    def locator(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.frame.locator(*args, **kwargs)

    def get_by_role(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.frame.get_by_role(*args, **kwargs)


def in_course(page: Page, platform: MockPlatform, hint: str, who: str) -> InFrame:
    """Open the LMS's course page with the tool launched in its iframe."""
    page.goto(platform.url + "/course?" + urlencode({"url": platform.login_url(hint, who)}))
    return InFrame(page)


def move_correct_choice(text: str, item_id: str) -> str:
    """The bank text with item_id's `correct: true` moved to another choice (a fixed key, for a regrade)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"  - id: {item_id}\n")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  - id: ")), len(lines))
    block = lines[start:end]
    correct = next(i for i, line in enumerate(block) if line.strip() == "correct: true")
    choices = [i for i, line in enumerate(block) if line.startswith("      - id: ")]
    owner = max(i for i in choices if i < correct)
    other = next(i for i in choices if i != owner)
    assert block[other + 1].startswith("        text: "), "expected one-line choice texts"
    del block[correct]
    block.insert(other + 2 - (correct < other), "        correct: true\n")
    return "".join(lines[:start] + block + lines[end:])


def test_deep_link_launch_take_submit_then_regrade_reach_the_lms(lms, browser):
    srv, platform = lms
    db = Database(srv.env["QUIZENGINE_DATABASE_URL"])
    # 1. the instructor picks the quiz in the LMS (deep linking): the LMS makes a link and a line item
    teacher_page = browser.new_page()
    tool = in_course(teacher_page, platform, "deep-link", "prof-1")
    tool.get_by_role("button", name=f"Add {QUIZ}").click()
    expect(tool.locator("#done")).to_have_text("Content added.")
    link = platform.newest_link
    line_item = platform.links[link]["line_item"]
    assert platform.links[link]["custom"] == {"quiz": QUIZ}
    assert platform.line_item_of(line_item).resource_id == QUIZ
    # 2. a student launches it inside the LMS's iframe (framed by the LMS's origin only), takes it, submits
    page = browser.new_page()
    tool = in_course(page, platform, "link:" + link, "stud-1")
    tool.get_by_role("button", name="Start attempt 1").click()
    expect(tool.locator("section.question")).to_have_count(20)
    attempt_id = int(tool.frame.url.rstrip("/").rsplit("/", 1)[1])
    status, key_data = srv.api("GET", f"/api/v1/attempts/{attempt_id}/key", token=srv.token("teacher", TEACHER_PASSWORD))
    assert status == 200
    answer_everything(tool, {q["id"]: q["answer"] for q in key_data["questions"]})
    expect(tool.locator(".status.ok:not(.part-status)")).to_have_count(20, timeout=20000)
    tool.get_by_role("button", name="Save and finish…").click()
    tool.get_by_role("button", name="Submit now").click()
    expect(tool.locator("h1")).to_contain_text(re.compile(r": (\d+) / \1\b"))  # full marks (a chain counts its parts)
    [(where, first, ctype)] = platform.wait_for_scores(1)
    with db.read() as s:
        a = s.get(Attempt, attempt_id)
        vocab = s.scalar(select(ItemVersion.item_id).join(AttemptQuestion).where(
            AttemptQuestion.attempt_id == attempt_id, ItemVersion.topic == "vocabulary",
            ItemVersion.type == "single_choice").order_by(AttemptQuestion.slot))
        points = s.scalar(select(AttemptQuestion.points).join(ItemVersion).where(
            AttemptQuestion.attempt_id == attempt_id, ItemVersion.item_id == vocab))
    submitted_at = aware(a.submitted_at).isoformat(timespec="milliseconds")
    assert where == line_item and ctype == "application/vnd.ims.lis.v1.score+json"
    assert first["userId"] == "stud-1" and first["scoreGiven"] == a.score == a.max_score >= 20
    assert first["activityProgress"] == "Completed" and first["gradingProgress"] == "FullyGraded"
    assert first["submission"]["submittedAt"] == submitted_at
    # 3. the key of one of the student's items was wrong: fixed in the bank, then regraded by the LMS instructor
    bank = srv.banks / "vocabulary.yaml"
    bank.write_text(move_correct_choice(bank.read_text(), vocab))
    srv.cli("load-banks")
    with db.read() as s:
        version = s.scalar(select(ItemVersion.id).where(ItemVersion.item_id == vocab).order_by(ItemVersion.id.desc()))
    teacher = browser.new_page()
    teacher.goto(platform.login_url("link:" + link, "prof-1"))  # an LMS instructor lands in the gradebook
    expect(teacher.locator("h1")).to_contain_text("Gradebook")
    teacher.goto(f"{srv.url}/instructor/regrade/{vocab}?version={version}")
    teacher.get_by_label("Reason").fill("moved the correct choice")
    teacher.get_by_role("button", name="Regrade…").click()
    teacher.get_by_role("button", name="Yes, regrade 1 attempt").click()
    expect(teacher.get_by_text("1 scores changed")).to_be_visible()
    scores = platform.wait_for_scores(2)
    second = scores[1][1]
    assert len(scores) == 2 and scores[1][0] == line_item
    assert second["scoreGiven"] == a.max_score - points
    assert second["submission"]["submittedAt"] == submitted_at  # a regrade is not a late submission
    assert second["timestamp"] > first["timestamp"]
    # The LMS has the score; the tool marks it sent once the platform's answer is back. A page
    # loaded in between says "1 pending", so load the gradebook again until it says so (bounded).
    done = teacher.get_by_text("Every score has reached the LMS.")
    for _ in range(50):
        teacher.goto(f"{srv.url}/instructor/quizzes/{QUIZ}/gradebook")
        if done.is_visible():
            break
    expect(done).to_be_visible()
    db.dispose()
