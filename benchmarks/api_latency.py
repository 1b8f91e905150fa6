"""Latency of the student API against the real server (`quizengine serve`, gunicorn, SQLite WAL).

Run: .venv/bin/python benchmarks/api_latency.py [--students 30] [--workers 2]
Starts the server on a free port with a fresh database in a temporary folder, then, from this
process, one student after another logs in, starts module-04-prep, autosaves 20 answers and
submits. Prints p50/p95/max per endpoint. It measures an unloaded server (one request at a
time); benchmarks/load.py measures a whole class at once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadlib.proc import wait_until_serving  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUIZ = "module-04-prep"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, object, float]:
        t0 = time.perf_counter()
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        dt = time.perf_counter() - t0
        return r.status, (json.loads(data) if data and r.getheader("Content-Type", "").startswith("application/json")
                          else data), dt


def start_server(tmp: Path, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    exe = str(Path(sys.executable).with_name("quizengine"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=open(tmp / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, proc, tmp / "server.log", workers)
    except SystemExit:
        proc.kill()
        raise
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qe-latency-"))
    env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "bench",
           "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}"}
    roster = tmp / "roster.csv"
    roster.write_text("username,full_name,student_id,email,password\n" +
                      "".join(f"s{i},Student {i},{i},s{i}@example.org,password-{i:04d}\n" for i in range(args.students)))
    exe = str(Path(sys.executable).with_name("quizengine"))
    subprocess.run([exe, "users", "import", str(roster)], env=env, check=True, capture_output=True)
    port = free_port()
    proc = start_server(tmp, port, args.workers, env)
    times: dict[str, list[float]] = {"token": [], "start": [], "autosave": [], "submit": []}
    errors = 0
    try:
        for i in range(args.students):
            c = Client(port)
            st, data, dt = c.call("POST", "/api/v1/auth/token", {"username": f"s{i}", "password": f"password-{i:04d}"})
            times["token"].append(dt)
            c.headers["Authorization"] = f"Bearer {data['token']}"
            st, a, dt = c.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts")
            times["start"].append(dt)
            errors += st != 201
            for k, q in enumerate(a["questions"]):
                value = "0.5" if q["type"] == "numeric" and not q.get("shape") else None
                st, _, dt = c.call("PUT", f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}",
                                   {"response": value, "seq": k + 1})
                times["autosave"].append(dt)
                errors += st != 200
            st, _, dt = c.call("POST", f"/api/v1/attempts/{a['attempt_id']}/submit")
            times["submit"].append(dt)
            errors += st != 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{args.students} students, one request at a time, gunicorn {args.workers} gevent workers, SQLite WAL")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=20)
        print(f"  {name:<9} n={len(ts):<5} p50 {statistics.median(ts) * 1e3:7.1f} ms   p95 {q[18] * 1e3:7.1f} ms"
              f"   max {max(ts) * 1e3:7.1f} ms")
    print(f"  errors: {errors}")


if __name__ == "__main__":
    main()
