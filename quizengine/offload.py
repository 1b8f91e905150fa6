"""Run CPU-bound work in a real thread when `quizengine serve` runs gevent workers.

A gevent worker serves all its connections from one OS thread: a request that computes for a
second (a password hash, a bank validation, a stress test) would stall every other request of
that worker. ``in_thread`` runs such a function in the worker's thread pool while the calling
greenlet waits; everywhere else (tests, the CLI, a sync server) it simply calls the function.
The function must not touch the database session or a lock shared with greenlets.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, TypeVar

T = TypeVar("T")

NICE = 10  # the threads' niceness: the event loop (nice 0) gets the CPU first, the class's autosaves too


def gevent_patched() -> bool:
    """True when gevent has monkey-patched this process (gunicorn's gevent workers)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def in_thread(fn: Callable[..., T], threads: int | None = None) -> Callable[..., T]:
    """Wrap ``fn`` so that under gevent it runs in the hub's thread pool; exceptions are re-raised.

    With ``threads``, it runs in a lane of its own of that many threads (one lane per process, shared
    by every function wrapped with the same number; see ``Lane``): calls queue first come first
    served, at most ``threads`` run at once (an Argon2 hash holds 19 MiB while it runs). Without
    gevent ``fn`` runs in the caller's thread.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not gevent_patched():
            return fn(*args, **kwargs)
        if threads is None:
            import gevent

            return gevent.get_hub().threadpool.apply(_niced, (fn, args, kwargs))
        return lane(threads).apply(fn, args, kwargs)

    return run


_lanes: dict[tuple[int, int], "Lane"] = {}  # (process id, threads) -> this process's lane
LANE_DONE: list[Callable[[], None]] = []  # called in the event loop each time a lane call is answered


def backlog() -> int:
    """The calls this process's lanes hold (queued or running)."""
    pid = os.getpid()
    return sum(lane.pending for (p, _), lane in _lanes.items() if p == pid)


def lane(threads: int) -> "Lane":
    """This process's lane of ``threads`` threads (a forked worker makes its own)."""
    key = (os.getpid(), threads)
    if key not in _lanes:
        _lanes[key] = Lane(threads)
    return _lanes[key]


class Lane:
    """Real OS threads (at niceness NICE) running the calls of a gevent worker's greenlets one after
    another, first come first served, while the greenlets wait.

    Unlike gevent's ThreadPool, which lets a caller hand its call over only once the event loop has
    delivered the last result (its threads idle while the loop is busy), every call is queued at once
    and the threads take the next as soon as they finish one: a class logging in is hashed back to
    back, in the order the logins arrived.
    """

    def __init__(self, threads: int):
        from gevent.monkey import get_original

        self.pending = 0  # calls queued or running (counted in the event loop's thread)
        self.queue = get_original("queue", "SimpleQueue")()  # the C queue, not gevent's: shared with real threads
        start = get_original("_thread", "start_new_thread")
        for _ in range(threads):
            start(self._serve, ())

    def apply(self, fn: Callable[..., T], args: tuple = (), kwargs: dict | None = None) -> T:
        """Run ``fn(*args, **kwargs)`` in the lane; the calling greenlet waits (others run). Its result,
        or its exception raised here."""
        import gevent
        from gevent.event import AsyncResult

        result, hub = AsyncResult(), gevent.get_hub()
        watcher = hub.loop.async_()  # the thread's send() wakes the event loop, which runs done()
        outcome: list = []

        def done() -> None:
            watcher.stop()
            watcher.close()
            self.pending -= 1
            ok, value = outcome[0]
            result.set(value) if ok else result.set_exception(value)
            for hook in LANE_DONE:
                hook()

        watcher.start(done)
        self.pending += 1
        self.queue.put((fn, args, kwargs or {}, outcome, watcher))
        return result.get()

    def _serve(self) -> None:
        _nice()
        while True:
            fn, args, kwargs, outcome, watcher = self.queue.get()
            try:
                outcome.append((True, fn(*args, **kwargs)))
            except BaseException as e:  # noqa: BLE001 - raised again in the caller
                outcome.append((False, e))
            watcher.send()


def _niced(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """Call ``fn`` in this pool thread at a lower CPU priority."""
    _nice()
    return fn(*args, **kwargs)


def _nice() -> None:
    """Lower this thread's CPU priority to NICE (on Linux, niceness is per thread)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError:  # not permitted or not supported: run at the normal priority
        pass

