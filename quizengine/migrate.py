"""Run Alembic migrations from code (serve, tests, the `db` command)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from .config import ROOT
from .db import private_sqlite_file


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    if url.startswith("sqlite"):
        private_sqlite_file(url)  # before Alembic's engine would create it world-readable
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrations differ (alembic check)."""
    command.check(alembic_config(url))
