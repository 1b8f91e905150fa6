"""Class-size load benchmark: a whole class against the real server (`quizengine serve`, gunicorn).

Run:  .venv/bin/python benchmarks/load.py [--students 300] [--workers 2] [--quick] [--json FILE]
      .venv/bin/python benchmarks/load.py --both                     # SQLite, then a throwaway PostgreSQL
      .venv/bin/python benchmarks/load.py --postgres                 # only a throwaway PostgreSQL cluster
      .venv/bin/python benchmarks/load.py --database-url postgresql+psycopg://u:pw@127.0.0.1/db
                                         # EMPTIES that database first (drops every table in it)

Set-up (loadlib/setup.py; each step's wall and CPU time printed): a fresh database (SQLite WAL in a
temp folder, or PostgreSQL) with the banks (`quizengine load-banks`); N students imported with the
server's password hash (and, for the moonshot, its extra students with a cheap one and tokens issued
directly), in one process, so that a student has the same id on every database of a run; then the
deploy step `quizengine warm module-04-prep` for what the phases start (both attempts of each of the
N students, one of each extra student), one process per core (--no-warm skips it). With --both the
PostgreSQL half first copies the SQLite half's renderings of the item versions the two databases
have alike (a rendering depends only on the item version and the seed), and warm renders what is
left. Then it starts `quizengine serve --port P --workers W` (gunicorn, gevent workers) and, from
this process (asyncio, all traffic from 127.0.0.1), simulates the class, in this order (each phase's
run time printed as it ends):

  logins   every student asks for a token (POST /api/v1/auth/token), 32 clients at a time (closed
           loop). All traffic comes from one address, so the per-address login limit is raised
           (QUIZENGINE_LOGINS_PER_ADDRESS, --logins-per-address) as for a class behind one NAT
           address; the per-worker rate (QUIZENGINE_LOGINS_PER_SECOND) keeps the server's default
           unless --logins-per-second, and a 429 is retried after its Retry-After (the latency counts
           until the token); the per-(username, address) failure throttle is untouched;
  spike    every student starts an attempt of module-04-prep within the same second; the run prints
           how many attempts drew a multi-part chain and how many figures (issue 13);
  paced    open loop: each student autosaves its 20 answers (PUT .../responses/qK, a valid response
           for the question's type, increasing seq) as a Poisson process, one save every
           --save-interval s on average (300 students -> 100 saves/s); latency from the scheduled
           send time (no coordinated omission);
  submits  every attempt is submitted, 32 clients at a time; then every stored answer is checked
           against the last acknowledged one (GET /api/v1/attempts/{id});
  starts   every student starts a second attempt, 32 clients at a time;
  saturate wrk (Debian's /usr/bin/wrk) with a generated Lua script cycles through the students'
           autosaves on their second attempts (each wrk thread owns a disjoint set of (attempt,
           question) slots; seq only grows per slot; the script records the highest acknowledged
           seq per slot), against the server and against two BASELINES: a minimal Flask app doing
           one insert through SQLAlchemy per request under gunicorn with the same worker count, on
           the same kind of database, once at the app's durability setting (SQLite: its PRAGMA
           synchronous; PostgreSQL: its synchronous_commit) and once relaxed (SQLite NORMAL;
           PostgreSQL synchronous_commit=off). --rounds alternating rounds; the best of each counts.
           The server's CPU (utime + stime of master and workers, /proc/PID/stat) during its best
           round divided by the requests answered gives its CPU per autosave;
  2 hosts  a second `quizengine serve` on another port and the same database (SQLite: the same
           file; PostgreSQL: the same cluster); two wrk processes, one per instance, at once;
  verify   every slot's stored seq is at least its highest acknowledged one;
  moonshot (full runs, or --moonshot) --moon-students students (the class on its second attempts
           plus more students imported with a cheap password hash and given tokens directly, who
           start their attempt (rendered ahead) just before: the moonshot measures autosaves, not
           logins nor starts) each save once per --moon-interval s on average
           for --moon-duration s on keep-alive connections; p95, errors, lost, and the client's
           own lag (scheduled time -> request begun) so that a client limit is not read as the
           server's.

The server's memory is the sum of the RSS and of the PSS (/proc/PID/smaps_rollup) of the gunicorn
master and its workers, sampled every 0.2 s for the whole run: peak and end. A summary table lists
every figure with its target and PASS/MISS per database (--json FILE writes it too); the exit
status is 0 when every target passes (the moonshot is reported, not counted), 1 otherwise, 2 when
the benchmark itself could not run. Timings are indicative on a shared machine: the load average
is printed before and after each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadlib import setup, summary  # noqa: E402
from loadlib.client import Student  # noqa: E402
from loadlib.phases import Bench  # noqa: E402
from loadlib.proc import (MemorySampler, Processes, free_port, hash_probe, loadavg, log, machine, steal_share,  # noqa: E402
                          steal_ticks, tail, venv_tool, wait_for_port)
from loadlib.report import details, figures  # noqa: E402
from loadlib.wrk import BASELINE_APP, WRK, WrkResult, finish_wrk, merge, run_wrk, start_wrk, write_lua  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# ---------------------------------------------------------------- the database

def prepare_postgres(url: str) -> str:
    """Empty the database (drop every table of its search path) and return its version string."""
    from sqlalchemy import MetaData, create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            version = conn.execute(text("show server_version")).scalar()
            md = MetaData()
            md.reflect(conn)
            if md.tables:
                log(f"emptying the database: dropping {len(md.tables)} tables")
            md.drop_all(conn)
    finally:
        engine.dispose()
    return f"PostgreSQL {version}"


def app_durability(url: str) -> str:
    """The app's own setting: SQLite's PRAGMA synchronous on a connection of quizengine.db, or
    PostgreSQL's synchronous_commit."""
    sys.path.insert(0, str(ROOT))
    from quizengine.db import Database

    db = Database(url)
    try:
        with db.engine.connect() as c:
            if url.startswith("sqlite"):
                v = c.exec_driver_sql("PRAGMA synchronous").scalar()
                return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(v, str(v))
            return str(c.exec_driver_sql("SHOW synchronous_commit").scalar())
    finally:
        db.dispose()


