"""The start-of-quiz spike alone (issue 14 part 3, issue 13): every student starts module-04-prep
within the same second, against the real server, with a breakdown of where a start's time goes.

Run: PYTHONPATH=. .venv/bin/python benchmarks/spike_bench.py [--students 300] [--workers 2]
                                    [--rounds 1] [--within 1.0] [--tree PATH] [--py-spy DIR]
     (or benchmarks/start_bench.py --spike-only, which runs this with its defaults)

Setup, as benchmarks/load.py's before its spike: a fresh SQLite database with the shipped banks,
N x --rounds students (a cheap password hash: this measures starts, not logins), `quizengine warm
module-04-prep --attempts 2` (each student's two attempts rendered ahead, the deploy step), then
`quizengine serve --workers W` (gunicorn, gevent workers) and every student's token from
`POST /api/v1/auth/token` (32 clients at once; the workers' warmers then check each student's next
attempt, as after a class's logins). Each round then sends the starts of N fresh students, each at a
random moment within --within s, each on a new connection (`Connection: close`), from an asyncio
client in this process; a start's latency counts from its scheduled moment.

Per round it prints: p50/p95/max of the latency, for all and for the attempts that drew a
multi-part chain and >= 2 figures (issue 13's target); the client's own share (scheduled moment ->
the client's task running = its lag; -> connected; -> request written), the server's share
(request written -> first byte of the answer) and the response's transfer; the server's CPU per
start (utime + stime from /proc of the master, each worker and the drawing process, over the
round), the share of the machine's cores the server used while the round ran, the client's own
CPU, and the load average. The exit status is 0 when every round's p95 < 1 s.

--tree PATH measures another checkout (e.g. main) with the same client, for paired base-vs-branch
runs. --template FILE reuses a prepared database (the setup takes minutes under load).
--direct-tokens signs the tokens instead of logging in over HTTP. --nice -15 runs the client and
the server ahead of the machine's other jobs (a loaded shared machine otherwise measures its load:
the server gets its share of the cores, 1/load of them). --py-spy DIR records each worker with
`py-spy record --idle` (raw collapsed stacks) during round --py-spy-round (default the first).
--postgres serves from a throwaway PostgreSQL cluster (tests/pg.py) with the same students and
renderings (copied from the SQLite set-up) and prints PostgreSQL's CPU per start beside the server's
(the cluster's processes from /proc: on a 2-core machine it shares the cores with the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loadlib.proc import (Processes, children, free_port, loadavg, percentile, postgres_pids, venv_tool,  # noqa: E402
                          wait_until_serving)

QUIZ = "module-04-prep"
FAST_HASH = "argon2id:m=8,t=1,p=1"
TARGET_S = 1.0


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (the backup API)."""
    import sqlite3

    dst.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def prioritize(pid: int, nice: int) -> None:
    """Give a process's session this niceness. Under the kernel's autogroup scheduling (Debian's default)
    niceness counts only among the processes of one session, and every session gets an equal share,
    so the session's own niceness (/proc/PID/autogroup) is the one that puts it before other jobs."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError as e:
        print(f"  (the session's niceness was not set: {e})")


def stat_cpu(pid: int) -> float:
    """utime + stime of one process, in s (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cpu_split(pid: int) -> dict[int, float]:
    return {p: stat_cpu(p) for p in tree(pid)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:60]
    except OSError:
        return "?"


async def one_start(port: int, token: str, at: float, out: dict) -> None:
    """One start on a new connection, sent at loop time ``at``; timestamps into ``out``."""
    loop = asyncio.get_running_loop()
    delay = at - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    out["begin"] = loop.time()
    raw = (f"POST /api/v1/quizzes/{QUIZ}/attempts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
           f"Content-Length: 0\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        out["connected"] = loop.time()
        writer.write(raw)
        await writer.drain()
        out["sent"] = loop.time()
        first = await reader.read(1)
        out["first_byte"] = loop.time()
        rest = await reader.read()
        out["done"] = loop.time()
        writer.close()
        head, _, body = (first + rest).partition(b"\r\n\r\n")
        out["status"] = int(head.split(b" ", 2)[1])
        out["view"] = json.loads(body) if out["status"] == 201 else None
    except (OSError, ValueError, IndexError) as e:
        out["status"], out["error"] = 0, str(e)
        out.setdefault("done", loop.time())


async def spike(port: int, tokens: list[str], within: float, seed: int) -> list[dict]:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    t0 = loop.time() + 0.2
    records = [{"at": t0 + rng.random() * within} for _ in tokens]
    await asyncio.gather(*(one_start(port, tok, r["at"], r) for tok, r in zip(tokens, records)))
    return records


async def login_all(port: int, names: list[str], clients: int = 32) -> dict[str, str]:
    tokens: dict[str, str] = {}
    todo = list(names)

    async def client() -> None:
        while todo:
            name = todo.pop()
            body = json.dumps({"username": name, "password": "password-123"}).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                         f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            data = await reader.read()
            writer.close()
            head, _, payload = data.partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise SystemExit(f"error: login of {name} failed: {data[:300]!r}")
            tokens[name] = json.loads(payload)["token"]

    await asyncio.gather(*(client() for _ in range(clients)))
    return tokens


def ms(xs: list[float], p: float) -> str:
    return f"{percentile(xs, p) * 1e3:7.0f}" if xs else "    n/a"


def report(records: list[dict], cpu0: dict[int, float], cpu1: dict[int, float], wall: float, client_cpu: float,
           server_pid: int, pg0: dict[int, float] | None = None, pg1: dict[int, float] | None = None) -> float:
    ok = [r for r in records if r.get("status") == 201]
    errors = len(records) - len(ok)
    lat = [r["done"] - r["at"] for r in records]
    chain2 = [r["done"] - r["at"] for r in ok
              if any(q["type"] == "multipart" for q in r["view"]["questions"])
              and sum(len(q.get("figures") or []) for q in r["view"]["questions"]) >= 2]
    parts = {
        "client lag (scheduled -> task runs)": [r["begin"] - r["at"] for r in ok],
        "connect (-> connection accepted)": [r["connected"] - r["begin"] for r in ok],
        "write request": [r["sent"] - r["connected"] for r in ok],
        "server (request sent -> first byte)": [r["first_byte"] - r["sent"] for r in ok],
        "transfer (first byte -> last)": [r["done"] - r["first_byte"] for r in ok],
    }
    n = len(records)
    print(f"  latency from the scheduled moment   p50 {ms(lat, 50)} ms  p95 {ms(lat, 95)} ms  max {ms(lat, 100)} ms"
          f"  (n={n}, errors {errors})")
    print(f"  with a chain and >= 2 figures        p50 {ms(chain2, 50)} ms  p95 {ms(chain2, 95)} ms"
          f"  (n={len(chain2)}; issue 13)")
    for label, xs in parts.items():
        print(f"    {label:<36} p50 {ms(xs, 50)} ms  p95 {ms(xs, 95)} ms")
    total = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
    cores = len(os.sched_getaffinity(0))
    print(f"  server CPU {total:.2f} s = {total / max(n, 1) * 1e3:.1f} ms per start; {total / wall / cores:.0%} of "
          f"the {cores} cores over the {wall:.2f} s from the first scheduled start to the last answer")
    for p in sorted(cpu1):
        d = cpu1[p] - cpu0.get(p, 0.0)
        role = "master" if p == server_pid else cmdline(p)
        print(f"    pid {p:<7} {d * 1e3:8.0f} ms CPU  {role}")
    if pg1 is not None:
        pg = sum(v - (pg0 or {}).get(p, 0.0) for p, v in pg1.items())
        print(f"  PostgreSQL CPU {pg:.2f} s = {pg / max(n, 1) * 1e3:.1f} ms per start (its backends and other processes, "
              f"/proc); server + PostgreSQL {(total + pg) / max(n, 1) * 1e3:.1f} ms per start, "
              f"{(total + pg) / wall / cores:.0%} of the {cores} cores")
    print(f"  client CPU {client_cpu:.2f} s ({client_cpu / max(n, 1) * 1e3:.1f} ms per start); load average {loadavg()}")
    if errors:
        print("  errors:", [r.get("error") or r.get("status") for r in records if r.get("status") != 201][:5])
    return percentile(lat, 95) if errors == 0 else float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=300, help="students per spike (default 300)")
    ap.add_argument("--rounds", type=int, default=1, help="spikes, each by N fresh students (default 1)")
    ap.add_argument("--within", type=float, default=1.0, help="the starts are spread over this many s (default 1)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    ap.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout measured (default this one)")
    ap.add_argument("--settle", type=float, default=0.0, help="s to wait between the logins and the first spike")
    ap.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                    help="record each worker with py-spy (--idle, raw) during round --py-spy-round into DIR")
    ap.add_argument("--template", type=Path, default=None, metavar="FILE",
                    help="reuse a prepared database (FILE-<students x rounds>.sqlite3: made on the first run, copied after): "
                         "skips the minutes of `quizengine warm`; the tree measured must have the same schema and banks")
    ap.add_argument("--py-spy-round", type=int, default=1, help="the round --py-spy records (default 1)")
    ap.add_argument("--direct-tokens", action="store_true",
                    help="sign the tokens in a helper process instead of logging in over HTTP (faster; the "
                         "workers' warmers are then not woken by logins before the spike)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run this client and the server at this niceness (e.g. -15, needs the privilege): on a "
                         "machine loaded by other jobs, the spike then gets the CPU as on an idle one")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (database, server log)")
    ap.add_argument("--postgres", action="store_true",
                    help="serve from a throwaway PostgreSQL cluster (tests/pg.py; fsync off) and print its CPU per "
                         "start too; the renderings are copied from the SQLite set-up (--template's, when given)")
    a = ap.parse_args()
    if a.postgres:
        sys.path.insert(0, str(HERE.parent))
        from tests.pg import throwaway_postgres

        with throwaway_postgres() as pg_url:
            return run(a, pg_url)
    return run(a, None)


