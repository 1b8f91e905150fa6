"""The engine and sessions; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE writes."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event, exc, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from .keptconn import KeptAutocommit
from .offload import gevent_patched

BUSY_TIMEOUT_MS = 10_000
# Each SQLite connection keeps its own page cache (2 MiB by default), and a gevent worker holds up
# to 100 of them: 512 KiB each is more than a request reads (a start's 20 views are about 60 KiB),
# and under a class's autosaves every read transaction finds the database changed and empties it
# anyway (WAL), so a larger cache only holds memory (about 20 MiB per worker in a class).
SQLITE_CACHE_KIB = 512
PG_POOL_SIZE, PG_POOL_OVERFLOW = 10, 4  # connections per process (each gevent worker), with
PG_KEPT = 6  # those the fast save keeps in autocommit (keptconn.py): 20 in all, as before it kept any
# Set around a checkout whose caller handles a dropped connection itself (raw_autocommit(pinged=False)):
# a context variable, so each greenlet (or thread) has its own.
_UNPINGED: ContextVar[bool] = ContextVar("quizengine_unpinged", default=False)


class Disconnected(Exception):
    """The database connection was found dropped (a server restart, an idle timeout, a terminated
    backend) during a raw_autocommit() block; the connection is discarded, the statement may or may not
    have run."""


class Database:
    """Owns the engine; ``read()`` and ``write()`` give sessions that always end cleanly."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if self.is_sqlite:
            private_sqlite_file(url)
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            # A gevent worker runs many requests at once, each holding a connection while it waits
            # (a password hash in a thread, a slow client): SQLite connections are cheap. (An
            # in-memory database has one connection per thread, so no pool to size.)
            if make_url(url).database not in (None, "", ":memory:"):
                kwargs.update(pool_size=10, max_overflow=90)
        else:
            # A fast save holds its connection for two round trips, the rest of a request for its
            # queries: 20 per worker (4 workers of 2 app servers stay under PostgreSQL's default
            # max_connections of 100) keep a gevent worker's greenlets from queueing for one.
            # Each checkout is pinged (_ping_on_checkout, as pool_pre_ping would) but the fast save's.
            kwargs.update(pool_size=PG_POOL_SIZE, max_overflow=PG_POOL_OVERFLOW)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        else:
            _ping_on_checkout(self.engine)
            if gevent_patched():
                from .greenwait import use_for_psycopg

                use_for_psycopg()  # psycopg waits on the hub's watchers, not gevent's emulated poll
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)
        self._lax_writer = sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE", lax_commit=True),
                                        expire_on_commit=False)
        # Under gevent, a worker's writers queue here in turn (a gevent lock), rather than all polling
        # SQLite's lock, where the unlucky ones could wait seconds.
        self._gate = threading.Lock() if self.is_sqlite and gevent_patched() else None
        self._kept: tuple[int, Any] | None = None  # (process id, connection): raw_read_kept()'s
        self._autocommit = None if self.is_sqlite else KeptAutocommit(  # raw_autocommit(pinged=False)'s
            partial(self._checkout, pinged=False), PG_KEPT)
        self._kept_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closing it rolls back, and its objects stay readable afterwards."""
        with self._reader() as s:
            yield s

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[Session]:
        """A write transaction: BEGIN IMMEDIATE on SQLite, committed on success, rolled back on error.

        ``durable=False`` for a write that a crash of the machine may lose (a login throttle's counter):
        its commit waits for no disk flush (SQLite: synchronous=NORMAL for this transaction, FULL again
        when the connection goes back to the pool; PostgreSQL: synchronous_commit off for it).
        """
        gated = self._gate is not None and self._gate.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            with (self._writer if durable else self._lax_writer)() as s:
                with s.begin():
                    if not durable and not self.is_sqlite:
                        s.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    yield s
        finally:
            if gated:
                self._gate.release()  # type: ignore[union-attr]

    @contextmanager
    def raw_read(self) -> Iterator[Any]:
        """A DBAPI connection from the pool for a read of one statement (no ORM); given back rolled back."""
        conn = self.engine.raw_connection()
        try:
            yield conn.driver_connection
        finally:
            conn.close()

    @contextmanager
    def raw_read_kept(self) -> Iterator[Any]:
        """SQLite: this process's own DBAPI connection for a read of one statement, outside any
        transaction (the fast save's lookup): no pool checkout nor check-in. Callers take turns
        (a lock); under gevent a SQLite call never lets another greenlet run, so none waits."""
        if not isinstance(self.engine.pool, QueuePool):  # an in-memory database: one per connection, so the pool's
            with self.raw_read() as conn:
                yield conn
            return
        with self._kept_lock:
            kept = self._kept
            if kept is None or kept[0] != os.getpid():  # (none across a fork: each process its own)
                conn = self.engine.raw_connection()
                raw = conn.driver_connection
                conn.detach()  # the pool's set-up (pragmas) done, the pool no longer holds it
                kept = self._kept = (os.getpid(), raw)
            yield kept[1]

    @contextmanager
    def raw_autocommit(self, pinged: bool = True) -> Iterator[Any]:
        """A DBAPI connection on which each statement is its own transaction (PostgreSQL's fast save:
        no BEGIN nor COMMIT round trips); given back to the pool in its usual mode.

        ``pinged=False``: the connection is not pinged first (a round trip on every checkout); a
        connection found dropped in the block is discarded and Disconnected raised, for the caller
        to run its statements again on a pinged one. It is then one of the process's kept connections
        (keptconn.py: no checkout, no autocommit switch) while one is free."""
        kept = self._autocommit.checkout() if not pinged and self._autocommit is not None else None
        if kept is not None:
            yield from self._on_kept(kept)
            return
        conn = self._checkout(pinged)
        raw = conn.driver_connection
        dropped = False
        try:
            raw.autocommit = True
            yield raw
        except self.engine.dialect.loaded_dbapi.Error as e:
            if not self.engine.dialect.is_disconnect(e, raw, None):
                raise
            dropped = True
            conn.invalidate(e)
            raise Disconnected(str(e)) from e
        finally:
            try:
                if not dropped:
                    raw.autocommit = False
            finally:
                conn.close()

    def _checkout(self, pinged: bool) -> Any:
        """A connection from the pool; ``pinged=False``: not pinged (its caller handles a dropped one)."""
        token = _UNPINGED.set(not pinged)
        try:
            return self.engine.raw_connection()
        finally:
            _UNPINGED.reset(token)

    def _on_kept(self, raw: Any) -> Iterator[Any]:
        """``raw_autocommit``'s block on a kept connection: given back if left idle, discarded if dropped."""
        try:
            yield raw
        except self.engine.dialect.loaded_dbapi.Error as e:
            if not self.engine.dialect.is_disconnect(e, raw, None):
                raise
            self._autocommit.discard(raw)  # type: ignore[union-attr]
            raw = None
            raise Disconnected(str(e)) from e
        finally:
            if raw is not None:
                self._autocommit.checkin(raw)  # type: ignore[union-attr]

    @contextmanager
    def raw_write(self) -> Iterator[Any]:
        """A DBAPI connection in a write transaction, as ``write()`` but without the ORM (services/quicksave.py).

        Under gevent the commit (SQLite's fsync) runs in a thread of its own, so that the worker's
        other requests go on meanwhile (the transaction's writes are done; only the commit waits)."""
        gated = self._gate is not None and self._gate.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn = self.engine.raw_connection()
            try:
                raw = conn.driver_connection
                if self.is_sqlite:
                    _begin_immediate(raw)
                yield raw
                _commit(conn)
            except BaseException:
                conn.rollback()
                raise
            finally:
                conn.close()
        finally:
            if gated:
                self._gate.release()  # type: ignore[union-attr]

    def dispose(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == os.getpid():
            kept[1].close()
        if self._autocommit is not None:
            self._autocommit.close()
        self.engine.dispose()


def dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT (it has ON CONFLICT), imported when first used: on SQLite the PostgreSQL
    dialect (about 4 MiB of code) stays out of the server's processes."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _ping_on_checkout(engine: Engine) -> None:
    """What ``pool_pre_ping`` does (a pooled connection is pinged as it is checked out; a dropped one
    is replaced, and the pool's older connections with it), except for a checkout in
    ``raw_autocommit(pinged=False)``, whose caller handles a dropped connection on use."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["fresh"] = True  # just connected: no ping needed (as pool_pre_ping)

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        if record.info.pop("fresh", False) or _UNPINGED.get():
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as e:
            if dialect.is_disconnect(e, dbapi_conn, None):
                raise exc.InvalidatePoolError() from e  # the pool reconnects (and drops its older connections)
            raise


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")  # a committed save survives a crash of the machine too
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "checkin")
    def on_checkin(dbapi_conn, record):  # type: ignore[no-untyped-def]
        if record is not None and record.info.pop("lax_commit", False):
            dbapi_conn.execute("PRAGMA synchronous=FULL")  # after a write(durable=False)

    @event.listens_for(engine, "begin")
    def on_begin(conn):  # type: ignore[no-untyped-def]
        # A read transaction upgraded to a write fails with SQLITE_BUSY at once, whatever the
        # busy timeout; writers that start IMMEDIATE queue on the lock instead.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if conn.get_execution_options().get("lax_commit"):  # write(durable=False): no fsync at its commit
            conn.info["lax_commit"] = True  # (set before BEGIN: SQLite refuses it inside a transaction)
            conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")
        if mode == "IMMEDIATE" and gevent_patched():
            raw = conn.connection.driver_connection
            if _begin_immediate_cooperatively(raw):
                return
            try:  # the busy timeout has passed: fail (busy_timeout is 0 now) as SQLite would, wrapped
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return
        conn.exec_driver_sql(f"BEGIN {mode}")


_COMMITTERS: dict[int, Any] = {}  # process id -> a gevent thread pool of one thread, for commits


def _commit(conn: Any) -> None:
    """Commit; under gevent in a thread (at the normal priority, unlike quizengine.offload's), the
    calling greenlet waiting."""
    if not gevent_patched():
        conn.commit()
        return
    pool = _COMMITTERS.get(os.getpid())
    if pool is None:
        from gevent.threadpool import ThreadPool

        pool = _COMMITTERS[os.getpid()] = ThreadPool(1)
    pool.apply(conn.commit)


PRIVATE = 0o600


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only, or make an existing one so.

    SQLite gives the -wal, -shm and -journal files the mode of the database file, so those follow.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))  # an empty file is an empty database
    except FileExistsError:
        pass
    for f in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            if f.stat().st_mode & 0o077:
                os.chmod(f, PRIVATE)
        except FileNotFoundError:
            continue


def _begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on a raw connection: under gevent cooperatively, as the "begin" event does."""
    if not gevent_patched():
        dbapi_conn.execute("BEGIN IMMEDIATE")
    elif not _begin_immediate_cooperatively(dbapi_conn):
        try:  # the busy timeout has passed: fail as SQLite would
            dbapi_conn.execute("BEGIN IMMEDIATE")
        finally:
            dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _begin_immediate_cooperatively(dbapi_conn: sqlite3.Connection) -> bool:
    """Under gevent, wait for the write lock by sleeping in Python (a yield), not in SQLite's busy handler.

    SQLite's busy handler sleeps in C and so stops every greenlet of the worker, the one holding the
    lock included. This polls BEGIN IMMEDIATE with gevent sleeps; False when the busy timeout passes
    (the connection's busy timeout is then left at 0).
    """
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while time.monotonic() < deadline:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            time.sleep(delay)  # gevent-patched: other greenlets run, the lock holder among them
            delay = min(delay * 2, 0.02)
            continue
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # for the rest of the transaction
        return True
    return False
