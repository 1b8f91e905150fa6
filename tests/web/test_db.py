"""Storage: SQLite pragmas and BEGIN IMMEDIATE, migrations up and down, item versions."""

from __future__ import annotations

import threading

import pytest
import yaml
from sqlalchemy import create_engine, inspect, select, text

from quizengine.db import Database
from quizengine.migrate import check, downgrade, upgrade
from quizengine.models import Attempt, CurrentItem, ItemVersion

from .conftest import POSTGRES

sqlite_only = pytest.mark.skipif(POSTGRES, reason="SQLite pragmas; this pass runs on PostgreSQL")


@sqlite_only
def test_sqlite_pragmas_are_read_back(db):
    with db.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


@sqlite_only
def test_a_write_that_may_be_lost_commits_without_fsync_and_leaves_the_pool_at_full(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'lax.sqlite3'}")
    db.engine.dispose()
    with db.write(durable=False) as s:
        assert s.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL: in WAL mode, no fsync at commit
        s.execute(text("CREATE TABLE counter (n INTEGER)"))
        s.execute(text("INSERT INTO counter VALUES (1)"))
    with db.write() as s:
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2
    held = [db.engine.raw_connection() for _ in range(db.engine.pool.checkedin())]  # every pooled connection
    try:
        assert held and all(c.driver_connection.execute("PRAGMA synchronous").fetchone()[0] == 2 for c in held)
        with db.read() as s:  # committed, and read by another connection
            assert s.execute(text("SELECT n FROM counter")).scalar() == 1
    finally:
        for c in held:
            c.close()
    with pytest.raises(RuntimeError), db.write(durable=False) as s:  # rolled back: the pool is FULL again too
        s.execute(text("INSERT INTO counter VALUES (2)"))
        raise RuntimeError
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM counter")).scalar() == 1
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2
    db.dispose()


def test_a_write_that_may_be_lost_still_commits(db):
    from quizengine.models import LoginFailure
    from quizengine.services.clock import now

    with db.write(durable=False) as s:  # on PostgreSQL: SET LOCAL synchronous_commit TO OFF
        s.add(LoginFailure(key="rate:192.0.2.7", count=7, window_start=now()))
    with db.read() as s:
        assert s.scalar(select(LoginFailure.count).where(LoginFailure.key == "rate:192.0.2.7")) == 7


@sqlite_only
def test_writes_begin_immediate_so_concurrent_writers_queue(db):
    statements = []
    from sqlalchemy import event

    @event.listens_for(db.engine, "before_cursor_execute")
    def log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with db.write() as s:
        s.execute(text("SELECT 1"))
    with db.read() as s:
        s.execute(text("SELECT 1"))
    assert "BEGIN IMMEDIATE" in statements and "BEGIN DEFERRED" in statements
    # Many threads incrementing one row: none fails with "database is locked", none is lost.
    with db.write() as s:
        s.execute(text("CREATE TABLE counter (n INTEGER)"))
        s.execute(text("INSERT INTO counter VALUES (0)"))
    errors = []

    def bump():
        try:
            for _ in range(20):
                with db.write() as s:
                    n = s.execute(text("SELECT n FROM counter")).scalar()
                    s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert s.execute(text("SELECT n FROM counter")).scalar() == 160


def scratch_url(tmp_path, pg_url) -> str:
    """An empty database of its own: a file on SQLite, a new database on the PostgreSQL server."""
    if not pg_url:
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    from sqlalchemy.engine import make_url

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS qe_migtest"))
        conn.execute(text("CREATE DATABASE qe_migtest"))
    admin.dispose()
    return make_url(pg_url).set(database="qe_migtest").render_as_string(hide_password=False)


def test_migrations_up_down_up_and_no_autogenerate_diff(tmp_path, pg_url):
    url = scratch_url(tmp_path, pg_url)
    upgrade(url)
    check(url)  # models match the migrations: alembic check finds nothing to generate
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"user", "quiz", "item_version", "current_item", "attempt", "attempt_question", "response",
            "login_failure"} <= tables
    downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    check(url)
    engine.dispose()


def test_item_versions_pin_attempts_to_what_they_were_given(app, db, users, client, tmp_path):
    """Editing a bank adds a version; an attempt in progress keeps the one it started with."""
    import shutil

    from quizengine.services.banks import load_banks

    users.add("ann")
    h = users.token(client, "ann")
    a = client.post("/api/v1/quizzes/module-04-prep/attempts", headers=h).json
    with db.read() as s:
        first = s.get(Attempt, a["attempt_id"]).questions[0]
        item_id, old_version = first.item_version.item_id, first.item_version.version
    banks = tmp_path / "banks"
    shutil.copytree(app.config["BANKS"], banks)
    for path in banks.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for item in data["items"]:
            if item["id"] == item_id:
                item["tags"] = list(item.get("tags", [])) + ["edited"]
                path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with db.write() as s:
        report = load_banks(s, banks)
    assert report.new_versions == 1
    with db.read() as s:
        versions = list(s.scalars(select(ItemVersion.version).where(ItemVersion.item_id == item_id)))
        assert len(versions) == 2 and old_version in versions
        current = s.get(CurrentItem, item_id).item_version.version
        assert current != old_version
        assert s.get(Attempt, a["attempt_id"]).questions[0].item_version.version == old_version
    got = client.get(f"/api/v1/attempts/{a['attempt_id']}", headers=h).json
    assert got["questions"][0]["prompt_html"] == a["questions"][0]["prompt_html"]


def test_database_url_is_any_sqlalchemy_url(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert d.is_sqlite
    d.dispose()
