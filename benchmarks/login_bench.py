"""A class logging in at once: N logins (POST /api/v1/auth/token) from C concurrent clients against
the real server (`quizengine serve`, gunicorn with gevent workers, SQLite WAL in a temp folder).

It imports N students with `quizengine users import` (Argon2id), then gives each the PBKDF2 hash
earlier versions stored (600,000 iterations, computed here on every core), and starts the server
with QUIZENGINE_LOGINS_PER_ADDRESS raised as README says for a class behind one address (every
client here is 127.0.0.1) and the per-worker rate left at its default. Two phases, each a closed
loop (each client sends its next login as soon as the last is answered):
  pbkdf2   every student's first login: a PBKDF2 check, then the new Argon2id hash and its write;
  argon2   the same logins again, now against the Argon2id hashes.
For each it prints p50/p95/max (ms), errors by status (a 429 counts as one: it is not retried),
the server's CPU per login (over the phase, and until the server went quiet after it: the workers'
warmers may still be checking the students who logged in) and the load average; the latencies of the
first C answers (sent all at once) apart from the rest; how far the answers came out of the order
the logins were sent (each login's count of logins sent after it but answered before it: 0 for a
first-come-first-served server); and per worker its CPU (system time, the event loop's thread, the
other threads: the hashing lane) and, where `perf` can count the accept4 syscalls (root), the
connections it accepted. Beforehand it measures, in this process, the
CPU seconds (thread time) of one check with each scheme.

With --warm, `quizengine warm module-04-prep` renders every student's first attempt before the
server starts, as the deploy step and benchmarks/load.py do: each login's background warmer then
finds everything rendered (without it, the warmer renders each student's attempt after the login,
60-140 ms of CPU each, in the same workers). --postgres runs it on a throwaway PostgreSQL cluster
(tests/pg.py). --profile FILE records the argon2id phase with py-spy (every worker, native frames
left out) into FILE as collapsed stacks (one per line, with its count); --spy-options adds py-spy
options (e.g. --spy-options=--idle to sample waiting threads too).

    python benchmarks/login_bench.py [--students 300] [--clients 32] [--workers 2] [--argon2-only]
                                     [--warm] [--postgres] [--profile FILE] [--spy-options=OPTS]
                                     [--instance DIR] [--code CHECKOUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import create_engine, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from quizengine import passwords  # noqa: E402
from quizengine.constants import PASSWORD_METHOD  # noqa: E402
from loadlib.proc import wait_until_serving  # noqa: E402

PBKDF2 = "pbkdf2:sha256:600000"  # what earlier versions stored
QUIZ = "module-04-prep"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], p: float) -> float:
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cpu_per_check(pwhash: str, password: str, n: int) -> float:
    """The least thread CPU time (s) of one verification over ``n`` tries (less noisy than the mean)."""
    best = float("inf")
    for _ in range(n):
        t0 = time.thread_time()
        assert passwords.verify_password(pwhash, password)
        best = min(best, time.thread_time() - t0)
    return best


def group(pgid: int) -> list[str]:
    """The processes of the server's process group (gunicorn's master and workers)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                out.append(pid)
        except (OSError, IndexError, ValueError):
            pass
    return out


