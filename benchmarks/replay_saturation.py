"""Replay load.py's saturation phase on a copy of a database it kept: server CPU per autosave, round by round.

Run: PYTHONPATH=. .venv/bin/python benchmarks/replay_saturation.py FOLDER [--rounds 2] [--warm 0] [--workers 2]

FOLDER is a temp folder `benchmarks/load.py --keep` left behind after a SQLite run (it also keeps it
when a target missed): its database (quizengine.sqlite3 and its WAL) and its wrk script
(autosave.lua: the class's second attempts, which the saturation saves into). The database is
copied, `quizengine serve` started on the copy with load.py's settings (its secret, so the kept
tokens hold), and wrk run as load.py runs it (-t2 -c16, 10 s rounds, each round's seqs above the
last's). Each round prints its requests per second and the server's CPU (user + system of the master
and workers, /proc) per request answered. Nothing is warmed unless --warm N (seconds of wrk first):
the first round is then, as in load.py, the workers' first contact with the class's second attempts.
Two runs minutes apart on two versions of the code compare the versions on the same data.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from loadlib.proc import children, cpu_of, free_port, venv_tool, wait_until_serving  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a temp folder load.py kept (SQLite)")
    ap.add_argument("--rounds", type=int, default=2, help="10 s rounds measured (default 2)")
    ap.add_argument("--warm", type=int, default=0, help="seconds of wrk before the first round (default 0)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as load.py)")
    args = ap.parse_args()
    src = args.folder
    missing = [n for n in ("quizengine.sqlite3", "autosave.lua") if not (src / n).exists()]
    if missing:
        ap.error(f"{src} lacks {', '.join(missing)}: give a folder `load.py --keep` left after a SQLite run")
    tmp = Path(tempfile.mkdtemp(prefix="qe-replay-"))
    for name in ("quizengine.sqlite3", "quizengine.sqlite3-wal"):
        if (src / name).exists():
            shutil.copy(src / name, tmp / name)
    port = free_port()
    env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "load-benchmark",
           "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": f"sqlite:///{tmp / 'quizengine.sqlite3'}",
           "QUIZENGINE_LOGINS_PER_ADDRESS": "100000"}
    with open(tmp / "server.log", "w") as log:
        server = subprocess.Popen([venv_tool("quizengine"), "serve", "--port", str(port), "--workers", str(args.workers)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def cpu() -> float:
        return cpu_of([server.pid] + children(server.pid))

    def wrk(seconds: int, base: int) -> str:
        return subprocess.run(["/usr/bin/wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s",
                               "-s", str(src / "autosave.lua"), f"http://127.0.0.1:{port}/", "--", str(base)],
                              capture_output=True, text=True, check=True).stdout

    try:
        wait_until_serving(port, server, tmp / "server.log", args.workers)
        if args.warm:
            wrk(args.warm, 10**9)
        for r in range(args.rounds):
            c0 = cpu()
            out = wrk(10, 2 * 10**9 + r * 10**8)  # above the seqs load.py and any earlier replay sent
            used = cpu() - c0
            n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
            statuses: dict[str, int] = {}
            for code, count in re.findall(r'"(\d{3})":(\d+)', out.split("LOADJSON", 1)[-1].split("\n", 1)[0]):
                statuses[code] = statuses.get(code, 0) + int(count)
            print(f"round {r + 1}: {n / 10:.0f} requests/s, statuses {statuses}; server CPU {used:.1f} s = "
                  f"{1e3 * used / max(n, 1):.3f} ms per request", flush=True)
        print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    finally:
        os.killpg(server.pid, 15)
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
