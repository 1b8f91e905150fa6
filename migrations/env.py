"""Alembic environment: the URL comes from quizengine's settings; SQLite migrates in batch mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from quizengine.models import Base
from quizengine import models_accommodation  # noqa: F401 - its tables are in Base.metadata
from quizengine import models_rendering  # noqa: F401 - its table is in Base.metadata

config = context.config
target_metadata = Base.metadata


def url() -> str:
    configured = config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    from quizengine.config import from_env

    return from_env()["DATABASE_URL"]


def run_offline() -> None:
    context.configure(url=url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
