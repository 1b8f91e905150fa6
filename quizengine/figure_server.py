"""The drawing process shared by the server's workers (bank/figures/drawer.py): it draws the plots
(matplotlib) one at a time, each asked for as one JSON line over a Unix socket and answered with
{"svg": ...} or {"error": ...}, and exits after IDLE seconds without a request.

Run as ``python -m quizengine.figure_server SOCKET IDLE`` (a worker starts it). One runs per socket:
a second one finds the lock taken and exits. It imports the plot code without the bank's package
(its schema, loader and validation are not needed to draw), so it holds numpy, matplotlib and
little else.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import types
from pathlib import Path


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


def serve(path: str, idle: float) -> int:
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
        listener.settimeout(idle)
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    return 0  # idle: give the memory back
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
        finally:
            listener.close()
            os.unlink(path)  # before the lock goes: a new one may bind then


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
