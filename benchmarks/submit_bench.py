"""What a submit costs the server (issue 14, part 4): CPU ms per submit, in one process.

Run: PYTHONPATH=. .venv/bin/python benchmarks/submit_bench.py [--students 30] [--postgres]
                                                               [--profile] [--fresh-worker]

A fresh database (SQLite, or with --postgres a throwaway PostgreSQL cluster from tests/pg.py) with
the shipped banks; each student starts ``module-04-prep`` (20 questions, one multipart chain) over
the JSON API (Flask's test client), answers every question (at random, as benchmarks/load.py does),
and then each attempt is submitted
(``POST /api/v1/attempts/{id}/submit``, whose answer is the results with feedback and worked
solutions). Printed: the process CPU per submit (time.process_time, so other jobs on the machine
inflate it less than wall time), p50/p95, and how it splits between grading-and-closing
(``close_attempt``) and the results payload, with the load average.

As under ``quizengine serve`` the students' attempts were rendered ahead (the warmer's ``warm``
after their logins). ``--fresh-worker`` forgets this process's variants before the submits, as a
worker that built none of them (300 students x 20 questions outnumber a worker's variant cache).
``--profile`` prints a cProfile of the submits, costliest first.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("SUBMIT_BENCH_TREE") or Path(__file__).resolve().parents[1])  # the code measured
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's loadlib (postgres_pids)

os.environ.setdefault("START_BENCH_TREE", str(ROOT))  # start_bench measures the same tree
from loadlib.client import make_response  # noqa: E402 - after the path
from start_bench import add_students, load, make_app, tokens  # noqa: E402 - the same set-up
from start_bench import answers as answer  # noqa: E402
from start_bench import clear_process_caches as forget_variants  # noqa: E402

QUIZ = "module-04-prep"


def prepare(app, n: int, prefix: str, random_answers: bool = True) -> list[tuple[dict, int]]:
    """n students, each with an answered attempt (rendered ahead, as the warmer does after a login);
    random answers as benchmarks/load.py sends (loadlib.client.make_response), else fixed ones."""
    rng = random.Random(14)
    from quizengine.services.warming import warm_quiz

    names = add_students(app, n, prefix)
    warm_quiz(app.extensions["quizengine.db"], app.config["SECRET_KEY"], QUIZ, names)
    client = app.test_client()
    out = []
    for h in tokens(app, client, names):
        view = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers=h).json
        for k, q in enumerate(view["questions"]):
            value = make_response(q, rng) if random_answers else answer(q)
            r = client.put(f"/api/v1/attempts/{view['attempt_id']}/responses/{q['id']}", headers=h,
                           json={"response": value, "seq": k + 1})
            assert r.status_code == 200, (q["type"], r.json)
        out.append((h, view["attempt_id"]))
    return out


class Split:
    """CPU spent closing the attempts (reading, grading, writing) during the submits."""

    def __init__(self):
        self.cpu = 0.0

    @contextlib.contextmanager
    def patched(self):
        from quizengine.web import api

        name = "submit_graded" if hasattr(api, "submit_graded") else "submit_attempt"  # (before: submit_attempt)
        real = getattr(api, name)

        def timed(*a, **k):
            t0 = time.process_time()
            try:
                return real(*a, **k)
            finally:
                self.cpu += time.process_time() - t0

        setattr(api, name, timed)
        try:
            yield
        finally:
            setattr(api, name, real)


def pct(ms: list[float], p: int) -> float:
    return statistics.quantiles(ms, n=100)[p - 1] if len(ms) > 1 else ms[0]


def run(url: str, tmp: Path, args) -> None:
    from loadlib.proc import cpu_of, postgres_pids

    app = make_app(tmp, url)
    client = app.test_client()
    warm = prepare(app, 1, "warmup")  # one submit first: imports and what every submit shares
    assert client.post(f"/api/v1/attempts/{warm[0][1]}/submit", headers=warm[0][0]).status_code == 200
    attempts = prepare(app, args.students, "s", not args.fixed_answers)
    if args.fresh_worker:
        forget_variants()
    split = Split()
    prof = cProfile.Profile() if args.profile else None
    ms = []
    statements = [0]

    def count(_conn, _cursor, statement, *_a):
        statements[0] += 1
        if args.show_sql and statements[0] <= 40:
            print("   ", " ".join(statement.split())[:150])

    from sqlalchemy import event

    engine = app.extensions["quizengine.db"].engine
    event.listen(engine, "before_cursor_execute", count)
    if url.startswith("postgresql"):
        with engine.begin() as conn:  # the statements of the submits only
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.exec_driver_sql("SELECT pg_stat_statements_reset()")
    pg0 = cpu_of(postgres_pids(url))
    by0 = {p: cpu_of([p]) for p in postgres_pids(url)}
    with split.patched():
        if prof:
            prof.enable()
        for h, aid in attempts:
            t0 = time.process_time()
            r = client.post(f"/api/v1/attempts/{aid}/submit", headers=h)
            ms.append((time.process_time() - t0) * 1e3)
            assert r.status_code == 200, r.json
        if prof:
            prof.disable()
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    how = "a fresh worker" if args.fresh_worker else "variants built by this worker"
    print(f"submit {QUIZ} on {db} ({how}): CPU per submit p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 95):.1f} ms,"
          f" mean {statistics.fmean(ms):.1f} ms; of it closing (read, grade, write) {1e3 * split.cpu / len(ms):.1f} ms "
          f"(n={len(ms)}, load {load()})", flush=True)
    print(f"  SQL statements per submit (each a round trip on PostgreSQL; commits not counted): "
          f"{statements[0] / len(ms):.1f}")
    if url.startswith("postgresql"):
        print(f"  PostgreSQL CPU per submit (the cluster's processes, /proc): "
              f"{1e3 * (cpu_of(postgres_pids(url)) - pg0) / len(ms):.1f} ms")
        if os.environ.get("PG_BY_PROCESS"):
            for p in postgres_pids(url):
                d = cpu_of([p]) - by0.get(p, 0.0)
                if d > 0.005:
                    print(f"      {d * 1e3:7.0f} ms", Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:70])
        with engine.begin() as conn:
            top = conn.exec_driver_sql(
                "SELECT calls, total_exec_time + total_plan_time, plans, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
                "WHERE query NOT LIKE '%%pg_stat_statements%%' ORDER BY total_exec_time + total_plan_time DESC LIMIT 8").all()
        for calls, total, plans, query in top:
            print(f"    {calls / len(ms):5.1f} calls, {total / len(ms):6.3f} ms, {plans / len(ms):5.1f} plans per submit: "
                  f"{query[:110]}")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile_lines)
    app.extensions["quizengine.db"].dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=30, help="submits measured (default 30)")
    ap.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster (tests/pg.py)")
    ap.add_argument("--fresh-worker", action="store_true", help="forget this process's variants before the submits")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the submits")
    ap.add_argument("--fixed-answers", action="store_true",
                    help="0.5 for every number and the first option, not load.py's random answers")
    ap.add_argument("--profile-lines", type=int, default=45)
    ap.add_argument("--show-sql", action="store_true", help="print the statements of the first submits")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="submit-bench-"))
    if a.postgres:  # this checkout's tests/pg.py (--tree's may not take options)
        spec = importlib.util.spec_from_file_location("bench_pg", Path(__file__).resolve().parents[1] / "tests" / "pg.py")
        pg = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pg)
        with pg.throwaway_postgres("-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on") as url:
            run(url, tmp, a)
    else:
        run(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp, a)


if __name__ == "__main__":
    main()
