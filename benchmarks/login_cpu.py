"""Server CPU per login, in one process, split into its parts (issue 14: where a login's CPU goes).

Run: PYTHONPATH=. .venv/bin/python benchmarks/login_cpu.py [-n 40] [--rounds 3] [--profile FILE]

Builds a fresh SQLite database (WAL, as the app sets it) in a temporary folder with the banks and
N students hashed with the server's Argon2id method (passwords.py), renders each student's first
attempt at module-04-prep ahead (``warm_quiz``, as `quizengine warm` does before a class), then
calls the WSGI app directly (no sockets, no HTTP parsing, no gevent) and prints the process CPU
(user + system) per call, least round of --rounds:
  argon2id verify   passwords.verify_password alone (the floor of any login)
  token login       POST /api/v1/auth/token (throttle reads and counter, the check, the token)
  form login        POST /login (the same with a new server-side session and the session cookie)
  warmer's check    what each worker's background warmer does after a student's login when their
                    next attempt is already rendered (services/warming.py, ``warm_student``)
  ... batched       the same per student when the warmer plans 20 students together (``warm_students``,
                    as it does in a login spike)
and the rest of a token login (the token login less the verify). --profile FILE runs cProfile over
the token logins and the warmer's checks of one more round and prints the top functions.
benchmarks/login_bench.py measures the same over HTTP against `quizengine serve`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUIZ = "module-04-prep"
CHECK = "warmer's check"
BATCHED = "warmer's check, batched"
BATCH = 20  # students the background warmer plans together in a login spike (services/warming.py)


def environ(method: str, path: str, body: bytes, content_type: str) -> dict:
    """A WSGI environ, as a server would build it."""
    return {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "login_cpu", "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}


def call(app: Any, env: dict) -> str:
    out: list[str] = []
    chunks = app(env, lambda status, headers, exc_info=None: out.append(status))
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return out[0]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def per_call(fn: Callable[[Any], None], args: list[Any]) -> float:
    """Process CPU seconds per call of ``fn`` over ``args``."""
    t0 = time.process_time()
    for a in args:
        fn(a)
    return (time.process_time() - t0) / len(args)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=40, help="students (logins per round and kind)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=Path, default=None, help="cProfile the token logins and warmer's checks")
    args = ap.parse_args()

    from quizengine import create_app, passwords
    from quizengine.constants import PASSWORD_METHOD
    from quizengine.migrate import upgrade
    from quizengine.models import User
    from quizengine.services import warming
    from quizengine.services.banks import load_banks
    from quizengine.services.clock import now
    from sqlalchemy import select

    print(f"load average {loadavg()} ({os.cpu_count()} CPUs); password method {PASSWORD_METHOD}; {args.n} students")
    tmp = Path(tempfile.mkdtemp(prefix="qe-login-cpu-"))
    url = f"sqlite:///{tmp / 'app.sqlite3'}"
    upgrade(url)
    # the per-address limit raised as for a class behind one address (load.py); the per-worker rate at its default
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "BANKS": str(ROOT / "banks"), "INSTANCE": str(tmp),
                      "LOGINS_PER_ADDRESS": 100000, "WTF_CSRF_ENABLED": False})
    db, secret = app.extensions["quizengine.db"], app.config["SECRET_KEY"]
    names = [f"s{i}" for i in range(args.n)]
    with db.write() as s:
        load_banks(s, ROOT / "banks")
    hashes = [passwords.hash_password(f"password-{i:04d}") for i in range(args.n)]
    with db.write() as s:
        for name, h in zip(names, hashes):
            s.add(User(username=name, role="student", full_name=name, password_hash=h, created_at=now()))
    t0 = time.process_time()
    warming.warm_quiz(db, secret, QUIZ, names)
    print(f"rendered every student's first attempt ahead: {(time.process_time() - t0) / args.n * 1e3:.0f} ms CPU per student")
    with db.read() as s:
        ids = list(s.scalars(select(User.id).where(User.username.in_(names))))

    def token(i: int) -> None:
        body = json.dumps({"username": names[i], "password": f"password-{i:04d}"}).encode()
        status = call(app, environ("POST", "/api/v1/auth/token", body, "application/json"))
        if not status.startswith("200"):
            raise SystemExit(f"error: a token login answered {status}")

    def form(i: int) -> None:
        body = f"username={names[i]}&password=password-{i:04d}".encode()
        status = call(app, environ("POST", "/login", body, "application/x-www-form-urlencoded"))
        if not status.startswith("302"):
            raise SystemExit(f"error: a form login answered {status}")

    def verify(i: int) -> None:
        assert passwords.verify_password(hashes[i], f"password-{i:04d}")

    def check(uid: int) -> None:
        if warming.warm_student(db, secret, uid):
            raise SystemExit("error: the warmer rendered something: the attempts were not rendered ahead")

    batched = getattr(warming, "warm_students", None)  # (absent before the warmer planned students together)

    def batch(uids: list[int]) -> None:
        if batched(db, secret, uids):
            raise SystemExit("error: the warmer rendered something: the attempts were not rendered ahead")

    idx = list(range(args.n))
    token(0), form(0), check(ids[0])  # warm up: connections, compiled statements, caches
    kinds: dict[str, tuple[Callable, list]] = {"argon2id verify": (verify, idx), "token login": (token, idx),
                                                "form login": (form, idx), CHECK: (check, ids)}
    if batched is not None:  # the background warmer plans the students of a login spike together
        kinds[BATCHED] = (batch, [ids[k:k + BATCH] for k in range(0, len(ids), BATCH)])
    best = {k: float("inf") for k in kinds}
    for r in range(args.rounds):
        for k, (fn, xs) in kinds.items():
            best[k] = min(best[k], per_call(fn, xs))
    if BATCHED in best:
        best[BATCHED] *= (len(ids) + BATCH - 1) // BATCH / len(ids)  # per student
    for k, v in best.items():
        print(f"  {k:<18} {v * 1e3:7.2f} ms CPU per {'student' if k == BATCHED else 'call'}")
    print(f"  {'token login less the verify':<18} {(best['token login'] - best['argon2id verify']) * 1e3:7.2f} ms; "
          f"with the warmer's check, a token login costs {(best['token login'] + best[CHECK]) * 1e3:.1f} ms "
          f"(least of {args.rounds} rounds; load average {loadavg()})")
    if args.profile:
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for i in idx:
            token(i)
            check(ids[i])
        prof.disable()
        prof.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(30)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
