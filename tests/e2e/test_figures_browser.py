"""Figures in a real browser under the page's CSP (style-src 'self'): they render with their colours
(presentation attributes, which the policy allows), and nothing is blocked."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_csp_browser import TEACHER_PASSWORD, PASSWORD, login, watched_page  # noqa: F401
from tests.live import LiveServer

pytestmark = pytest.mark.slow

BANK = """\
topic: figs
title: Figures
items:
  - id: fig-net
    type: numeric
    prompt: "x = {{x.T}}, W1 = {{W1}}, b1 = {{b1.T}}, W2 = {{W2}}, b2 = {{b2}}: the output?"
    explanation: Forward pass.
    params:
      x: {range: [0.1, 1.0], step: 0.05, shape: [2]}
      W1: {range: [-1.0, 1.0], step: 0.05, shape: [2, 2]}
      b1: {range: [-0.5, 0.5], step: 0.05, shape: [2]}
      W2: {range: [-1.0, 1.0], step: 0.05, shape: [2, 1]}
      b2: {range: [-0.5, 0.5], step: 0.05}
    calc:
      network:
        layers:
          - {weights: "$W1", bias: "$b1", activation: sigmoid}
          - {weights: "$W2", bias: ["$b2"], activation: sigmoid}
        loss: half_sse
      input: "$x"
      target: [1.0]
    answer: output[0]
    figures: [{kind: network}]
  - id: fig-act
    type: numeric
    prompt: tanh'({{z}})?
    explanation: 1 - tanh^2.
    params:
      z: {range: [-2.5, 2.5], step: 0.1, exclude: [0]}
    calc:
      activation: {name: tanh}
      z: ["$z"]
    answer: derivative[0]
    figures: [{kind: activation, caption: tanh with your z}]
"""
QUIZ = """\
id: figs-quiz
title: Figures quiz
slots:
  - {items: [fig-net, fig-act], count: 2}
"""
INK = "rgb(31, 95, 191)"  # the activation curve's stroke (#1f5fbf), set by matplotlib as a style


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-figures")
    banks = tmp / "banks"
    (banks / "quizzes").mkdir(parents=True)
    (banks / "figs.yaml").write_text(BANK)
    (banks / "quizzes" / "figs-quiz.yaml").write_text(QUIZ)
    srv = LiveServer(tmp, banks)
    srv.add_class(["ann"], PASSWORD, TEACHER_PASSWORD)
    srv.start()
    yield srv
    srv.stop()


def strokes(page, selector: str) -> set[str]:
    return set(page.eval_on_selector_all(selector, "els => els.map(e => getComputedStyle(e).stroke)"))


def test_figures_render_under_the_csp_on_the_preview_and_the_attempt_page(server, browser):
    page, errors = watched_page(browser)
    login(page, server, "teacher", TEACHER_PASSWORD)
    response = page.goto(server.url + "/instructor/banks/items/fig-act?seed=3")
    assert "style-src 'self'" in response.headers["content-security-policy"]
    figure = page.locator("figure.figure svg")
    expect(figure).to_have_count(1)
    box = figure.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    assert INK in strokes(page, "figure.figure svg path")  # matplotlib's colours survive the policy
    expect(page.locator("figure.figure")).to_contain_text(re.compile(r"z = −?\d"))
    assert page.evaluate("window.__csp") == [] and errors == []
    page.context.clear_cookies()

    login(page, server, "ann", PASSWORD)
    card = page.locator("section.card", has_text="Figures quiz")
    card.get_by_role("button", name=re.compile("Start attempt")).click()
    expect(page.locator("section.question figure.figure")).to_have_count(2)
    net = page.locator("section.question figure.figure svg").first
    circles = net.locator("circle")
    expect(circles).to_have_count(5)
    fills = set(circles.evaluate_all("els => els.map(e => getComputedStyle(e).fill)"))
    assert {"rgb(232, 240, 254)", "rgb(230, 244, 234)", "rgb(253, 236, 234)"} <= fills  # input, hidden, output
    label = page.locator("section.question figure.figure").first.get_attribute("id")
    described = page.locator(f"#{label} [role=img]").get_attribute("aria-describedby")
    assert "edge from x1 to h1, weight" in page.locator(f"#{described}").inner_text()
    assert page.evaluate("window.__csp") == [] and errors == []
    page.close()
