"""The fast save's lookup connection on SQLite (Database.raw_read_kept): one per process, set up as
the pool's (pragmas), outside any transaction (each read sees the latest commit), the pool untouched;
an in-memory database reads through its pool (its only connection holds the data)."""

from __future__ import annotations

import os
import threading

from sqlalchemy import text

from quizengine.db import Database


def test_the_kept_connection_reads_each_commit_and_leaves_the_pool_alone(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'kept.sqlite3'}")
    try:
        with db.write() as s:
            s.execute(text("CREATE TABLE t (n INTEGER)"))
        with db.raw_read_kept() as conn:
            first = conn
            assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,) and not conn.in_transaction
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        out_before = db.engine.pool.checkedout()
        with db.write() as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
        with db.raw_read_kept() as conn:
            assert conn is first and conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
            assert db.engine.pool.checkedout() == out_before == 0
        seen = []

        def read_in_a_thread() -> None:
            with db.raw_read_kept() as conn:
                seen.append(conn)

        t = threading.Thread(target=read_in_a_thread)
        t.start()
        t.join()
        assert seen == [first] and db._kept[0] == os.getpid()
    finally:
        db.dispose()
    assert db._kept is None


def test_an_in_memory_database_reads_through_its_pool():
    db = Database("sqlite://")
    try:
        with db.write() as s:
            s.execute(text("CREATE TABLE t (n INTEGER)"))
            s.execute(text("INSERT INTO t VALUES (7)"))
        with db.raw_read_kept() as conn:
            assert conn.execute("SELECT n FROM t").fetchone() == (7,)
        assert db._kept is None
    finally:
        db.dispose()
