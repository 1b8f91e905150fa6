"""`quizengine serve`: migrate, load the banks, optionally create demo accounts, run gunicorn.

Gunicorn runs gevent workers: every connection is a greenlet, so slow or half-open connections
(headers dribbled a byte at a time, a declared body never sent, a socket left idle) cost a
greenlet each and block nobody. Each has deadlines: the request head within HEAD_TIMEOUT (also
the idle keep-alive time), the whole body within BODY_TIMEOUT (it is read into memory before the
app runs), and no single read or write of the socket may stall longer than IO_TIMEOUT.
CPU-heavy work runs in a thread (quizengine.offload) and SQLite waits for its write lock with
gevent sleeps (quizengine.db), so neither stops the other greenlets of a worker.
"""

from __future__ import annotations

import gc
import io
import os
import socket
import sys
import threading
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any, Callable

from .constants import ATTEMPT_BUDGET_S, SWEEP_BUDGET_S

HEAD_TIMEOUT = 5  # s: request line and headers (gunicorn's keepalive, a gevent.Timeout around the parser)
BODY_TIMEOUT = 20.0  # s: the whole request body
IO_TIMEOUT = 30.0  # s: any one read or write of a client socket
BUFFER_LIMIT = 3 * 1024 * 1024  # bytes (a 1 MiB bank file, form-encoded): larger declared bodies go to the app unread (it refuses them: 413)
WORKER_CONNECTIONS = 1000  # open connections per worker

DEMO_USERS = [("instructor", "instructor", "Demo Instructor")] + [
    (f"student{i}", "student", f"Demo Student {i}") for i in (1, 2, 3)]


