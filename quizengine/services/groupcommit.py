"""Group commit: the fast saves of a worker that wait for SQLite's write lock at the same moment
are written in one transaction, with one commit (one fsync) for all of them.

SQLite has one writer at a time and, at ``synchronous=FULL``, each commit waits for the disk
(an fsync: 5-15 ms on the 2-core machine). One transaction per save caps a database at a few
hundred saves a second and makes each save wait for every earlier one's fsync. Here the first
save to arrive leads: it takes every save queued behind it (at most ``limit``), writes them in one
transaction, each in its own savepoint (one save's error undoes that save only), and commits
once; the saves that arrived meanwhile wait, and the first of them leads the next batch. A save's
answer is sent only after the commit that holds it, so nothing acknowledged can be lost.

Without gevent (tests, the CLI) the same code runs with threads; a lone save is a batch of one.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ..db import Database

LIMIT = 64  # saves per transaction at most (a batch of them holds the write lock for a few ms)


class _Job:
    __slots__ = ("work", "result", "error", "done", "wake")

    def __init__(self, work: Callable[[Any], Any]):
        self.work, self.result, self.error, self.done = work, None, None, False
        self.wake = threading.Event()


class GroupCommit:
    def __init__(self, db: Database, limit: int = LIMIT):
        self.db, self.limit = db, limit
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work(conn)`` inside a write transaction shared with other saves; its result once committed.

        Raises what ``work`` raised (its writes undone), or what the transaction's begin or commit
        raised (nothing of the batch written)."""
        job = _Job(work)
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.wait()
        if not job.done:  # first in the queue: lead a batch (it holds this job)
            self._lead()
        if job.error is not None:
            raise job.error
        return job.result

    def _lead(self) -> None:
        with self._mutex:
            batch = self._queue[:self.limit]
            del self._queue[:self.limit]
        try:
            self._write(batch)
        finally:
            for job in batch:
                job.done = True
                job.wake.set()
            with self._mutex:
                if self._queue:
                    self._queue[0].wake.set()  # it leads the next batch
                else:
                    self._leading = False

    def _write(self, batch: list[_Job]) -> None:
        try:
            with self.db.raw_write() as conn:
                for job in batch:
                    conn.execute("SAVEPOINT quicksave")
                    try:
                        job.result = job.work(conn)
                    except Exception as e:  # noqa: BLE001 - handed to the job's caller
                        job.error = e
                        conn.execute("ROLLBACK TO quicksave")
                    conn.execute("RELEASE quicksave")
        except BaseException as e:  # the begin or the commit failed: nothing of the batch is written
            for job in batch:
                job.result, job.error = None, e if isinstance(e, Exception) else RuntimeError("save interrupted")
            if not isinstance(e, Exception):
                raise


def group_commit(db: Database) -> GroupCommit:
    """The database's group commit (one per Database object, kept on it)."""
    gc = db.__dict__.get("_group_commit")
    if gc is None:
        gc = db.__dict__["_group_commit"] = GroupCommit(db)
    return gc