def redacted(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# ---------------------------------------------------------------- one run (one database)

def run_one(args: argparse.Namespace, kind: str, procs: Processes, reuse: Path | None = None,
            keep_for: Path | None = None) -> list[summary.Figure]:
    """The whole benchmark on one database; prints its details and returns its figures. ``reuse``: a
    copy of an earlier database's set-up to take renderings from; ``keep_for``: where to keep this one's."""
    tmp = Path(tempfile.mkdtemp(prefix="qe-load-"))
    keep = args.keep
    stack = ExitStack()
    mem: MemorySampler | None = None
    ok = False
    started = time.monotonic()
    load_before = loadavg()
    try:
        url = args.database_url
        if kind == "postgresql" and not url:
            sys.path.insert(0, str(ROOT))
            from tests.pg import throwaway_postgres

            log("starting a throwaway PostgreSQL cluster")
            url = stack.enter_context(throwaway_postgres())
        if url:
            db_desc = prepare_postgres(url) + f" ({redacted(url)})" + (", throwaway cluster, fsync=off" if not args.database_url else "")
        else:
            url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
            db_desc = f"SQLite {sqlite3.sqlite_version} (WAL, file in {tmp})"
        env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "load-benchmark",
               "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": url,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "QUIZENGINE_LOGINS_PER_ADDRESS": str(args.logins_per_address)}
        if args.logins_per_second is not None:
            env["QUIZENGINE_LOGINS_PER_SECOND"] = str(args.logins_per_second)
        n = args.students
        students = [Student(i, f"s{i}", f"password-{i:04d}") for i in range(n)]
        exe = venv_tool("quizengine")
        extras: list[Student] = []
        if args.moonshot and args.moon_students > n:
            extras = [Student(i, f"m{i}", f"moonshot-{i:05d}") for i in range(n, args.moon_students)]
        log(f"[{kind}] set-up: {n} students" + (f" and {len(extras)} more for the moonshot" if extras else "")
            + ("; the attempts the phases start rendered ahead (quizengine warm)" if args.warm else ""))
        prepared = setup.prepare(kind, env, exe, students, extras, args.warm, reuse)
        if keep_for is not None and args.warm and kind == "sqlite":
            with setup.Step(prepared, kind, "kept for the next database (SQLite backup)"):
                setup.keep_for_reuse(url, keep_for)
        tokens = prepared.tokens
        log(f"[{kind}] set-up done in {prepared.wall:.1f} s")
        durability = app_durability(url)
        relaxed = "NORMAL" if kind == "sqlite" else "off"
        db_desc += f"; the app's {'synchronous' if kind == 'sqlite' else 'synchronous_commit'}={durability}"

        server_log = tmp / "server.log"
        port, server = procs.serve(exe, args.workers, server_log, env)
        mem = MemorySampler(server.pid)
        mem.start()
        log(f"server: quizengine serve on 127.0.0.1:{port}, {args.workers} gevent workers (pid {server.pid}); "
            f"per-address login limit raised to {args.logins_per_address}/min (QUIZENGINE_LOGINS_PER_ADDRESS) as "
            "for a class behind one NAT address, per-worker login rate "
            + (f"{args.logins_per_second}/s (--logins-per-second)" if args.logins_per_second is not None
               else "at the server's default (QUIZENGINE_LOGINS_PER_SECOND)")
            + ", failure throttle per (username, address) untouched")

        bench = Bench(args, port, students)

        def timed(name: str, t0: float) -> None:
            log(f"[{kind}] {name}: {time.monotonic() - t0:.1f} s ({time.monotonic() - started:.0f} s into this database)")

        async def the_class() -> None:
            for name, phase in (("logins", bench.logins), ("spike", bench.spike), ("paced", bench.paced),
                                ("submits", bench.submits)):
                t0 = time.monotonic()
                await phase(mem)
                timed(name, t0)
            t0 = time.monotonic()
            await bench.verify(mem, "paced", [(s, s.attempt["attempt_id"]) for s in students if s.attempt], "submitted")
            timed("verify", t0)
            t0 = time.monotonic()
            await bench.starts(mem)
            timed("starts", t0)

        asyncio.run(the_class())
        t0 = time.monotonic()
        sat = saturation(args, bench, procs, mem, tmp, port, url, kind, durability, relaxed, exe, env)
        timed("saturation and 2 instances", t0)

        if args.moonshot:
            t0 = time.monotonic()
            asyncio.run(bench.moonshot(mem, extras, tokens))
            timed("moonshot (its extra students' starts, the saves, the check)", t0)
        mem.enter("end")
        mem.stop()

        log_text = server_log.read_text(errors="replace")
        tracebacks = len(re.findall(r"^unhandled error on ", log_text, re.M)) or log_text.count("Traceback (most recent")
        status_5xx = len(re.findall(r'" 5\d\d ', log_text))
        run = {"kind": kind, "db": db_desc, "durability": durability, "relaxed": relaxed, "tracebacks": tracebacks,
               "status_5xx": status_5xx, "server_log": server_log, "wall": time.monotonic() - started,
               "load_before": load_before, "load_after": loadavg(), "setup": prepared.steps, **sat}
        details(args, bench, mem, run)
        figs = figures(args, bench, mem, run)
        ok = summary.all_passed(figs)
        return figs
    finally:
        if mem is not None:
            mem.stop()
        procs.stop_all()
        stack.close()
        if keep or not ok:
            print(f"(temp folder kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def saturation(args: argparse.Namespace, bench: Bench, procs: Processes, mem: MemorySampler, tmp: Path, port: int,
               url: str, kind: str, durability: str, relaxed: str, exe: str, env: dict[str, str]) -> dict[str, Any]:
    """wrk against the server and the two baselines (rounds), then against two server instances."""
    slots = bench.saturation_slots()
    if not slots:
        raise SystemExit("error: no student has an open second attempt; nothing to saturate")
    lua = tmp / "autosave.lua"
    write_lua(lua, slots, args.wrk_threads)
    (tmp / "baseline_app.py").write_text(BASELINE_APP)
    baselines: dict[str, int] = {}
    for name, sync in (("app", durability), ("relaxed", relaxed)):
        bport = free_port()
        blog = tmp / f"baseline-{name}.log"
        burl = f"sqlite:///{tmp / f'baseline-{name}.sqlite3'}" if kind == "sqlite" else url
        benv = {**os.environ, "BASELINE_URL": burl, "BASELINE_SYNC": sync, "PYTHONPATH": str(tmp)}
        b = procs.start([venv_tool("gunicorn"), "--bind", f"127.0.0.1:{bport}", "--workers", str(args.workers),
                         "--worker-class", "sync", "--timeout", "60", "--preload", "--access-logfile", "-",
                         "--chdir", str(tmp), "baseline_app:app"], blog, env=benv)
        wait_for_port(bport, b, blog)
        baselines[name] = bport
    what = "synchronous" if kind == "sqlite" else "synchronous_commit"
    log(f"saturation: wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.duration}s over {len(slots)} "
        f"(attempt, question) slots; {args.rounds} round(s) of quizengine, baseline at {what}={durability} "
        f"(the app's), baseline at {what}={relaxed} (Flask + SQLAlchemy, one insert per request, gunicorn "
        f"{args.workers} sync workers); the best round of each counts")
    sats: list[WrkResult] = []
    cpu: list[float] = []  # server CPU s per round
    bases: dict[str, list[WrkResult]] = {"app": [], "relaxed": []}
    for r in range(args.rounds):
        mem.enter(f"saturation #{r + 1}")
        c0 = mem.cpu_seconds()
        res = run_wrk(port, lua, args.wrk_threads, args.wrk_connections, args.duration, procs,
                      tmp / f"wrk-server-{r + 1}.log", seq_base=r * 10**8)
        cpu.append(mem.cpu_seconds() - c0)
        sats.append(res)
        answered = sum(res.statuses.values())
        log(f"  quizengine #{r + 1}: {res.rps:.0f} requests/s, {res.requests} requests, statuses {res.statuses}"
            + (f", socket errors {res.socket_errors}" if res.socket_errors else "")
            + f"; server CPU {cpu[-1]:.1f} s = {1e3 * cpu[-1] / max(answered, 1):.2f} ms per request; {res.latency_line}")
        for name, sync in (("app", durability), ("relaxed", relaxed)):
            mem.enter(f"baseline {what}={sync} #{r + 1}")
            res = run_wrk(baselines[name], lua, args.wrk_threads, args.wrk_connections, args.duration, procs,
                          tmp / f"wrk-baseline-{name}-{r + 1}.log", seq_base=r * 10**8)
            bases[name].append(res)
            log(f"  baseline {what}={sync:<6} #{r + 1}: {res.rps:.0f} requests/s, {res.requests} requests"
                + (f", errors {res.n_errors}" if res.n_errors else "") + f"; {res.latency_line}")
    # (the baselines stay up, idle, until the cleanup: reaping them now would add their CPU to wrk's)
    acked: dict[int, int] = {}
    for res in sats:
        for idx, seq in res.acked.items():
            acked[idx] = max(acked.get(idx, 0), seq)

    # two instances on the same database, one wrk each, at once
    mem.enter("second instance starting")
    log2 = tmp / "server-2.log"
    port2, server2 = procs.serve(exe, args.workers, log2, env)
    cpu2 = MemorySampler(server2.pid)
    halves = [[(i, sl) for i, sl in enumerate(slots, start=1) if i % 2 == h] for h in (1, 0)]
    threads, conns = max(1, args.wrk_threads // 2), max(1, args.wrk_connections // 2)
    log(f"2 instances: a second quizengine serve on 127.0.0.1:{port2} (same database); two wrk -t{threads} "
        f"-c{conns} -d{args.duration}s at once, each over half of the slots")
    mem.enter("2 instances")
    c0, c20 = mem.cpu_seconds(), cpu2.cpu_seconds()
    running = []
    for h, (p, half) in enumerate(zip((port, port2), halves)):
        script = tmp / f"autosave-{h + 1}.lua"
        write_lua(script, [sl for _, sl in half], threads)
        logfile = tmp / f"wrk-2instances-{h + 1}.log"
        running.append((start_wrk(p, script, threads, conns, args.duration, procs, logfile, 6 * 10**8), logfile))
    two_parts = [finish_wrk(p, args.duration, procs, logfile) for p, logfile in running]
    two_cpu = mem.cpu_seconds() - c0 + cpu2.cpu_seconds() - c20
    for half, res in zip(halves, two_parts):
        for local, seq in res.acked.items():
            idx = half[local - 1][0]
            acked[idx] = max(acked.get(idx, 0), seq)
    two = merge(two_parts)
    log(f"  2 instances: {two.rps:.0f} requests/s ({' + '.join(f'{r.rps:.0f}' for r in two_parts)}), "
        f"{two.requests} requests, statuses {two.statuses}; server CPU {two_cpu:.1f} s")
    procs.stop(server2)
    log2_text = log2.read_text(errors="replace")
    lost, checked = asyncio.run(bench.verify_saturation(mem, slots, acked))
    best = max(range(len(sats)), key=lambda k: sats[k].rps)
    return {"sats": sats, "sat_cpu": cpu, "best": best, "bases": bases, "two": two, "two_parts": two_parts,
            "two_cpu": two_cpu, "lost_sat": lost, "checked_sat": checked,
            "status_5xx_2": len(re.findall(r'" 5\d\d ', log2_text)), "tail_2": tail(log2, 5) if two.n_errors else ""}


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=None, help="class size N (default 300; 50 with --quick)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers, for the server (gevent) and the baseline (sync)")
    ap.add_argument("--database-url", help="a PostgreSQL SQLAlchemy URL; the database is EMPTIED first")
    ap.add_argument("--postgres", action="store_true", help="only on a throwaway PostgreSQL cluster (tests/pg.py)")
    ap.add_argument("--both", action="store_true", help="on SQLite, then on a throwaway PostgreSQL cluster")
    ap.add_argument("--duration", type=int, default=None, help="wrk duration in s (default 10; 5 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="a fast check: N=50, one save per 1 s, wrk 5 s, 1 round, no moonshot unless --moonshot")
    ap.add_argument("--save-interval", type=float, default=None,
                    help="mean s between one student's saves (default 3; 1 with --quick)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="saturation rounds (quizengine, then both baselines); the best of each counts (default 2; 1 with --quick)")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--wrk-connections", type=int, default=16)
    ap.add_argument("--logins-per-address", type=int, default=100000,
                    help="QUIZENGINE_LOGINS_PER_ADDRESS for the server (default 100000: all students share 127.0.0.1)")
    ap.add_argument("--logins-per-second", type=int, default=None,
                    help="QUIZENGINE_LOGINS_PER_SECOND for the server (default: the server's own default)")
    moon = ap.add_mutually_exclusive_group()
    moon.add_argument("--moonshot", dest="moonshot", action="store_true", default=None,
                      help="run the moonshot (the default, except with --quick)")
    moon.add_argument("--no-moonshot", dest="moonshot", action="store_false")
    ap.add_argument("--moon-students", type=int, default=None, help="moonshot students (default 1000; 100 with --quick)")
    ap.add_argument("--moon-interval", type=float, default=3.0, help="moonshot: mean s between one student's saves")
    ap.add_argument("--moon-duration", type=float, default=None, help="moonshot: s (default 60; 10 with --quick)")
    ap.add_argument("--max-connections", type=int, default=1000, help="client connections open at once")
    ap.add_argument("--timeout", type=float, default=60.0, help="client timeout per request, s")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--json", type=Path, help="also write the figures to this file (JSON)")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="skip `quizengine warm QUIZ` before serving (the deploy step README asks for): the "
                         "spike, the second starts and the moonshot's starts then render every question")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, databases, Lua scripts)")
    a = ap.parse_args()
    a.students = a.students or (50 if a.quick else 300)
    a.duration = a.duration or (5 if a.quick else 10)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.save_interval = a.save_interval or (1.0 if a.quick else 3.0)
    a.moonshot = (not a.quick) if a.moonshot is None else a.moonshot
    a.moon_students = a.moon_students or (100 if a.quick else 1000)
    a.moon_duration = a.moon_duration or (10.0 if a.quick else 60.0)
    if not 1 <= a.students <= 5000:
        ap.error("--students must be between 1 and 5000")
    if not 1 <= a.moon_students <= 20000:
        ap.error("--moon-students must be between 1 and 20000")
    if not 1 <= a.workers <= 64:
        ap.error("--workers must be between 1 and 64")
    if not 1 <= a.duration <= 600:
        ap.error("--duration must be between 1 and 600 s")
    if not 1 <= a.rounds <= 5:
        ap.error("--rounds must be between 1 and 5")
    if a.wrk_connections < a.wrk_threads:
        ap.error("--wrk-connections must be at least --wrk-threads")
    if sum(map(bool, (a.postgres, a.database_url, a.both))) > 1:
        ap.error("give one of --postgres, --both, --database-url")
    if a.database_url and not a.database_url.startswith("postgresql"):
        ap.error("--database-url takes a PostgreSQL URL (the default database is SQLite in a temp folder)")
    if a.database_url and a.database_url.startswith("postgresql://"):
        a.database_url = "postgresql+psycopg://" + a.database_url[len("postgresql://"):]
    return a