def ensure_demo_accounts(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Create the demo accounts on first run; their credentials are kept in the instance folder."""
    from .services import accounts  # (here: `serve --no-preload`'s master builds no app)

    path = Path(app.config["INSTANCE"]) / "demo-accounts.txt"
    db = app.extensions["quizengine.db"]
    created = []
    with db.write() as s:
        existing = accounts.usernames(s)
        for username, role, name in DEMO_USERS:
            if username in existing:
                continue
            pw = accounts.generate_password()
            accounts.add_user(s, username, role, pw, full_name=name, method=app.config["PASSWORD_METHOD"])
            created.append(f"{username:<12} {role:<11} {pw}")
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(created) + "\n")
        os.chmod(path, 0o600)
    return path.read_text().splitlines() if path.exists() else []


def sweep(app) -> int:  # type: ignore[no-untyped-def]
    """Submit the attempts whose time is up, each graded outside the write lock in its own transaction;
    then post the LMS scores that wait (and rotate the LTI key when due).

    A sweep starts no new attempt after SWEEP_BUDGET_S (the rest wait for the next one) and gives up
    on one attempt after ATTEMPT_BUDGET_S (doubled each time it failed before).
    """
    from .lti import tasks  # (imported here: `serve` patches for gevent before LTI's HTTP stack loads)
    from .services.closing import expire_due

    n = expire_due(app.extensions["quizengine.db"], budget_s=SWEEP_BUDGET_S, attempt_budget_s=ATTEMPT_BUDGET_S)
    tasks.sweep(app.extensions["quizengine.db"], app.config["LTI_KEY_DAYS"])
    return n


def sweeper(app, every: float) -> threading.Thread:  # type: ignore[no-untyped-def]
    """A daemon thread that submits attempts whose time is up, every ``every`` seconds."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                sweep(app)
            except Exception:  # noqa: BLE001 - keep sweeping (the database may be down a moment)
                app.logger.exception("expiry sweep failed")

    t = threading.Thread(target=loop, name="quizengine-expiry", daemon=True)
    t.start()
    return t


def warmer(app) -> threading.Thread:  # type: ignore[no-untyped-def]
    """A daemon thread (a greenlet under gevent) rendering the upcoming attempts of students who log
    in or submit; the rendering itself runs in the worker's compute thread (quizengine.offload)."""
    from .offload import in_thread
    from .services.warming import render_keys, run_warmer

    def failed(e: BaseException) -> None:
        app.logger.warning("rendering ahead failed (the start will render): %s", e)

    t = threading.Thread(target=run_warmer, name="quizengine-warm", daemon=True,
                         args=(app.extensions["quizengine.db"], app.config["SECRET_KEY"], in_thread(render_keys),
                               threading.Event(), failed))
    t.start()
    return t


def in_child(work: Callable[[], None]) -> int:
    """Run ``work`` in a forked child process and wait for it; its exit status (a SystemExit's code, 1 if it raised).

    What the child imports and allocates goes with it: the caller's memory stays as it was.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            work()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - reported, and the exit status says so
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def patch_for_gevent() -> None:
    """Monkey-patch the standard library for gevent; call it first, before the app and its engine exist."""
    from gevent import monkey

    monkey.patch_all()


def buffered(app, timeout: float = BODY_TIMEOUT, limit: int = BUFFER_LIMIT):  # type: ignore[no-untyped-def]
    """WSGI middleware: read the whole request body, within ``timeout`` s, before the app sees the request.

    A body that doesn't arrive in time reaches the app as a stream whose reads raise 408, so the app
    answers in its own style (JSON under /api/, a page elsewhere).
    """
    import gevent
    from werkzeug.exceptions import RequestTimeout
    from werkzeug.wsgi import ClosingIterator

    class Late(io.RawIOBase):
        def __init__(self, message: str):
            self.message = message

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            raise RequestTimeout(self.message)

    def wsgi(environ, start_response):  # type: ignore[no-untyped-def]
        try:
            declared = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            declared = -1
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if 0 < declared <= limit or chunked:
            want = declared if declared > 0 else limit + 1
            chunks, got, stream = [], 0, environ["wsgi.input"]
            with gevent.Timeout(timeout, False):
                try:
                    while got < want:
                        chunk = stream.read(min(64 * 1024, want - got))
                        if not chunk:
                            break
                        chunks.append(chunk)
                        got += len(chunk)
                except (OSError, ValueError):
                    pass  # a reset or a malformed chunk: the body is incomplete
            if (declared > 0 and got < declared) or (chunked and got > limit):
                what = f"{declared} bytes" if declared > 0 else f"chunked, at most {limit} bytes"
                environ["wsgi.input"] = Late(f"the request body ({what}) did not arrive within {timeout:g} s")
                environ["CONTENT_LENGTH"] = str(max(declared, 1))
                # once answered, end the connection: the rest of that body would be read as a request
                return ClosingIterator(app(environ, start_response), partial(_stop_reading, environ))
            else:
                environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
                environ["CONTENT_LENGTH"] = str(got)
                environ.pop("HTTP_TRANSFER_ENCODING", None)
        return app(environ, start_response)

    return wsgi


def _stop_reading(environ: dict) -> None:
    sock = environ.get("gunicorn.socket")
    try:
        sock.shutdown(socket.SHUT_RD)  # gunicorn sees the end of the stream and closes the connection
    except (AttributeError, OSError):
        pass


ACCEPT_BACKLOG = 2  # a worker accepts no new connection while its hashing lane holds this many calls


def worker_class():  # type: ignore[no-untyped-def]
    """Gunicorn's gevent worker with a timeout on every read and write of a client socket, which
    accepts no new connection while its hashing lane is backed up (``fair_server``)."""
    from gunicorn.workers import ggevent
    from gunicorn.workers.base_async import AsyncWorker

    from .wire import freeze_config, trusted_proxy_once, use_one_send

    class Worker(ggevent.GeventWorker):
        def handle(self, listener, client, addr):  # type: ignore[no-untyped-def]
            client.settimeout(IO_TIMEOUT)  # GeventWorker.handle would make it blocking without a timeout
            AsyncWorker.handle(self, listener, client, addr)

        def run(self) -> None:
            ggevent.StreamServer = fair_server(ggevent.StreamServer)  # (in this worker process only)
            use_one_send()  # (quizengine.wire: the same bytes, fewer system calls and lookups per request)
            freeze_config(self.cfg)
            trusted_proxy_once()
            super().run()

    return Worker


def fair_server(base):  # type: ignore[no-untyped-def]
    """A gevent StreamServer that stops accepting while this worker's hashing lane holds ACCEPT_BACKLOG
    calls (a class logging in) and starts again as each is answered.

    The workers share one listening socket, and the one whose event loop gets to it first accepts:
    one took 60% of a class's logins, each worker's lane served its own queue, and the logins of
    the busier worker waited longer. Left in the kernel's queue (first come, first served), each
    login goes to the first worker whose lane has room."""
    from . import offload

    class FairServer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            offload.LANE_DONE.append(self._resume)

        def _do_read(self) -> None:
            if offload.backlog() >= ACCEPT_BACKLOG:
                self.stop_accepting()  # until the lane answers a call (_resume)
                return
            super()._do_read()

        def _resume(self) -> None:
            if self.started and offload.backlog() < ACCEPT_BACKLOG:
                self.start_accepting()

    return FairServer


def date_once_a_second() -> None:
    """Gunicorn formats the Date header anew for every response (email.utils: 2% of a fast autosave's
    CPU): format it once per second instead (the header shows whole seconds)."""
    from gunicorn import util

    real = util.http_date
    if getattr(real, "once_a_second", False):
        return
    last: list[tuple[int, str]] = [(-1, "")]

    def http_date(timestamp: float | None = None) -> str:
        if timestamp is not None:
            return real(timestamp)
        second = int(time.time())
        if last[0][0] != second:
            last[0] = (second, real(second))
        return last[0][1]

    http_date.once_a_second = True  # type: ignore[attr-defined]
    util.http_date = http_date


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)


def tame_malloc() -> bool:
    """Keep glibc from holding freed memory in every worker: allocations of 1 MiB and more (an
    Argon2id hash's 19 MiB, a large page) are mapped and given back when freed (a fixed threshold
    turns off glibc's habit of raising it after the first such free, which kept 19 MiB per hashing
    thread), and threads share 2 arenas. Set in the master before the fork; workers inherit it.
    False where the C library is not glibc (nothing changes)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)) and bool(libc.mallopt(M_ARENA_MAX, 2))
    except (OSError, AttributeError):
        return False


