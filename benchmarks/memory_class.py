"""The server's memory under load.py's class, without the saturation: RSS and PSS per process at the peak.

Run:  .venv/bin/python benchmarks/memory_class.py [--students 300] [--workers 2] [--prepared FILE]

load.py's set-up (loadlib/setup.py: banks, N students with the server's password hash, `quizengine
warm` of both attempts of each) takes minutes; --prepared FILE keeps a copy of that SQLite database
(made on the first run when FILE does not exist) and each later run starts from a copy of it. Then
it starts `quizengine serve --workers W` (QUIZENGINE_PRELOAD as set, else the checkout's default) and runs
load.py's phases (loadlib/phases.py): logins, spike, paced autosaves (--save-interval, 3 s), submits
and the second starts. A sampler reads every 0.2 s the RSS (/proc/PID/status) and PSS
(/proc/PID/smaps_rollup) of every process of the server's tree (load.py's measure); the run prints
the RSS and PSS sums' peaks, each process's RSS and PSS at the RSS peak, the peak per phase, and
the server's CPU per request of each phase (utime + stime of its processes / requests answered).
--breakdown also prints, at the end, each process's memory grouped by mapping
(benchmarks/smaps_breakdown.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadlib import setup  # noqa: E402
from loadlib.client import Student  # noqa: E402
from loadlib.phases import Bench  # noqa: E402
from loadlib.proc import MemorySampler, Processes, loadavg, log, venv_tool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Sampler(MemorySampler):
    """load.py's sampler, also keeping each process's PSS at the RSS sum's peak."""

    peak_pss_split: list[int] = []

    def sample(self) -> None:
        before = self.peak_rss_kib
        super().sample()
        if self.peak_rss_kib > before:
            self.peak_pss_split = [self._field(f"/proc/{p}/smaps_rollup", "Pss:") for p in self.tree()]


def backup(src: str, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prepared", type=Path, default=None, help="a copy of the set-up's database (made if missing)")
    ap.add_argument("--save-interval", type=float, default=3.0)
    ap.add_argument("--breakdown", action="store_true", help="print each process's mappings at the end")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the source tree served (default: this one; e.g. a checkout of the base commit, paired)")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--max-connections", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qe-mem-"))
    url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
    env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "load-benchmark",
           "QUIZENGINE_BANKS": str(args.tree / "banks"), "QUIZENGINE_DATABASE_URL": url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(args.tree), os.environ.get("PYTHONPATH")])),
           "QUIZENGINE_LOGINS_PER_ADDRESS": "100000"}
    students = [Student(i, f"s{i}", f"password-{i:04d}") for i in range(args.students)]
    exe = venv_tool("quizengine")
    procs = Processes()
    load0 = loadavg()
    try:
        if args.prepared and args.prepared.exists():
            backup(str(args.prepared), tmp / "quizengine.sqlite3")
            log(f"set-up: a copy of {args.prepared}")
        else:
            setup.prepare("sqlite", env, exe, students, [], True, None)
            if args.prepared:
                backup(str(tmp / "quizengine.sqlite3"), args.prepared)
        port, server = procs.serve(exe, args.workers, tmp / "server.log", env)
        mem = Sampler(server.pid)
        mem.start()
        bench = Bench(args, port, students)

        async def the_class() -> None:
            for phase in (bench.logins, bench.spike, bench.paced, bench.submits, bench.starts):
                await phase(mem)
            mem.enter("end")

        asyncio.run(the_class())
        if args.breakdown:
            import smaps_breakdown

            smaps_breakdown.report(server.pid, 16)
        mem.stop()
        mib = 1024.0
        split = " + ".join(f"{r / mib:.0f}/{p / mib:.0f}" for r, p in zip(mem.peak_split, mem.peak_pss_split))
        print(f"\n{args.tree}: memory ({args.students} students, {args.workers} workers, QUIZENGINE_PRELOAD="
              f"{os.environ.get('QUIZENGINE_PRELOAD', 'unset, the tree default')}): peak RSS sum {mem.peak_rss_kib / mib:.1f} MiB, "
              f"peak PSS sum {mem.peak_pss_kib / mib:.1f} MiB; at the RSS peak, RSS/PSS per process (master "
              f"first): {split}; at the end RSS {mem.last_rss_kib / mib:.1f}, PSS {mem.last_pss_kib / mib:.1f}")
        print("peak RSS by phase (MiB): " + ", ".join(f"{k} {v / mib:.0f}" for k, v in mem.marks.items()))
        counts = {"logins": "logins/token", "spike": "spike/start", "paced": "paced/autosave",
                  "submits": "submits/submit", "starts": "starts/start"}
        for name, wall, server_cpu, *_ in mem.phase_table():
            ep = bench.ep.get(counts.get(name, ""))
            n = len(ep.lat) if ep is not None else 0
            per = f", {1000 * server_cpu / n:.2f} ms per request ({n})" if n else ""
            print(f"  {name:<8} wall {wall:6.1f} s, server CPU {server_cpu:6.1f} s{per}")
        print(f"load average before {load0}, after {loadavg()}")
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
