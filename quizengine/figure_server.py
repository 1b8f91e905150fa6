"""The drawing process shared by the server's workers (bank/figures/drawer.py): it draws the plots
(matplotlib) one at a time, each asked for as one JSON line over a Unix socket and answered with
{"svg": ...} or {"error": ...}, and exits after IDLE seconds without a request, or as soon as the
server that started it (OWNER, the gunicorn master) is gone, however it ended (SIGTERM, SIGKILL).

Run as ``python -m quizengine.figure_server SOCKET IDLE [OWNER]`` (a worker starts it, naming its
master). One runs per socket: a second one finds the lock taken and exits. It imports the plot code without the bank's package
(its schema, loader and validation are not needed to draw), so it holds numpy, matplotlib and
little else.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import sys
import time
import types
from pathlib import Path

POLL_S = 1.0  # how often the owner is looked for where a pidfd can't be had


def _plot_modules() -> types.ModuleType:
    """quizengine.bank.figures.drawer, with the packages above it registered empty (not run)."""
    root = Path(__file__).resolve().parent
    for name in ("quizengine.bank", "quizengine.bank.figures", "quizengine.calc"):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = pkg
    from .bank.figures import drawer

    return drawer


class _Owner:
    """Whether the owner process has exited: its pidfd turns readable then (Linux 5.3+); elsewhere
    it is looked for every POLL_S. ``fds`` go in the select, ``poll_s`` caps its wait."""

    def __init__(self, pid: int | None):
        self.pid, self.fds, self.poll_s, self.dead = pid, [], float("inf"), False
        if pid is None:
            return
        try:
            self.fds = [os.pidfd_open(pid)]
        except ProcessLookupError:
            self.dead = True
        except (AttributeError, OSError):  # no pidfd here: poll
            self.poll_s = POLL_S

    def gone(self) -> bool:
        if self.dead or self.pid is None:
            return self.dead
        if self.fds:
            self.dead = bool(select.select(self.fds, [], [], 0)[0])
            return self.dead
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):  # (PermissionError: the pid is another user's now)
            self.dead = True
        return self.dead


def serve(path: str, idle: float, owner: int | None = None) -> int:
    with open(path + ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another drawing process serves this socket
        drawer = _plot_modules()
        if os.path.exists(path):
            os.unlink(path)  # left by one that was killed
        old = os.umask(0o177)  # only this user may connect
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
        finally:
            os.umask(old)
        listener.listen(64)
        listener.setblocking(False)
        master = _Owner(owner)
        try:
            deadline = time.monotonic() + idle
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or master.gone():
                    return 0  # idle, or its server is gone: give the memory back
                ready, _, _ = select.select([listener, *master.fds], [], [], min(left, master.poll_s))
                if listener not in ready:
                    continue
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:  # the asker gave up meanwhile
                    continue
                with conn:
                    conn.settimeout(30)
                    try:
                        with conn.makefile("rb") as f:
                            d, salt = drawer.decode(json.loads(f.readline()))
                        reply = {"svg": drawer.draw_here(d, salt)}
                    except Exception as e:  # noqa: BLE001 - the worker draws it itself
                        reply = {"error": f"{type(e).__name__}: {e}"}
                    try:
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    except OSError:
                        pass  # the worker gave up waiting
                deadline = time.monotonic() + idle
        finally:
            listener.close()
            os.unlink(path)  # before the lock goes: a new one may bind then


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0,
                   int(sys.argv[3]) if len(sys.argv) > 3 else None))
