"""The one Chromium of the browser tests: Debian's, installed by scripts/ensure-debian (make test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

# expect()'s waits are for a page to reach a state, not timings (those live in benchmarks/): on
# 2 cores shared with the suite's other worker (a load benchmark, a server rendering a quiz on its
# start) Playwright's 5 s default timed out a page that got there (a start rendering 20 questions).
expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():  # make test installs it (scripts/ensure-debian); never skip silently
        pytest.fail(f"{CHROMIUM} is missing: make test installs it (scripts/ensure-debian), or apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
