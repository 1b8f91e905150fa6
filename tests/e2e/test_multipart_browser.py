"""A student answers a chain in Chromium with a slip in its first part, carries it on, and sees the
error-carried-forward credit and its explanation on the results page; the network diagram beside a
backprop chain shows this student's own numbers and has its text alternative (issue 13). A
screenshot of the results page goes to test-artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from quizengine.bank.catalog import load_catalog
from quizengine.bank.ecf import with_given
from quizengine.bank.params import fmt
from quizengine.bank.variant import make_variant, resolve
from quizengine.calc.engine import run_task
from tests.e2e.test_browser import PASSWORD, TEACHER_PASSWORD, login
from tests.live import LiveServer

pytestmark = pytest.mark.slow

BANKS = Path(__file__).resolve().parents[2] / "banks"
ITEM = "chain-opt-momentum"
QUIZ = f"""id: chain-quiz
title: One chain
slots:
  - {{items: [{ITEM}]}}
"""
BP_ITEM = "chain-bp-221-sigmoid"  # drawn beside its network diagram (figures: [{kind: network}])
BP_QUIZ = f"""id: bp-chain-quiz
title: Backprop chain
slots:
  - {{items: [{BP_ITEM}]}}
"""
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-chain")
    banks = tmp / "banks"
    (banks / "quizzes").mkdir(parents=True)
    shutil.copy(BANKS / "chains.yaml", banks / "chains.yaml")
    (banks / "quizzes" / "chain-quiz.yaml").write_text(QUIZ)
    (banks / "quizzes" / "bp-chain-quiz.yaml").write_text(BP_QUIZ)
    srv = LiveServer(tmp, banks)
    srv.add_class(["ann"], PASSWORD, TEACHER_PASSWORD)
    srv.start()
    srv.banks = banks
    yield srv
    srv.stop()


def test_student_slips_in_part_one_and_sees_ecf_credit_on_the_results_page(server, browser):
    page = browser.new_page()
    login(page, server, "ann", PASSWORD)
    page.locator("section.card", has_text="One chain").get_by_role("button", name=re.compile("Start attempt")).click()
    section = page.locator("section.question")
    expect(section).to_have_count(1)
    expect(section.locator(".part")).to_have_count(4)
    attempt_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    status, key = server.api("GET", f"/api/v1/attempts/{attempt_id}/key", token=server.token("teacher", TEACHER_PASSWORD))
    assert status == 200
    (q,) = key["questions"]
    v = make_variant(load_catalog([server.banks]).items[q["item_id"]], q["seed"])
    # The slip: v1 with the gradient's sign flipped (+lr g1); every later part is right for it.
    v1 = -np.asarray(v.answer["v1"], dtype=np.float64)
    chain = run_task(with_given(v.task, {"steps[0].velocity": v1}))
    mine = {"v1": v1.tolist(), **{k: resolve(chain, p) for k, p in
                                  (("w1", "steps[0].params"), ("v2", "steps[1].velocity"), ("w2", "steps[1].params"))}}
    for pid in ("v1", "w1", "v2", "w2"):
        part = section.locator(f'.part[data-part="{pid}"]')
        cells = part.locator("input.num")
        for k, x in enumerate(mine[pid]):
            cells.nth(k).fill(fmt(x, 8))
        # each part autosaves, and its own status says so (a save of a half-filled part says "Saved ..., but")
        expect(part.locator(".part-status")).to_have_text(re.compile(r"^Saved [^,]*$"), timeout=15000)
    expect(page.locator(".qnav a.answered")).to_have_count(1)
    page.reload()
    for k, x in enumerate(mine["w2"]):  # the whole object was saved: the last part is back after a reload
        assert float(section.locator('.part[data-part="w2"] input.num').nth(k).input_value()) == pytest.approx(x, rel=1e-6)
    page.get_by_role("button", name="Save and finish…").click()
    page.get_by_role("button", name="Submit now").click()
    expect(page.locator("h1")).to_contain_text("3 / 4")
    rows = page.locator("table.parts tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_have_class(re.compile("wrong"))
    for k in (1, 2, 3):
        expect(rows.nth(k)).to_have_class(re.compile("ecf"))
        expect(rows.nth(k)).to_contain_text("error carried forward")
    shown = "[" + ", ".join(fmt(x, 4) for x in v1) + "]"
    expect(rows.nth(1)).to_contain_text(f"Part 2 is marked on your velocity after step 1 = {shown} from part 1")
    # the explanation: the true chain's worked solution, and the student's own chain beside it
    expect(page.locator(".ecf-chain")).to_contain_text("Your chain")
    expect(page.get_by_text("Worked solution with your numbers")).to_be_visible()
    page.close()


def shown(x: float) -> str:
    """A number as a figure prints it, written here independently: 4 significant figures, a true minus."""
    t = f"{float(x):.4g}"
    return ("\u2212" + t[1:]) if t.startswith("-") else t


def check_network_figure(page, values: dict) -> None:
    """The chain's one figure: the diagram of this student's network, its labels and its text alternative."""
    figure = page.locator("section.question figure.figure")
    expect(figure).to_have_count(1)
    svg_texts = figure.locator("svg text").evaluate_all("els => els.map(e => e.textContent)")
    W1, W2, b1, x = (np.asarray(values[k], dtype=np.float64) for k in ("W1", "W2", "b1", "x"))
    for i in range(2):
        assert shown(x[i]) in svg_texts, (x[i], svg_texts)
        assert f"b = {shown(b1[i])}" in svg_texts
        for j in range(2):
            assert shown(W1[i, j]) in svg_texts, (W1[i, j], svg_texts)
    for i in range(2):
        assert shown(W2[i, 0]) in svg_texts
    assert f"b = {shown(values['b2'])}" in svg_texts
    # the text alternative: a label on the drawing and, through aria-describedby, one line per number
    img = figure.locator("[role=img]")
    assert img.get_attribute("aria-label").startswith("Network diagram: 2 inputs, a hidden layer of 2 sigmoid")
    details = page.locator(f"#{img.get_attribute('aria-describedby')}").locator("li").all_text_contents()
    for i in range(2):
        for j in range(2):
            assert f"edge from x{i + 1} to h{j + 1}, weight {shown(W1[i, j])}" in details
        assert f"edge from h{i + 1} to \u0177, weight {shown(W2[i, 0])}" in details
        assert f"input x{i + 1} = {shown(x[i])}" in details
    box = figure.locator("svg").bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100  # drawn, not collapsed


def test_backprop_chain_with_a_slip_in_z1_earns_ecf_and_its_figure_shows_the_students_network(server, browser):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    login(page, server, "ann", PASSWORD)
    page.locator("section.card", has_text="Backprop chain").get_by_role("button", name=re.compile("Start attempt")).click()
    section = page.locator("section.question")
    expect(section.locator(".part")).to_have_count(9)
    attempt_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    status, key = server.api("GET", f"/api/v1/attempts/{attempt_id}/key", token=server.token("teacher", TEACHER_PASSWORD))
    assert status == 200
    (q,) = key["questions"]
    assert q["item_id"] == BP_ITEM
    v = make_variant(load_catalog([server.banks]).items[BP_ITEM], q["seed"])  # the variant the server drew
    check_network_figure(page, v.values)  # on the attempt page, beside the parts
    # the line of parameters (x, W1, b1, W2, b2, y) wraps inside the card: nothing is cut off or scrolls
    pieces = section.locator("div.prompt .math-pieces").first
    expect(pieces.locator("math")).to_have_count(6)
    assert pieces.evaluate("p => p.parentElement.scrollWidth <= p.parentElement.clientWidth + 1")

    # The slip: z1 off by 0.5 in each entry; every later part is worked on from it.
    z1 = np.asarray(v.answer["z1"], dtype=np.float64) + 0.5
    chain = run_task(with_given(v.task, {"layers[0].z": z1}))
    paths = {p.id: p.answer for p in v.model.parts}
    mine = {pid: (z1 if pid == "z1" else np.asarray(resolve(chain, path), dtype=np.float64)) for pid, path in paths.items()}
    for pid, value in mine.items():
        part = section.locator(f'.part[data-part="{pid}"]')
        cells = part.locator("input.num")
        for k, x in enumerate(np.ravel(value)):
            cells.nth(k).fill(fmt(float(x), 8))
        expect(part.locator(".part-status")).to_have_text(re.compile(r"^Saved [^,]*$"), timeout=15000)
    page.get_by_role("button", name="Save and finish…").click()
    page.get_by_role("button", name="Submit now").click()
    expect(page.locator("h1")).to_contain_text("8 / 9")
    rows = page.locator("table.parts tbody tr")
    expect(rows).to_have_count(9)
    expect(rows.nth(0)).to_have_class(re.compile("wrong"))
    for k in range(1, 9):
        expect(rows.nth(k)).to_have_class(re.compile("ecf"))
    expect(rows.nth(1)).to_contain_text(f"Part 2 is marked on your z⁽¹⁾ = [{fmt(z1[0], 4)}, {fmt(z1[1], 4)}] from part 1")
    check_network_figure(page, v.values)  # and on the results page, with the worked solution
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("section.question figure.figure").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "chain-ecf-results-with-figure.png"), full_page=True)
    page.close()