def on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    args = parse_args()
    args.machine = machine()  # before the run: the load average shows what else the machine was doing
    # This machine's speed moves (a virtual machine whose host lends its cores elsewhere): the absolute
    # CPU targets are read beside one password hash's CPU and the host's steal, before and after.
    speed0, steal0 = hash_probe(), steal_ticks()
    if not os.access(WRK, os.X_OK):
        print(f"error: {WRK} not found: the saturation phase needs Debian's wrk; install it with\n"
              "    apt-get install wrk", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    kinds = ["sqlite", "postgresql"] if args.both else ["postgresql"] if (args.postgres or args.database_url) else ["sqlite"]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    procs = Processes()
    columns: list[tuple[str, list[summary.Figure]]] = []
    t0 = time.monotonic()
    shared = Path(tempfile.mkdtemp(prefix="qe-load-both-")) if len(kinds) > 1 else None
    first = shared / "first-setup.sqlite3" if shared else None  # the SQLite set-up, its renderings reused
    try:
        for kind in kinds:
            columns.append((names[kind], run_one(args, kind, procs, reuse=first if kind != "sqlite" else None,
                                                 keep_for=first if kind == "sqlite" else None)))
            if len(kinds) > 1:  # the figures so far, in case a later database can't finish
                print(f"\n== {names[kind]} figures ==")
                summary.table(columns[-1:])
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        procs.stop_all()
        return 130
    except SystemExit as e:  # the benchmark itself could not run
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 2
        raise
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)
    print()
    print(f"== summary: {args.students} students, {args.workers} workers; {args.machine}; "
          f"load average now {loadavg()}; {time.monotonic() - t0:.0f} s in all ==")
    summary.table(columns)
    speed1 = hash_probe()
    speed = (f"one Argon2id hash at the app's parameters {speed0:.0f} ms of CPU before the run, {speed1:.0f} ms after "
             f"(README's reference machine: 32 ms); the host took {steal_share(steal0, steal_ticks())} of this "
             "machine's CPU time during the run (steal)")
    print(f"  machine speed: {speed}")
    ok = all(summary.all_passed(figs) for _, figs in columns)
    print(f"  all targets: {'PASS' if ok else 'MISS'}")
    if args.json:
        summary.write_json(args.json, {"machine": args.machine, "speed": speed, "hash_cpu_ms": [round(speed0, 1), round(speed1, 1)],
                                       "students": args.students, "workers": args.workers,
                                       "load_after": loadavg(), "seconds": time.monotonic() - t0}, columns)
        print(f"  (figures written to {args.json})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