def server_cpu(pgid: int) -> float:
    """utime + stime (s) of every process of the server."""
    hz, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in group(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / hz


def server_rss_mib(pgid: int) -> float:
    """The summed RSS of the server's processes (MiB)."""
    total = 0
    for pid in group(pgid):
        try:
            total += int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1024


async def post_token(port: int, username: str, password: str) -> int:
    body = json.dumps({"username": username, "password": password}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return int(data.split(b" ", 2)[1])


async def closed_loop(port: int, logins: list[tuple[str, str]], clients: int, timeout: float):
    """Every login once, ``clients`` at a time; (latencies in s, {status: count} of the failures)."""
    queue: asyncio.Queue = asyncio.Queue()
    for x in logins:
        queue.put_nowait(x)
    lat: list[float] = []
    errors: dict[str, int] = {}
    sent: list[int] = []  # the send order of each answer, in the order answered

    async def client() -> None:
        while not queue.empty():
            username, password = queue.get_nowait()
            k = next(order)
            t0 = time.perf_counter()
            try:
                status = await asyncio.wait_for(post_token(port, username, password), timeout)
            except asyncio.TimeoutError:
                status = "timeout"
            except (OSError, ValueError, IndexError) as e:
                status = type(e).__name__
            lat.append(time.perf_counter() - t0)
            sent.append(k)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1

    order = iter(range(len(logins)))
    await asyncio.gather(*(client() for _ in range(clients)))
    overtaken = [sum(1 for j in sent[:i] if j > k) for i, k in enumerate(sent)]  # answered before it, sent after it
    return lat, errors, overtaken


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a login counts as timed out")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (database, server log)")
    ap.add_argument("--argon2-only", action="store_true",
                    help="skip the PBKDF2 phase (and the minutes its hashes take to compute here)")
    ap.add_argument("--warm", action="store_true",
                    help="render every student's first attempt (quizengine warm) before serving, as load.py does")
    ap.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster (tests/pg.py)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="record the argon2id phase's workers with py-spy into this file (collapsed stacks)")
    ap.add_argument("--spy-options", default="",
                    help="more py-spy record options for --profile, e.g. '--gil', '--idle', '--native'")
    ap.add_argument("--instance", type=Path, default=None,
                    help="the instance folder, kept: a later run with the same folder (--argon2-only, SQLite) "
                         "reuses its students and their rendered attempts")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="the checkout whose quizengine the server runs (e.g. an older one, for a before/after)")
    args = ap.parse_args()
    n = args.students

    print(f"load average {loadavg()} ({os.cpu_count()} CPUs); password method {PASSWORD_METHOD}")
    argon = passwords.hash_password("password-0000")
    old = generate_password_hash("password-0000", PBKDF2)
    print(f"CPU per check, in this process (least of several): Argon2id {cpu_per_check(argon, 'password-0000', 20) * 1e3:.1f} ms, "
          f"PBKDF2 600k {cpu_per_check(old, 'password-0000', 3) * 1e3:.1f} ms")

    reuse = args.instance is not None and (args.instance / "quizengine.sqlite3").exists()
    if reuse and (args.postgres or not args.argon2_only):
        raise SystemExit("error: --instance with a database in it runs only --argon2-only on SQLite")
    tmp = args.instance.resolve() if args.instance else Path(tempfile.mkdtemp(prefix="qe-login-"))
    tmp.mkdir(parents=True, exist_ok=True)
    stack = ExitStack()
    if args.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.pg import throwaway_postgres

        url = stack.enter_context(throwaway_postgres())
    else:
        url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
    engine = create_engine(url)
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "login-bench",
           "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": url,
           # README: a class behind one address needs QUIZENGINE_LOGINS_PER_ADDRESS of at least its
           # logins per minute; both phases fall within a minute here
           "QUIZENGINE_LOGINS_PER_ADDRESS": str(2 * n + 60)}
    env.pop("QUIZENGINE_LOGINS_PER_SECOND", None)  # the per-worker rate at its default
    exe = str(Path(sys.executable).with_name("quizengine"))
    students = [(f"s{i}", f"password-{i:04d}") for i in range(n)]
    roster = tmp / "roster.csv"
    roster.write_text("username,full_name,student_id,email,password\n" + "".join(
        f"{u},Student {i},{100000 + i},{u}@example.org,{pw}\n" for i, (u, pw) in enumerate(students)))
    server = None
    try:
        print(f"database: {'a throwaway PostgreSQL cluster' if args.postgres else 'SQLite (WAL)'}")
        t0 = time.monotonic()
        if reuse:
            print(f"reusing the students and rendered attempts of {tmp}")
        else:
            r = subprocess.run([exe, "users", "import", str(roster)], env=env, capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"error: users import failed:\n{r.stdout}{r.stderr}")
            print(f"imported {n} students (Argon2id) in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        phases = ["argon2id"] if args.argon2_only else ["pbkdf2 (first login, rehash)", "argon2id"]
        if not args.argon2_only:
            with ProcessPoolExecutor(os.cpu_count()) as pool:
                olds = list(pool.map(generate_password_hash, [pw for _, pw in students], [PBKDF2] * n, chunksize=8))
            with engine.begin() as con:
                con.execute(text('UPDATE "user" SET password_hash = :h WHERE username = :u'),
                            [{"h": h, "u": u} for h, (u, _) in zip(olds, students)])
            print(f"gave them PBKDF2 hashes ({PBKDF2}) in {time.monotonic() - t0:.1f} s")
        if args.warm and not reuse:
            t0 = time.monotonic()
            for cmd in (["load-banks"], ["warm", QUIZ]):
                r = subprocess.run([exe, *cmd], env=env, capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(f"error: quizengine {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
            print(f"quizengine warm {QUIZ}: every student's first attempt rendered ahead in {time.monotonic() - t0:.1f} s")

        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        port_n = port.getsockname()[1]
        port.close()
        log = tmp / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen([exe, "serve", "--port", str(port_n), "--workers", str(args.workers)], env=env,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_serving(port_n, server, log, args.workers)
        print(f"server: quizengine serve from {args.code}, {args.workers} gevent workers; {n} logins from {args.clients} clients "
              "(closed loop), QUIZENGINE_LOGINS_PER_ADDRESS=" + env["QUIZENGINE_LOGINS_PER_ADDRESS"])
        print(f"  server RSS sum before the logins: {server_rss_mib(server.pid):.0f} MiB")
        for phase in phases:
            spies = spy(server.pid, args.profile, tmp, args.spy_options.split()) \
                if args.profile and phase == "argon2id" else []
            workers = [pid for pid in group(server.pid) if int(pid) != server.pid]
            counters = accept_counters(workers)
            la0, c0, w0 = loadavg(), server_cpu(server.pid), time.monotonic()
            wc0 = {pid: proc_cpu(pid) for pid in workers}
            lat, errors, overtaken = asyncio.run(closed_loop(port_n, students, args.clients, args.timeout))
            wall, cpu = time.monotonic() - w0, server_cpu(server.pid) - c0
            wc = {pid: [b - a for a, b in zip(wc0[pid], proc_cpu(pid))] for pid in workers}
            settled = settle(server.pid) - c0  # with what the workers still did after the last answer (the warmers)
            stop_spies(spies, args.profile)
            accepted = stop_counters(counters)
            ms = [x * 1e3 for x in lat]
            rest = ms[args.clients:]  # answered after the first C (which all arrived at once)
            err = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "0"
            print(f"  {phase:<30} p50 {percentile(ms, 50):7.0f}  p95 {percentile(ms, 95):7.0f}  max {max(ms):7.0f} ms  "
                  f"errors {err}; {wall:.1f} s, {n / wall:.0f} logins/s, server CPU {cpu / n * 1e3:.0f} ms/login "
                  f"({settled / n * 1e3:.0f} with the work left after the last answer, until the server went quiet); "
                  f"load average {la0} -> {loadavg()}")
            with engine.connect() as con:
                argon2id = con.execute(text("""SELECT count(*) FROM "user" WHERE password_hash LIKE '$argon2id$%'""")).scalar()
            if rest:
                print(f"  {'':<30} in the order answered: the first {args.clients} p50 {percentile(ms[:args.clients], 50):.0f} "
                      f"max {max(ms[:args.clients]):.0f} ms; the rest p50 {percentile(rest, 50):.0f} p95 {percentile(rest, 95):.0f} "
                      f"max {max(rest):.0f} ms; the last {args.clients} p50 {percentile(ms[-args.clients:], 50):.0f} ms")
            print(f"  {'':<30} first come, first served? each login was overtaken by (answered before it, though sent "
                  f"after it) mean {sum(overtaken) / len(overtaken):.1f}, p95 {percentile(overtaken, 95):.0f}, "
                  f"max {max(overtaken)} logins")
            print(f"  {'':<30} per worker: " + "; ".join(
                f"pid {pid}: {accepted.get(pid, '?')} connections accepted, CPU {wc[pid][0]:.1f} s (system {wc[pid][1]:.1f} s; "
                f"event loop's thread {wc[pid][2]:.1f} s, other threads {wc[pid][0] - wc[pid][2]:.1f} s)" for pid in workers))
            print(f"  {'':<30} accounts with an Argon2id hash: {argon2id} of {n}; "
                  f"server RSS sum {server_rss_mib(server.pid):.0f} MiB")
    finally:
        if server is not None:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
        engine.dispose()
        stack.close()
        if args.keep or args.instance:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def settle(pgid: int, quiet: float = 0.02, limit: float = 60.0) -> float:
    """The server's CPU seconds once it has gone quiet (under ``quiet`` s of CPU in a second), at most
    ``limit`` s from now: what its workers did after the last answer counts too."""
    deadline, last = time.monotonic() + limit, server_cpu(pgid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        cpu = server_cpu(pgid)
        if cpu - last < quiet:
            return cpu
        last = cpu
    return last


def proc_cpu(pid: str) -> tuple[float, float, float]:
    """(utime + stime, of it stime, of it the main thread's utime + stime) in s of one process."""
    hz = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        main = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / hz, int(fields[12]) / hz, (int(main[11]) + int(main[12])) / hz
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0, 0.0


def accept_counters(workers: list[str]) -> list[tuple[str, subprocess.Popen, Path]]:
    """`perf stat` counting each worker's accepted connections (accept4 returning a socket), where
    perf and its syscall tracepoints are available (root); [] otherwise."""
    perf = shutil.which("perf")
    if perf is None:
        return []
    out = []
    for pid in workers:
        path = Path(tempfile.mkstemp(prefix=f"accepts-{pid}-")[1])
        out.append((pid, subprocess.Popen([perf, "stat", "-x,", "-o", str(path), "-e", "syscalls:sys_exit_accept4",
                                           "--filter", "ret >= 0", "-p", pid],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))
    time.sleep(0.5)  # perf attaches
    return out


def stop_counters(counters: list[tuple[str, subprocess.Popen, Path]]) -> dict[str, int | str]:
    """Each worker's count of accepted connections ('?' where perf counted nothing readable)."""
    counts: dict[str, int | str] = {}
    for pid, p, path in counters:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        counts[pid] = "?"
        for line in path.read_text().splitlines():
            value = line.split(",")[0]
            if "accept4" in line and value.isdigit():
                counts[pid] = int(value)
        path.unlink(missing_ok=True)
    return counts


def spy(pgid: int, out: Path, tmp: Path, options: list[str] | None = None) -> list[tuple[subprocess.Popen, Path]]:
    """py-spy recording each worker of the server (the processes of its group but the master)."""
    exe = Path(sys.executable).with_name("py-spy")
    spies = []
    for pid in group(pgid):
        if int(pid) == pgid:
            continue
        raw = tmp / f"spy-{pid}.txt"
        spies.append((subprocess.Popen([str(exe), "record", "--pid", pid, "--format", "raw", "--rate", "250",
                                        "--output", str(raw), "--threads", *(options or [])], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL), raw))
    time.sleep(1.0)  # py-spy attaches
    return spies


def stop_spies(spies: list[tuple[subprocess.Popen, Path]], out: Path | None) -> None:
    """Stop the recorders and write their collapsed stacks together into ``out``."""
    if not spies or out is None:
        return
    lines: list[str] = []
    for p, raw in spies:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        if raw.exists():
            lines += raw.read_text().splitlines()
    out.write_text("\n".join(lines) + "\n")
    print(f"  py-spy: {len(lines)} collapsed stacks of {len(spies)} workers in {out}")


if __name__ == "__main__":
    sys.exit(main())
