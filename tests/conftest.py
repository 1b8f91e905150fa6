"""Shared fixtures: a click runner for the ``quizengine`` command and its environment."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """The CLI's environment: a fresh SQLite database and instance folder in ``tmp_path`` (returned)."""
    monkeypatch.setenv("QUIZENGINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("QUIZENGINE_SECRET_KEY", "cli-secret")
    monkeypatch.setenv("QUIZENGINE_INSTANCE", str(tmp_path / "instance"))
    return tmp_path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` hands each worker the longest module left (tests/schedule.py)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.schedule import LongestFirst

    return LongestFirst(config, log)