def run_gunicorn(app, host: str, port: int, workers: int, extra: dict[str, Any] | None = None) -> None:  # type: ignore[no-untyped-def]
    """Serve ``app`` (built here: preloaded, shared by the forked workers) or, given a function that
    builds it, let each worker build its own (the master then holds no app)."""
    from gunicorn.app.base import BaseApplication

    from .accesslog import AccessLogger

    preload = hasattr(app, "config")
    build = None if preload else app
    held = [app] if preload else []

    class Server(BaseApplication):
        def load_config(self) -> None:
            opts = {"bind": f"{host}:{port}", "workers": workers, "worker_class": worker_class(), "timeout": 60,
                    "keepalive": HEAD_TIMEOUT, "worker_connections": WORKER_CONNECTIONS, "preload_app": preload,
                    "accesslog": "-", "logger_class": AccessLogger, "control_socket_disable": True, "post_fork": post_fork,
                    "post_worker_init": post_worker_init, **(extra or {})}
            for k, v in opts.items():
                self.cfg.set(k, v)

        def load(self):  # type: ignore[no-untyped-def]
            if not held:  # a worker building its own app: its objects, like a preloaded master's, are frozen
                held.append(build())  # type: ignore[misc]
                gc.collect()
                gc.freeze()
            return buffered(held[0])

    def post_fork(server, worker) -> None:  # type: ignore[no-untyped-def]
        if held:
            held[0].extensions["quizengine.db"].engine.dispose(close=False)  # no connection shared across a fork

    def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
        app = held[0]
        # A thread computing (quizengine.offload) hands the GIL back to the event loop after 1 ms
        # instead of 5: each SQLite call of a request releases it and waits that long to resume.
        sys.setswitchinterval(0.001)
        if app.config["EXPIRY_SWEEP_SECONDS"] > 0:  # a greenlet: started once the worker's gevent hub is set up
            sweeper(app, app.config["EXPIRY_SWEEP_SECONDS"])
        if app.config["WARM_AHEAD"]:
            warmer(app)
        worker.log.info("Worker ready (pid: %s)", worker.pid)  # its app built: it serves from now on

    # Everything imported so far is shared with the forked workers; keep the garbage collector from
    # touching (and so copying) those pages in every worker. (Its full collections also skip them.)
    gc.collect()
    gc.freeze()
    tame_malloc()
    date_once_a_second()
    Server().run()
