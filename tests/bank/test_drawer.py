"""The drawing process shared by a server's workers (bank/figures/drawer.py, quizengine/figure_server.py):
the same SVG as drawn in process, matplotlib kept out of the asking process, one process per socket,
gone when idle and started again on the next plot, and a plot drawn in process when none can run."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from quizengine.bank.figures import drawer
from quizengine.bank.figures.plots import ActivationDrawing, TrajectoryDrawing

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
ACT = ActivationDrawing("leaky_relu", 0.1, (-2.5, 0.3333333333333333, 1.75), -4.0, 3.0)
TRAJ = TrajectoryDrawing(np.array([[2.0, 0.3], [0.3, 1.0]]), np.array([1.0, -0.5]),
                         np.array([[0.0, 0.0], [0.31, -0.17], [0.5000000000000001, -0.29]]), "momentum")


STRAYS: list[int] = []  # drawing processes started by a subprocess of a test


def same_drawing(a: str, b: str) -> bool:
    """The same elements and texts (a reused canvas orders its texts by what it drew before)."""
    def parts(svg: str) -> list[str]:
        return sorted(ET.tostring(el, encoding="unicode").strip() for el in ET.fromstring(svg).iter()
                      if len(el) == 0)
    return parts(a) == parts(b)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def sock(tmp_path):
    path = drawer.socket_path(str(tmp_path))
    yield path
    drawer.use(None)
    for pid in list(drawer._SPAWNED) + STRAYS:
        try:
            os.kill(pid, 15)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass  # gone, or not our child
    drawer._SPAWNED.clear()
    STRAYS.clear()
    for p in (path, path + ".lock"):
        if os.path.exists(p):
            os.unlink(p)


def test_json_keeps_every_number_of_a_drawing():
    for d in (ACT, TRAJ):
        back, salt = drawer.decode(json.loads(json.dumps(drawer.encode(d, "s1"))))
        assert salt == "s1"
        for name in d.__dataclass_fields__:
            np.testing.assert_array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(d, name)))


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from quizengine.bank.figures import drawer
    from quizengine.bank.figures.plots import ActivationDrawing, TrajectoryDrawing
    drawer.use(sys.argv[1])
    act = ActivationDrawing("leaky_relu", 0.1, (-2.5, 0.3333333333333333, 1.75), -4.0, 3.0)
    traj = TrajectoryDrawing(np.array([[2.0, 0.3], [0.3, 1.0]]), np.array([1.0, -0.5]),
                             np.array([[0.0, 0.0], [0.31, -0.17], [0.5000000000000001, -0.29]]), "momentum")
    out = {"act": drawer.svg(act, "a"), "traj": drawer.svg(traj, "b"), "spawned": drawer._SPAWNED,
           "matplotlib": sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "contourpy"))}
    # drawn here too, each the first of its kind as in the drawing process (a reused canvas orders
    # its texts by what it drew before)
    out["act_here"], out["traj_here"] = drawer.draw_here(act, "a"), drawer.draw_here(traj, "b")
    print(json.dumps(out))
""")


def test_a_process_using_the_drawer_gets_the_same_svg_without_importing_matplotlib(sock):
    out = subprocess.run([sys.executable, "-c", SCRIPT, sock], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["matplotlib"] == []
    assert len(report["spawned"]) == 1  # started once, used for both plots
    STRAYS.extend(report["spawned"])
    assert report["act"] == report["act_here"]
    assert report["traj"] == report["traj_here"]
    assert "z = \u22122.5" in report["act"] and "momentum" in report["traj"]


def test_one_drawing_process_per_socket(sock, monkeypatch):
    monkeypatch.setattr(drawer, "IDLE_S", 600.0)
    drawer.use(sock)
    assert same_drawing(drawer.svg(ACT, "a"), drawer.draw_here(ACT, "a")) and len(drawer._SPAWNED) == 1
    pid = drawer._SPAWNED[0]
    second = subprocess.run([sys.executable, "-m", "quizengine.figure_server", sock, "600"], env=ENV, timeout=300)
    assert second.returncode == 0 and alive(pid)  # found the lock taken and left; the first one serves on
    assert same_drawing(drawer.svg(TRAJ, "b"), drawer.draw_here(TRAJ, "b")) and drawer._SPAWNED == [pid]


def test_the_drawing_process_leaves_when_idle_and_the_next_plot_starts_another(sock, monkeypatch):
    idle = subprocess.Popen([sys.executable, "-m", "quizengine.figure_server", sock, "1.5"], env=ENV)
    STRAYS.append(idle.pid)
    assert idle.wait(timeout=300) == 0  # it exits by itself, nothing asked of it ...
    assert not os.path.exists(sock)  # ... and takes its socket with it
    monkeypatch.setattr(drawer, "IDLE_S", 600.0)
    drawer.use(sock)
    assert same_drawing(drawer.svg(ACT, "a"), drawer.draw_here(ACT, "a"))  # the next plot starts a new one
    assert len(drawer._SPAWNED) == 1 and drawer._SPAWNED[0] != idle.pid


def test_a_plot_is_drawn_in_process_when_no_drawing_process_can_run(tmp_path, monkeypatch):
    monkeypatch.setattr(drawer, "START_S", 3600.0)  # not waited for: the drawing process's failure is seen
    drawer.use(str(tmp_path / "no-such-folder" / "draw.sock"))  # the drawing process cannot start there
    try:
        assert same_drawing(drawer.svg(ACT, "a"), drawer.draw_here(ACT, "a"))
        assert drawer._SPAWNED == []  # it was started, failed, and was reaped
    finally:
        drawer.use(None)


OWNER = textwrap.dedent("""
    import sys
    from quizengine.bank.figures import drawer
    from quizengine.bank.figures.plots import ActivationDrawing
    drawer.IDLE_S = 600.0  # only its owner's end can stop it within the test
    drawer.use(sys.argv[1])
    drawer.svg(ActivationDrawing("relu", 0.0, (1.0,), -2.0, 2.0), "a")
    print(drawer._SPAWNED[0], flush=True)
    sys.stdin.readline()  # until the test kills this process
""")


def wait_gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (its pidfd turns readable), False if it still runs after ``timeout`` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_drawing_process_leaves_as_soon_as_the_server_that_started_it_is_gone(sock, how):
    with subprocess.Popen([sys.executable, "-c", OWNER, sock], env=ENV, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as owner:
        try:
            pid = int(owner.stdout.readline())
            STRAYS.append(pid)
            assert not wait_gone(pid, 0)  # it serves while its owner lives
        finally:
            owner.send_signal(how)
            owner.wait(timeout=60)
    assert wait_gone(pid, 30.0)  # not the 600 s of its idle time
    assert not os.path.exists(sock)


def test_a_drawing_process_whose_owner_is_gone_does_not_stay(sock):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    server = subprocess.run([sys.executable, "-m", "quizengine.figure_server", sock, "600", gone.stdout.strip()],
                            env=ENV, timeout=300)
    assert server.returncode == 0 and not os.path.exists(sock)
