"""Plots drawn by one drawing process shared by the server's workers, so that matplotlib (about
40 MiB a process) stays out of the workers (issue 14, memory).

Under ``quizengine serve`` (``use(path)`` before the fork), ``svg`` sends a plot's numbers as one
JSON line over a Unix socket to the drawing process (quizengine/figure_server.py), which the first
worker needing a plot starts and which exits after IDLE_S seconds without a drawing: between
classes no process holds matplotlib. Anywhere else (tests, the CLI, ``quizengine warm``), or when
the drawing process cannot be reached, the plot is drawn in this process: a page never lacks its
figure. Both ways give the same SVG (the numbers travel as JSON, which keeps every float exactly).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
from typing import Any

import numpy as np

from .plots import ActivationDrawing, TrajectoryDrawing, activation_svg, trajectory_svg

IDLE_S = 60.0  # the drawing process exits after this long without a drawing
START_S = 30.0  # how long a worker waits for a drawing process it started (it imports matplotlib)
REPLY_S = 30.0  # how long a worker waits for one drawing

log = logging.getLogger(__name__)
_PATH: str | None = None
_OWNER: int | None = None  # the process that called use(): under serve, the gunicorn master
_SPAWNED: list[int] = []  # drawing processes this process started (reaped once they exit)


def socket_path(instance: str) -> str:
    """A short path (a Unix socket's is at most 107 bytes) for the drawing process of an instance folder."""
    tag = hashlib.sha256(os.path.abspath(instance).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"quizengine-draw-{os.getuid()}-{tag}.sock")


def use(path: str | None) -> None:
    """Draw plots through the drawing process at ``path`` (None: in this process); a drawing process
    started later exits when this process (the gunicorn master, before it forks) is gone."""
    global _PATH, _OWNER
    _PATH, _OWNER = path, os.getpid()


def encode(d: ActivationDrawing | TrajectoryDrawing, salt: str) -> dict[str, Any]:
    if isinstance(d, ActivationDrawing):
        return {"kind": "activation", "salt": salt, "name": d.name, "alpha": d.alpha, "z": list(d.z), "lo": d.lo,
                "hi": d.hi}
    return {"kind": "trajectory", "salt": salt, "A": d.A.tolist(), "b": d.b.tolist(), "path": d.path.tolist(),
            "optimizer": d.optimizer}


def decode(msg: dict[str, Any]) -> tuple[ActivationDrawing | TrajectoryDrawing, str]:
    if msg["kind"] == "activation":
        return ActivationDrawing(str(msg["name"]), float(msg["alpha"]), tuple(float(z) for z in msg["z"]),
                                 float(msg["lo"]), float(msg["hi"])), str(msg["salt"])
    arr = lambda k: np.asarray(msg[k], dtype=np.float64)  # noqa: E731
    return TrajectoryDrawing(arr("A"), arr("b"), arr("path").reshape(-1, 2), str(msg["optimizer"])), str(msg["salt"])


def draw_here(d: ActivationDrawing | TrajectoryDrawing, salt: str) -> str:
    return activation_svg(d, salt) if isinstance(d, ActivationDrawing) else trajectory_svg(d, salt)


def svg(d: ActivationDrawing | TrajectoryDrawing, salt: str) -> str:
    """The plot's SVG, from the drawing process when one is in use, else (or when it fails) drawn here."""
    if _PATH is None:
        return draw_here(d, salt)
    try:
        return _remote(_PATH, json.dumps(encode(d, salt)).encode() + b"\n")
    except Exception as e:  # noqa: BLE001 - the page still gets its figure
        log.warning("the drawing process failed (%s: %s); drawing here", type(e).__name__, e)
    return draw_here(d, salt)


def _remote(path: str, line: bytes) -> str:
    try:
        return _ask(path, line)
    except (FileNotFoundError, ConnectionRefusedError):  # none runs (it stopped when idle): start one
        if not _start(path):
            raise
    return _ask(path, line)


def _ask(path: str, line: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(REPLY_S)
        s.connect(path)
        s.sendall(line)
        with s.makefile("rb") as f:
            reply = json.loads(f.readline() or b"{}")
    if "svg" not in reply:
        raise ValueError(reply.get("error", "no reply"))
    return str(reply["svg"])


def _start(path: str) -> bool:
    """Start a drawing process (one that finds another already running exits) and wait until it listens."""
    for pid in list(_SPAWNED):  # reap the ones that stopped
        _exited(pid)
    pid = _unpatched("posix_spawn")(sys.executable, [sys.executable, "-m", "quizengine.figure_server", path,
                                                     str(IDLE_S), str(_OWNER or os.getpid())], dict(os.environ))
    _SPAWNED.append(pid)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
            return True
        except OSError:
            time.sleep(0.05)
        if pid in _SPAWNED and _exited(pid) not in (None, 0):  # it failed (0: another one serves the socket)
            log.warning("the drawing process exited at start; drawing here")
            return False
    return False


def _exited(pid: int) -> int | None:
    """The exit status of a drawing process this process started, None while it runs."""
    try:
        done, status = _unpatched("waitpid")(pid, os.WNOHANG)
    except ChildProcessError:  # reaped already
        _SPAWNED.remove(pid)
        return 0
    if not done:
        return None
    _SPAWNED.remove(pid)
    return os.waitstatus_to_exitcode(status)


def _unpatched(name: str) -> Any:
    """``os.NAME`` as the C library has it: gevent's (in a worker) watches children from the event
    loop's thread only, and a plot may be drawn in a compute thread (quizengine.offload)."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is a dependency
        return getattr(os, name)
    return get_original("os", name)
