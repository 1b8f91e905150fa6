"""`quizengine serve` (README "Server memory"): by default (`--no-preload`) the master builds no app, each
worker its own before it serves, and says so in the log; `--preload` builds it in the master.

The packages a process has imported with native code show in /proc/PID/maps: the preloaded master
maps numpy (the app imports it), the master of --no-preload does not, while its workers serve.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "sample"


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(x) for x in (task / "children").read_text().split()]
    return out


def maps_numpy(pid: int) -> bool:
    return "/numpy/" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("preload", [True, False])
def test_the_master_holds_the_app_only_when_preloading(tmp_path, preload):
    banks = tmp_path / "banks"
    shutil.copytree(SAMPLE, banks)
    srv = LiveServer(tmp_path, banks, workers=2)
    if preload:
        srv.env["QUIZENGINE_PRELOAD"] = "1"  # else the default
    srv.import_roster("username,full_name,student_id,email,password\nann,Ann,1,a@example.org,password-ann-1\n")
    srv.start()
    try:
        token = srv.token("ann", "password-ann-1")  # a worker built the app and serves
        status, _ = srv.api("GET", "/api/v1/quizzes", token=token)
        assert status == 200
        assert srv.proc is not None
        workers = children(srv.proc.pid)
        assert len(workers) == 2
        assert maps_numpy(srv.proc.pid) is preload
        assert any(maps_numpy(w) for w in workers)
        log = srv.tmp / "server.log"
        deadline = time.monotonic() + 60
        while log.read_text().count("Worker ready") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the log for a state, not timing anything
        ready = sorted(int(pid) for pid in re.findall(r"Worker ready \(pid: (\d+)\)", log.read_text()))
        assert ready == sorted(workers)
        assert all(maps_numpy(w) for w in workers)  # each ready worker holds the app
    finally:
        srv.stop()