def run(a: argparse.Namespace, pg_url: str | None) -> int:

    root = a.tree.resolve()
    if a.nice:  # this client before the machine's other jobs (the server too, once started)
        prioritize(os.getpid(), a.nice)
    tmp = Path(tempfile.mkdtemp(prefix="spike-bench-"))
    url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(root), "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_DATABASE_URL": url,
           "QUIZENGINE_SECRET_KEY": "spike-bench", "QUIZENGINE_BANKS": str(root / "banks"),
           "QUIZENGINE_LOGINS_PER_ADDRESS": "0", "QUIZENGINE_LOGINS_PER_SECOND": "0"}
    exe = venv_tool("quizengine")
    procs = Processes()
    names = [f"s{r}x{i}" for r in range(a.rounds) for i in range(a.students)]
    print(f"tree {root} ({subprocess.run(['git', '-C', str(root), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}); "
          f"{a.students} students x {a.rounds} rounds; load average {loadavg()}", flush=True)
    try:
        t0 = time.monotonic()
        db_file = tmp / "quizengine.sqlite3"
        template = a.template and a.template.with_name(f"{a.template.stem}-{len(names)}{a.template.suffix}")
        if template and template.exists():
            copy_db(template, db_file)
            print(f"  database copied from {template} (students and their attempts rendered ahead)", flush=True)
        else:
            for cmd in (["db", "upgrade"], ["load-banks"]):
                subprocess.run([exe, *cmd], env=env, check=True, capture_output=True)
            roster = "".join(f"{n}\n" for n in names)
            subprocess.run([sys.executable, "-c", ADD_USERS, FAST_HASH], input=roster, env=env, check=True, text=True)
            r = subprocess.run([exe, "warm", QUIZ, "--attempts", "2"], env=env, capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"error: quizengine warm failed:\n{r.stdout}{r.stderr}")
            print(f"  database, students and `quizengine warm {QUIZ} --attempts 2` in {time.monotonic() - t0:.0f} s",
                  flush=True)
            if template:
                copy_db(db_file, template)
        if pg_url:  # the same students (same ids), banks and renderings on PostgreSQL; warm then finds them cached
            from loadlib.setup import copy_renderings

            t0 = time.monotonic()
            env["QUIZENGINE_DATABASE_URL"] = pg_url
            for cmd in (["db", "upgrade"], ["load-banks"]):
                subprocess.run([exe, *cmd], env=env, check=True, capture_output=True)
            subprocess.run([sys.executable, "-c", ADD_USERS, FAST_HASH], input="".join(f"{n}\n" for n in names),
                           env=env, check=True, text=True)
            copied, _ = copy_renderings(db_file, pg_url)
            r = subprocess.run([exe, "warm", QUIZ, "--attempts", "2"], env=env, capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"error: quizengine warm failed:\n{r.stdout}{r.stderr}")
            print(f"  PostgreSQL: {copied} renderings copied; {r.stdout.strip().splitlines()[-1]} "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
        port = free_port()
        log = tmp / "server.log"
        server = procs.start([exe, "serve", "--port", str(port), "--workers", str(a.workers)], log, env=env)
        if a.nice:
            prioritize(server.pid, a.nice)  # its workers, forked later, inherit it
        wait_until_serving(port, server, log, a.workers)
        t0 = time.monotonic()
        if a.direct_tokens:  # signed here as the server signs them: no login, so no warmer woken either
            r = subprocess.run([sys.executable, "-c", TOKENS], input="\n".join(names), env=env, capture_output=True,
                               text=True, check=True)
            tokens = dict(line.split(" ", 1) for line in r.stdout.splitlines())
            print(f"  {len(tokens)} tokens signed directly (no login)", flush=True)
        else:
            tokens = asyncio.run(login_all(port, names))
            print(f"  {len(tokens)} logins in {time.monotonic() - t0:.1f} s (32 clients); load average {loadavg()}",
                  flush=True)
        if a.settle:
            time.sleep(a.settle)
        worst = 0.0
        for rnd in range(a.rounds):
            group = [tokens[n] for n in names[rnd * a.students:(rnd + 1) * a.students]]
            spies = []
            if a.py_spy is not None and rnd == a.py_spy_round - 1:
                a.py_spy.mkdir(parents=True, exist_ok=True)
                for p in children(server.pid):
                    spies.append(subprocess.Popen(
                        [venv_tool("py-spy"), "record", "--idle", "--nonblocking", "-r", "250", "-f", "raw", "-d",
                         str(int(a.within + 6)), "-p", str(p), "-o", str(a.py_spy / f"worker-{p}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(1.0)  # py-spy attached
            print(f"round {rnd + 1}: {len(group)} starts within {a.within:g} s (load average {loadavg()})", flush=True)
            pg0 = {p: stat_cpu(p) for p in postgres_pids(pg_url)} if pg_url else None
            cpu0, c0 = cpu_split(server.pid), time.process_time()
            records = asyncio.run(spike(port, group, a.within, seed=14 + rnd))
            cpu1, c1 = cpu_split(server.pid), time.process_time()
            pg1 = {p: stat_cpu(p) for p in postgres_pids(pg_url)} if pg_url else None
            wall = max(r["done"] for r in records) - min(r["at"] for r in records)
            worst = max(worst, report(records, cpu0, cpu1, wall, c1 - c0, server.pid, pg0, pg1))
            for s in spies:
                s.wait()
        print(f"spike p95 {'< 1 s: met' if worst < TARGET_S else '>= 1 s: missed'} ({worst:.2f} s, worst round)")
        return 0 if worst < TARGET_S else 1
    finally:
        procs.stop_all()
        if a.keep:
            print(f"(temp folder kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


ADD_USERS = """
import sys
from quizengine import create_app
from quizengine.services import accounts
app = create_app()
with app.extensions["quizengine.db"].write() as s:
    for line in sys.stdin:
        name = line.strip()
        accounts.add_user(s, name, "student", "password-123", method=sys.argv[1])
"""

TOKENS = """
import sys
from sqlalchemy import select
from quizengine import create_app
from quizengine.models import User
from quizengine.services.logins import issue_token
app = create_app()
names = sys.stdin.read().split()
with app.extensions["quizengine.db"].read() as s:
    for u in s.scalars(select(User).where(User.username.in_(names))):
        print(u.username, issue_token(app.config["SECRET_KEY"], u))
"""

if __name__ == "__main__":
    raise SystemExit(main())
