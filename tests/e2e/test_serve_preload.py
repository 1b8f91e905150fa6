"""`quizengine serve --no-preload` (README "Server memory"): the master builds no app, each worker its own.

The packages a process has imported with native code show in /proc/PID/maps: the preloaded master
maps numpy (the app imports it), the master of --no-preload does not, while its workers serve.
"""

from __future__ import annotations

import shutil
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
    srv.env["QUIZENGINE_PRELOAD"] = "1" if preload else "0"
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
    finally:
        srv.stop()
