"""PostgreSQL connections a process keeps in autocommit mode for the fast save (issue 14).

A save on PostgreSQL is two statements, each its own transaction. Taken from SQLAlchemy's pool, its
connection cost a checkout and a check-in (the pool's queue, its events, the reset on return) and two
switches of psycopg's autocommit: about an eighth of a worker's CPU per save, as much as the two
statements' own client-side work. A process therefore keeps up to ``size`` connections of its own,
detached from the pool once connected through it (its set-up and events done), always in autocommit.

A connection goes back to the idle list only when it is idle and healthy (no transaction, not broken:
a statement interrupted half-way, a greenlet killed while it waited, discards it). A connection the
server dropped while idle is found on use: the caller discards it (``discard``) and runs its
statements again on a pinged connection from the pool. When all ``size`` are in use the caller uses
the pool as before. The pool gives up as many connections as are kept (db.PG_POOL_OVERFLOW), so a
process still opens at most as many as before. A forked child never uses its parent's connections.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable


class KeptAutocommit:
    """Up to ``size`` DBAPI connections in autocommit mode, kept by this process (see the module)."""

    def __init__(self, connect: Callable[[], Any], size: int):
        """``connect()``: a connection from the pool (its events and set-up run), to detach and keep."""
        self.connect, self.size = connect, size
        self._idle: list[Any] = []
        self._open = 0  # kept connections of this process, idle or in use
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def checkout(self) -> Any | None:
        """An idle kept connection (the latest used), or a new one while fewer than ``size`` are open;
        None when all are in use."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's connections are not its own
                self._idle, self._open, self._pid = [], 0, os.getpid()
            if self._idle:
                return self._idle.pop()
            if self._open >= self.size:
                return None
            self._open += 1
        try:
            proxied = self.connect()
            raw = proxied.driver_connection
            proxied.detach()  # the pool no longer holds it
            raw.autocommit = True
            return raw
        except BaseException:
            with self._lock:
                self._open -= 1
            raise

    def checkin(self, raw: Any) -> None:
        """Keep the connection for the next save if it is idle and healthy, else close it."""
        healthy = not raw.closed and not raw.broken and raw.pgconn.transaction_status == _IDLE
        with self._lock:
            if healthy and self._pid == os.getpid():
                self._idle.append(raw)
                return
        self.discard(raw)

    def discard(self, raw: Any) -> None:
        """Close a kept connection (found dropped, or left in a state a save must not inherit)."""
        with self._lock:
            if self._pid == os.getpid():
                self._open -= 1
        try:
            raw.close()
        except Exception:  # noqa: BLE001 - a connection already gone: nothing to close
            pass

    def close(self) -> None:
        """Close the idle connections (``Database.dispose``; one in use is kept again at its check-in)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for raw in idle:
            raw.close()


_IDLE = 0  # libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE): no transaction open, none running
