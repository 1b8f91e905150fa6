"""What starting an attempt costs (issue 14, part 3) and what a submit costs (part 4).

Run: PYTHONPATH=. .venv/bin/python benchmarks/start_bench.py [--students N] [--profile start|submit]
                                                              [--http] [--http-students 300]
     PYTHONPATH=. .venv/bin/python benchmarks/start_bench.py --spike-only [spike_bench.py's options]

In-process (Flask test client, a fresh SQLite database with the shipped banks, one process): CPU ms
per start of ``module-04-prep`` (20 questions, one multipart chain) and of a quiz that adds a network
diagram and an activation plot to it, each measured

- cold: nothing of the student's variants is built yet (in this process or in the shared cache);
- warm: the variants were rendered ahead (``quizengine warm QUIZ``, or an earlier page view on
  another worker), so the start reads them from the shared rendering cache;

and CPU ms per submit of a 20-question attempt (one chain) with every question answered.
The process CPU is measured (time.process_time), so other jobs on the machine inflate it less than
wall time; the load average is printed beside each figure.

With --http it also starts ``quizengine serve`` (2 workers, SQLite) on a fresh instance folder and
drives it from this process: 300 starts from 32 clients (closed loop), 300 students starting within
one second (the spike), and 300 submits from 32 clients; p50/p95 of each.
Targets: a start costs a few ms; spike and closed-loop start p95 < 1 s; submit p95 < 1 s.

--spike-only runs only the spike, with the breakdown of a start's time (the client's lag and
connection, the server's share), the server's CPU per start and share of the cores, and the
attempts with a chain and two figures (issue 13): benchmarks/spike_bench.py, given every other
option of the command line (its own: --students N, --template FILE to reuse a prepared database, --nice -15 to
give the spike the CPU of an idle machine on a shared one, --tree PATH for paired runs).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("START_BENCH_TREE") or Path(__file__).resolve().parents[1])  # the code measured
sys.path.insert(0, str(ROOT))

QUIZ = "module-04-prep"
FIGURED = "bench-chain-figures"  # module-04-prep plus a network diagram and an activation plot
FIGURE_ITEMS = ("bp-forward-221", "act-calc-sigmoid-derivative")
FAST_HASH = "argon2id:m=8,t=1,p=1"


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def make_app(tmp: Path, url: str | None = None):
    """The app on a fresh database (``url``, else SQLite in ``tmp``) with the shipped banks and FIGURED."""
    from quizengine import create_app
    from quizengine.migrate import upgrade
    from quizengine.services.banks import load_banks

    url = url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "BANKS": str(ROOT / "banks"),
                      "INSTANCE": str(tmp), "PASSWORD_METHOD": FAST_HASH, "WTF_CSRF_ENABLED": False,
                      "LOGINS_PER_ADDRESS": 0, "LOGINS_PER_SECOND": 0, "LTI_SEND": "inline"})
    with app.extensions["quizengine.db"].write() as s:
        load_banks(s, ROOT / "banks")
        add_figured_quiz(s)
    return app


def add_figured_quiz(s) -> None:
    from quizengine.models import Quiz

    base = s.get(Quiz, QUIZ)
    definition = dict(base.definition)
    definition["slots"] = [{"items": [i], "count": 1} for i in FIGURE_ITEMS] + [
        dict(slot) for slot in definition["slots"]]
    s.add(Quiz(id=FIGURED, title="Bench: a chain and two figures", description="", definition=definition,
               score_policy=base.score_policy, feedback=base.feedback, updated_at=base.updated_at,
               dates_locked=False, max_attempts=None))


def add_students(app, n: int, prefix: str) -> list[str]:
    from quizengine.services import accounts

    names = [f"{prefix}{i}" for i in range(n)]
    with app.extensions["quizengine.db"].write() as s:
        for name in names:
            accounts.add_user(s, name, "student", "password-123", method=FAST_HASH)
    return names


def tokens(app, client, names: list[str]) -> list[dict[str, str]]:
    out = []
    for name in names:
        r = client.post("/api/v1/auth/token", json={"username": name, "password": "password-123"})
        assert r.status_code == 200, r.json
        out.append({"Authorization": f"Bearer {r.json['token']}"})
    return out


def cpu_ms(fn, runs: list) -> list[float]:
    """CPU ms of fn(x) for each x."""
    out = []
    for x in runs:
        t0 = time.process_time()
        fn(x)
        out.append((time.process_time() - t0) * 1e3)
    return out


def summary(label: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=20) if len(ms) > 1 else ms * 19
    print(f"{label:<58} p50 {statistics.median(ms):7.2f} ms  p95 {q[18]:7.2f} ms  (n={len(ms)}, "
          f"load {load()})", flush=True)


def answers(q: dict):
    """A well-formed response for a question of the attempt view (right or wrong does not matter)."""
    def numbers(shape: list[int]):
        return 0.5 if not shape else [numbers(shape[1:]) for _ in range(shape[0])]

    kind = q["type"]
    if kind == "single_choice":
        return q["choices"][0]["id"]
    if kind == "multiple_select":
        return [q["choices"][0]["id"]]
    if kind == "true_false":
        return True
    if kind == "numeric":
        return numbers(list(q.get("shape") or []))
    if kind == "matching":
        return {left["id"]: q["rights"][0]["id"] for left in q["lefts"]}
    if kind == "ordering":
        return [o["id"] for o in q["options"]]
    if kind == "multipart":
        return {p["id"]: numbers(p["shape"]) for p in q["parts"]}
    return "an answer"


def clear_process_caches() -> None:
    """Forget what this process built (variants, figures, Markdown, MathML), as a fresh worker would."""
    from quizengine.bank import figures, render
    from quizengine.services import banks

    banks._VARIANTS.clear()
    figures._CACHE.clear()
    render.markdown_to_html.cache_clear()
    render._mathml.cache_clear()


def in_process(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="start-bench-"))
    app = make_app(tmp)
    client = app.test_client()
    n = args.students
    def start(quiz: str):
        def go(h):
            r = client.post(f"/api/v1/quizzes/{quiz}/attempts", headers=h)
            assert r.status_code == 201, r.json
            return r.json
        return go

    # one start to import and build what every start shares (the pool, the routes)
    warmup = tokens(app, client, add_students(app, 1, "warmup"))
    start(QUIZ)(warmup[0])
    start(FIGURED)(warmup[0])

    try:
        from quizengine.services.warming import warm_quiz
    except ImportError:  # a tree from before the rendering cache
        warm_quiz = None
    db = app.extensions["quizengine.db"]
    for quiz in (QUIZ, FIGURED):
        names = add_students(app, n, f"cold-{quiz}-")
        heads = tokens(app, client, names)
        clear_process_caches()
        if args.profile == "start" and quiz == QUIZ:
            prof = cProfile.Profile()
            prof.enable()
        summary(f"start {quiz}: cold (nothing rendered yet)", cpu_ms(start(quiz), heads))
        if args.profile == "start" and quiz == QUIZ:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        if warm_quiz is None:
            continue
        names = add_students(app, n, f"warm-{quiz}-")
        heads = tokens(app, client, names)
        t0 = time.process_time()
        warm_quiz(db, app.config["SECRET_KEY"], quiz, names)
        warm_ms = (time.process_time() - t0) * 1e3 / n
        clear_process_caches()  # as a worker that rendered none of it
        if args.profile == "warm" and quiz == QUIZ:
            prof = cProfile.Profile()
            prof.enable()
        summary(f"start {quiz}: warm (rendered ahead)", cpu_ms(start(quiz), heads))
        if args.profile == "warm" and quiz == QUIZ:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        print(f"  (rendering ahead with `quizengine warm`: {warm_ms:.1f} ms CPU per student)")

    # submits: 20 questions, every one answered; with and without the solutions rendered ahead
    for how in ("cold", "warm") if warm_quiz is not None else ("cold",):
        names = add_students(app, n, f"submit-{how}-")
        heads = tokens(app, client, names)
        if how == "warm":
            warm_quiz(db, app.config["SECRET_KEY"], QUIZ, names)
        attempts, saves = [], []
        for h in heads:
            view = start(QUIZ)(h)
            for q in view["questions"]:
                t0 = time.process_time()
                r = client.put(f"/api/v1/attempts/{view['attempt_id']}/responses/{q['id']}", headers=h,
                               json={"response": answers(q)})
                saves.append((time.process_time() - t0) * 1e3)
                assert r.status_code == 200, (q["type"], r.json)
            attempts.append((h, view["attempt_id"]))
        if how == "cold":
            summary("autosave (for scale: the cheapest write)", saves)

        def submit(pair):
            h, aid = pair
            r = client.post(f"/api/v1/attempts/{aid}/submit", headers=h)
            assert r.status_code == 200, r.json

        clear_process_caches()
        if args.profile == "submit" and how == "warm":
            prof = cProfile.Profile()
            prof.enable()
        label = "worked solutions rendered ahead" if how == "warm" else "nothing rendered ahead"
        summary(f"submit {QUIZ} (20 answered, a chain; {label})", cpu_ms(submit, attempts))
        if args.profile == "submit" and how == "warm":
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


# ---------------------------------------------------------------- over HTTP, against `quizengine serve`

class Client:
    """One keep-alive HTTP connection to the server (one simulated client)."""

    def __init__(self, port: int):
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body=None, token: str | None = None, parse: bool = True):
        import json

        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if parse and data else None)


def closed_loop(port: int, jobs: list, clients: int, fn) -> tuple[list[float], int]:
    """Run fn(client, job) for every job from ``clients`` threads in a closed loop; latencies (s), errors."""
    import queue
    import threading

    todo: queue.Queue = queue.Queue()
    for j in jobs:
        todo.put(j)
    lat: list[float] = []
    errors = [0]

    def worker() -> None:
        c = Client(port)
        while True:
            try:
                j = todo.get_nowait()
            except queue.Empty:
                return
            t0 = time.perf_counter()
            if not fn(c, j):
                errors[0] += 1
            lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0]


def spike(port: int, jobs: list, fn, within: float = 1.0, seed: int = 14) -> tuple[list[float], int]:
    """Every job sent at a random moment within ``within`` s, each on its own connection; latency is
    counted from the scheduled moment."""
    import random
    import threading

    rng = random.Random(seed)
    t_start = time.perf_counter() + 0.5
    lat: list[float] = []
    errors = [0]

    def one(j, at: float) -> None:
        c = Client(port)
        time.sleep(max(0.0, at - time.perf_counter()))
        if not fn(c, j):
            errors[0] += 1
        lat.append(time.perf_counter() - at)

    threads = [threading.Thread(target=one, args=(j, t_start + rng.random() * within)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0]


def server_cpu(pid: int) -> float:
    """utime + stime of the server (gunicorn master and its workers), in s."""
    from loadlib.proc import cpu_of, tree

    return cpu_of(tree(pid))


def pct(lat: list[float], p: int) -> float:
    return statistics.quantiles(lat, n=100)[p - 1] if len(lat) > 1 else lat[0]


def report(label: str, lat: list[float], errors: int) -> None:
    print(f"{label:<58} p50 {pct(lat, 50) * 1e3:7.0f} ms  p95 {pct(lat, 95) * 1e3:7.0f} ms  "
          f"errors {errors}  (n={len(lat)}, load {load()})", flush=True)


def over_http(args) -> None:
    import sqlite3
    import subprocess

    from loadlib.proc import free_port, wait_until_serving
    from quizengine import create_app
    from quizengine.services import accounts

    n = args.http_students
    tmp = Path(tempfile.mkdtemp(prefix="start-bench-http-"))
    url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_DATABASE_URL": url,
           "QUIZENGINE_SECRET_KEY": "start-bench", "QUIZENGINE_BANKS": str(ROOT / "banks"),
           "QUIZENGINE_LOGINS_PER_ADDRESS": "0", "QUIZENGINE_LOGINS_PER_SECOND": "0",
           "QUIZENGINE_WARM_AHEAD": "0" if args.cold else "1"}
    cli = [sys.executable, "-m", "quizengine.cli"]
    subprocess.run(cli + ["load-banks"], env=env, check=True, capture_output=True)
    # Students with a cheap hash: this measures starts and submits, not logins (benchmarks/load.py does).
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "start-bench", "INSTANCE": str(tmp),
                      "BANKS": str(ROOT / "banks")})
    groups = {g: [f"{g}{i}" for i in range(n)] for g in ("loop", "spike")}
    with app.extensions["quizengine.db"].write() as s:
        for names in groups.values():
            for name in names:
                accounts.add_user(s, name, "student", "password-123", method=FAST_HASH)
    app.extensions["quizengine.db"].dispose()
    port = free_port()
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(cli + ["serve", "--port", str(port), "--workers", "2"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(port, server, tmp / "server.log", 2)
        tokens: dict[str, str] = {}

        def login(c: Client, name: str) -> bool:
            st, data = c.call("POST", "/api/v1/auth/token", {"username": name, "password": "password-123"})
            if st == 200:
                tokens[name] = data["token"]
            return st == 200

        t0 = time.perf_counter()
        lat, err = closed_loop(port, groups["loop"] + groups["spike"], 32, login)
        report(f"login, {2 * n} students, 32 clients", lat, err)
        if not args.cold:  # the workers render each student's next attempt after their login
            con = sqlite3.connect(tmp / "quizengine.sqlite3")
            want = 2 * n * 20
            while (have := con.execute("SELECT count(*) FROM rendering").fetchone()[0]) < want:
                if time.perf_counter() - t0 > 600:
                    print(f"  (rendering ahead incomplete after 600 s: {have}/{want})")
                    break
                time.sleep(0.5)
            con.close()
            print(f"  rendered ahead by the workers' warmers: {have} questions, {time.perf_counter() - t0:.1f} s "
                  f"after the logins began")
        attempts: dict[str, dict] = {}

        def start(c: Client, name: str) -> bool:
            st, data = c.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=tokens[name])
            if st == 201:
                attempts[name] = data
            return st == 201

        state = "rendered ahead" if not args.cold else "nothing rendered ahead"
        cpu0 = server_cpu(server.pid)
        lat, err = closed_loop(port, groups["loop"], 32, start)
        cpu1 = server_cpu(server.pid)
        report(f"start, {n} students, 32 clients ({state})", lat, err)
        print(f"  server CPU per start: {(cpu1 - cpu0) / n * 1e3:.1f} ms (master and workers, /proc)")
        lat, err = spike(port, groups["spike"], start)
        cpu2 = server_cpu(server.pid)
        report(f"start spike, {n} students within 1 s ({state})", lat, err)
        print(f"  server CPU per start: {(cpu2 - cpu1) / n * 1e3:.1f} ms (master and workers, /proc)")

        def answer(c: Client, name: str) -> bool:
            a = attempts[name]
            ok = True
            for q in a["questions"]:
                st, _ = c.call("PUT", f"/api/v1/attempts/{a['attempt_id']}/responses/{q['id']}",
                               {"response": answers(q)}, token=tokens[name], parse=False)
                ok = ok and st == 200
            return ok

        lat, err = closed_loop(port, [g for g in groups["loop"] if g in attempts], 32, answer)
        print(f"  (answered every question of {len(lat)} attempts, errors {err})")

        def submit(c: Client, name: str) -> bool:
            st, _ = c.call("POST", f"/api/v1/attempts/{attempts[name]['attempt_id']}/submit", token=tokens[name],
                           parse=False)
            return st == 200

        lat, err = closed_loop(port, [g for g in groups["loop"] if g in attempts], 32, submit)
        report(f"submit, {n} attempts of 20 questions, 32 clients", lat, err)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=30, help="starts per in-process measure (default 30)")
    ap.add_argument("--profile", choices=("start", "warm", "submit"), help="print a cProfile of the cold starts, warm starts or submits")
    ap.add_argument("--http", action="store_true", help="also measure over HTTP against quizengine serve")
    ap.add_argument("--http-only", action="store_true", help="only the HTTP measures")
    ap.add_argument("--http-students", type=int, default=300, help="students per HTTP measure (default 300)")
    ap.add_argument("--cold", action="store_true", help="over HTTP: no rendering ahead (QUIZENGINE_WARM_AHEAD=0)")
    ap.add_argument("--spike-only", action="store_true",
                    help="only the spike (every student starts within 1 s) with its breakdown: runs "
                         "benchmarks/spike_bench.py with every other option given (its own: e.g. --students 300 "
                         "--template FILE --nice -15; see spike_bench.py --help)")
    if "--spike-only" in sys.argv[1:]:  # every other option is spike_bench.py's (its --students too)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import spike_bench

        sys.argv = [spike_bench.__file__, *(x for x in sys.argv[1:] if x != "--spike-only")]
        raise SystemExit(spike_bench.main())
    a = ap.parse_args()
    if not a.http_only:
        in_process(a)
    if a.http or a.http_only:
        over_http(a)


if __name__ == "__main__":
    main()
