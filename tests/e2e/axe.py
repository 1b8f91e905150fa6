"""axe-core (bundled by axe-playwright-python, runs offline) on a Playwright page, at WCAG 2.1 AA."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
              "resultTypes": ["violations"]}


def violations(page) -> list:  # type: ignore[no-untyped-def]
    """axe-core's WCAG 2.1 AA violations on the page as it is now: each a dict with id, impact, help, nodes."""
    return Axe().run(page, options=WCAG_21_AA).response["violations"]
