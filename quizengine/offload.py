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

    With ``threads``, it runs in a pool of its own of that many threads (one pool per process, shared
    by every function wrapped with the same number): calls beyond them queue, so at most ``threads``
    run at once (an Argon2 hash holds 19 MiB while it runs, and each thread's allocator keeps it).
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not gevent_patched():
            return fn(*args, **kwargs)
        import gevent

        pool = gevent.get_hub().threadpool if threads is None else _pool(threads)
        return pool.apply(_niced, (fn, args, kwargs))

    return run


_pools: dict[tuple[int, int], object] = {}  # (process id, threads) -> gevent ThreadPool


def _pool(threads: int):  # type: ignore[no-untyped-def]
    """This process's pool of ``threads`` threads (a forked worker makes its own)."""
    key = (os.getpid(), threads)
    if key not in _pools:
        from gevent.threadpool import ThreadPool

        _pools[key] = ThreadPool(threads)
    return _pools[key]


def _niced(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """Call ``fn`` in this pool thread at a lower CPU priority (on Linux, niceness is per thread)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError:  # not permitted or not supported: run at the normal priority
        pass
    return fn(*args, **kwargs)

