"""psycopg's waits on the gevent hub's own watchers (PostgreSQL under `quizengine serve`).

psycopg runs each query as a generator that yields what it waits for (the socket readable,
writable or either) and is sent what became ready; ``psycopg.waiting.wait`` drives it. Its C wait
would block every greenlet of the worker, so under gevent's monkey-patching psycopg chooses its
``select.poll`` wait, and gevent emulates ``poll`` in Python: a poll object, its registration, a
watcher, a result queue and a timer for every wait, two or more per query. That was about a
quarter of a fast save's CPU on PostgreSQL (README, "Autosave CPU").

``wait`` below has the same contract and waits as a gevent socket does: one libev I/O watcher
of the hub per state. Differences: it does not wake every ``interval`` seconds (psycopg does so
to let a blocked main thread see Ctrl-C; under gevent the hub handles signals), and after a wait
for either direction it reports both ready (psycopg's generators then try both, a non-blocking
read or flush that finds nothing being harmless).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from gevent.hub import get_hub
from gevent.socket import wait as wait_on_watcher
from psycopg import errors, waiting

_READY = {waiting.WAIT_R: waiting.READY_R, waiting.WAIT_W: waiting.READY_W, waiting.WAIT_RW: waiting.READY_RW}


def wait(gen: Any, fileno: int, interval: float = 0.0, timeout: float | None = None) -> Any:
    """Consume psycopg's generator ``gen`` on socket ``fileno``; its result. ``timeout``: raise
    psycopg's ``_WaitTimeout`` once that many seconds have passed (``interval`` is not used)."""
    hub = get_hub()
    deadline = None if timeout is None else monotonic() + timeout
    try:
        s = next(gen)
        while True:
            io = hub.loop.io(fileno, int(s))  # (psycopg's R = 1, W = 2, RW = 3 are libev's READ and WRITE bits)
            try:
                if deadline is None:
                    hub.wait(io)
                else:
                    left = deadline - monotonic()
                    if left <= 0:
                        raise errors._WaitTimeout("wait timeout expired")
                    wait_on_watcher(io, left, errors._WaitTimeout("wait timeout expired"), hub)
            finally:
                io.close()
            s = gen.send(_READY[s])
    except StopIteration as stop:
        return stop.value


def use_for_psycopg() -> bool:
    """Make psycopg wait with ``wait`` in this process when gevent has patched ``select`` (a
    `quizengine serve` worker); True when it does."""
    from gevent import monkey

    if not monkey.is_module_patched("select"):
        return False
    waiting.wait = wait
    return True
