"""What a submit costs the server over HTTP (issue 14, part 4): server CPU per submit, from /proc.

Run: PYTHONPATH=. .venv/bin/python benchmarks/submit_http.py [--students 60] [--clients 32] [--workers 2]

A fresh instance (SQLite, the shipped banks) with N students; ``quizengine warm module-04-prep
--attempts 2`` renders their two attempts ahead (as benchmarks/load.py does); ``quizengine serve``
(gunicorn, gevent workers) is started; every student logs in, starts ``module-04-prep`` (20 questions, a chain) and
answers every question at random (loadlib.client.make_response, as load.py), each question saved
once, so a worker has built the variants of the questions it saved and not the others, as under
load.py; then all N submit from ``--clients`` clients in a closed loop. Printed: the server's CPU
(gunicorn master and workers, utime + stime from /proc) per submit over the submit phase, and the
submits' p50/p95 with the load average (on a loaded machine the latencies measure the machine).

``SUBMIT_BENCH_TREE=/path/to/other/tree`` serves that tree's code (a paired run against a base).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("SUBMIT_BENCH_TREE") or Path(__file__).resolve().parents[1])  # the code served
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loadlib.client import make_response  # noqa: E402 - after the path
from loadlib.proc import free_port, wait_until_serving  # noqa: E402
from start_bench import closed_loop, pct, server_cpu  # noqa: E402

QUIZ = "module-04-prep"
FAST_HASH = "argon2id:m=8,t=1,p=1"


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=60, help="submits measured (default 60)")
    ap.add_argument("--clients", type=int, default=32, help="clients submitting at once (default 32)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    ap.add_argument("--py-spy", metavar="DIR", help="record each worker with py-spy (--gil, collapsed stacks) "
                    "during the submits, into DIR/worker-PID.txt")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="submit-http-"))
    url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_DATABASE_URL": url,
           "QUIZENGINE_SECRET_KEY": "submit-http", "QUIZENGINE_BANKS": str(ROOT / "banks"),
           "QUIZENGINE_LOGINS_PER_ADDRESS": "0", "QUIZENGINE_LOGINS_PER_SECOND": "0"}
    cli = [sys.executable, "-m", "quizengine.cli"]
    subprocess.run(cli + ["load-banks"], env=env, check=True, capture_output=True, cwd=ROOT)
    names = [f"s{i}" for i in range(args.students)]
    script = ("import sys\nfrom quizengine import create_app\nfrom quizengine.services import accounts\n"
              f"app = create_app({{'DATABASE_URL': {url!r}, 'SECRET_KEY': 'submit-http', 'INSTANCE': {str(tmp)!r},"
              f" 'BANKS': {str(ROOT / 'banks')!r}}})\n"
              "with app.extensions['quizengine.db'].write() as s:\n"
              f"    for name in {names!r}:\n"
              f"        accounts.add_user(s, name, 'student', 'password-123', method={FAST_HASH!r})\n")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=ROOT)
    subprocess.run(cli + ["warm", QUIZ, "--attempts", "2"], env=env, check=True, capture_output=True, cwd=ROOT)
    port = free_port()
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(cli + ["serve", "--port", str(port), "--workers", str(args.workers)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        wait_until_serving(port, server, tmp / "server.log", args.workers)
        tokens: dict[str, str] = {}
        attempts: dict[str, dict] = {}
        rng = random.Random(14)

        def prepare(c, name: str) -> bool:
            st, data = c.call("POST", "/api/v1/auth/token", {"username": name, "password": "password-123"})
            if st != 200:
                return False
            tokens[name] = data["token"]
            st, a = c.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=tokens[name])
            if st != 201:
                return False
            attempts[name] = a
            for k, q in enumerate(a["questions"]):
                st, _ = c.call("PUT", f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}",
                               {"response": make_response(q, rng), "seq": k + 1}, token=tokens[name], parse=False)
                if st != 200:
                    return False
            return True

        _, err = closed_loop(port, names, 8, prepare)
        if err:
            raise SystemExit(f"error: {err} students could not log in, start or answer (see {tmp / 'server.log'})")
        time.sleep(4)  # the workers' warmers wait for a pause (services/warming.py); let them go quiet first

        def submit(c, name: str) -> bool:
            st, _ = c.call("POST", f"/api/v1/attempts/{attempts[name]['attempt_id']}/submit", token=tokens[name],
                           parse=False)
            return st == 200

        spies = spy(server.pid, Path(args.py_spy)) if args.py_spy else []
        cpu0 = server_cpu(server.pid)
        lat, err = closed_loop(port, names, args.clients, submit)
        cpu1 = server_cpu(server.pid)
        for p in spies:
            p.send_signal(2)  # py-spy writes its file on SIGINT
            p.wait(timeout=60)
        print(f"submit over HTTP ({ROOT}): server CPU per submit {(cpu1 - cpu0) / len(names) * 1e3:.1f} ms; "
              f"p50 {pct(lat, 50) * 1e3:.0f} ms, p95 {pct(lat, 95) * 1e3:.0f} ms, errors {err} "
              f"(n={len(names)}, {args.clients} clients, {args.workers} workers, load {load()})", flush=True)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def spy(master: int, out: Path) -> list[subprocess.Popen]:
    """py-spy recording each gunicorn worker (a child of the master), collapsed stacks, GIL holders only."""
    from loadlib.proc import children

    out.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("py-spy")
    procs = [subprocess.Popen([str(exe), "record", "--gil", "--nonblocking", "--rate", "200", "--format", "raw",
                               "--pid", str(pid), "-o", str(out / f"worker-{pid}.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in children(master)]
    time.sleep(1.0)  # py-spy attaches
    return procs


if __name__ == "__main__":
    main()
