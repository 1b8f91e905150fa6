"""Server CPU per autosave, in one process: the app's save endpoint against a bare Flask insert.

Run: PYTHONPATH=. .venv/bin/python benchmarks/autosave_cpu.py [-n 3000] [--rounds 3] [--full-path]
     [--profile FILE]

Builds a fresh SQLite database (WAL, synchronous as the app sets it) in a temporary folder, a
student with an API token and an open attempt of module-04-prep, then calls the WSGI app directly
with a prepared environ (no sockets, no HTTP parsing): N autosaves
`PUT /api/v1/attempts/{id}/responses/{qid}` with a rising seq, cycling over the attempt's questions
with valid answers. The same is done for a bare Flask + SQLAlchemy app doing one insert per
request (the baseline of benchmarks/load.py), both at synchronous=FULL and at NORMAL. Prints the
process CPU (user + system, time.process_time) per request for each, and the ratios. Rounds
alternate the apps so that a change in the machine's load hits both; the best round counts.
The server's HTTP parsing (gunicorn) is not included; benchmarks/load.py measures it all.
The attempt page's own autosave (`POST /attempts/{id}/autosave`, session cookie and CSRF header,
CSRF on as in production) is timed too, through the app (its fast lane, web/pagesave.py) and
through the Flask app behind the fast lane (the full path), in the same rounds.
--full-path also times a second student's saves sent with a cookie, which skip the fast lane
(web/quicksave.py) and take the full Flask path; --profile FILE runs cProfile (CPU time) over the
saves instead (the full path's with --full-path) and prints the top functions.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from loadlib.client import make_response  # noqa: E402  (the load benchmark's responses)
QUIZ = "module-04-prep"

Wsgi = Callable[[dict, Callable], Any]


def environ(path: str, body: bytes, token: str | None, cookie: str | None = None,
            page: dict[str, str] | None = None) -> dict:
    """A WSGI environ for one PUT (a POST with ``page``'s headers), as a server would build it."""
    env = {"REQUEST_METHOD": "POST" if page else "PUT", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
           "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
           "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
           "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
           "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
           "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
           "wsgi.run_once": False}
    if token:
        env["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if cookie:  # a request with a cookie skips the autosave's fast lane (web/quicksave.py)
        env["HTTP_COOKIE"] = cookie
    env.update(page or {})
    return env


def call(app: Wsgi, env: dict) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, headers: list, exc_info: Any = None) -> Callable:
        status.append(s)
        return lambda data: None

    it = app(env, start_response)
    try:
        out = b"".join(it)
    finally:
        if hasattr(it, "close"):
            it.close()
    return status[0], out


class Saves:
    """The requests of one run: (path, value) slots, each PUT with the next seq."""

    def __init__(self, slots: list[tuple[str, Any]], token: str | None, cookie: str | None = None,
                 page: dict[str, str] | None = None):
        self.slots, self.token, self.cookie, self.page, self.seq = slots, token, cookie, page, 0

    def run(self, app: Wsgi, n: int) -> float:
        """CPU seconds for n saves (every one must answer 200)."""
        bodies = []
        for i in range(n):
            self.seq += 1
            path, value = self.slots[i % len(self.slots)]
            if self.page:  # the page's script: one URL, the question in the body
                aid, _, qid = path.removeprefix("/api/v1/attempts/").partition("/responses/")
                path, data = f"/attempts/{aid}/autosave", {"question": qid, "response": value, "seq": self.seq}
            else:
                data = {"response": value, "seq": self.seq}
            bodies.append((path, json.dumps(data).encode()))
        envs = [environ(p, b, self.token, self.cookie, self.page) for p, b in bodies]
        t0 = time.process_time()
        for env in envs:
            status, out = call(app, env)
            if not status.startswith("200"):
                raise SystemExit(f"error: a save answered {status}: {out[:300]!r}")
        return time.process_time() - t0


def quizengine_app(tmp: Path) -> tuple[Wsgi, Saves, Saves, Saves]:
    """The app, and the saves of three students: one as any API client sends them, one with a cookie,
    one from the attempt page (logged in by its form, CSRF on)."""
    from quizengine import create_app
    from quizengine.migrate import upgrade
    from quizengine.services import accounts
    from quizengine.services.banks import load_banks

    url = f"sqlite:///{tmp / 'app.sqlite3'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "BANKS": str(ROOT / "banks"),
                      "INSTANCE": str(tmp), "LOGINS_PER_ADDRESS": 0, "LOGINS_PER_SECOND": 0,
                      "PASSWORD_METHOD": "argon2id:m=8,t=1,p=1"})
    db = app.extensions["quizengine.db"]
    with db.write() as s:
        load_banks(s, ROOT / "banks")
        for name in ("s1", "s2", "s3"):
            accounts.add_user(s, name, "student", "password-123", method="argon2id:m=8,t=1,p=1")
    client = app.test_client()
    saves = []
    for name, cookie in (("s1", None), ("s2", "theme=dark")):
        token = client.post("/api/v1/auth/token", json={"username": name, "password": "password-123"}).json["token"]
        r = client.post(f"/api/v1/quizzes/{QUIZ}/attempts", headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 201:
            raise SystemExit(f"error: starting {QUIZ} answered {r.status_code}: {r.json}")
        rng = random.Random(1)
        aid = r.json["attempt_id"]
        slots = [(f"/api/v1/attempts/{aid}/responses/{q['id']}", make_response(q, rng)) for q in r.json["questions"]]
        saves.append(Saves(slots, token, cookie))
    return app, saves[0], saves[1], page_saves(app)


def page_saves(app: Any) -> Saves:
    """Student s3's page saves: logged in by the login form, the session cookie and CSRF token of the page."""
    import re

    browser = app.test_client()

    def csrf(path: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)

    r = browser.post("/login", data={"username": "s3", "password": "password-123", "csrf_token": csrf("/login")})
    if r.status_code != 302:
        raise SystemExit(f"error: the login form answered {r.status_code}")
    r = browser.post(f"/quizzes/{QUIZ}/start", data={"csrf_token": csrf("/dashboard")})
    aid = int(r.headers["Location"].rsplit("/", 1)[1])
    token = csrf(f"/attempts/{aid}")
    cookie = browser.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    # the attempt's questions, as the API shows them to the same student
    api = app.test_client()
    bearer = api.post("/api/v1/auth/token", json={"username": "s3", "password": "password-123"}).json["token"]
    questions = api.get(f"/api/v1/attempts/{aid}", headers={"Authorization": f"Bearer {bearer}"}).json["questions"]
    rng = random.Random(1)
    slots = [(f"/api/v1/attempts/{aid}/responses/{q['id']}", make_response(q, rng)) for q in questions]
    # the browser's address and user agent, which Flask-Login's session protection compares
    page = {"HTTP_X_CSRFTOKEN": token, "HTTP_USER_AGENT": f"Werkzeug/{version('werkzeug')}",
            "HTTP_REFERER": f"http://127.0.0.1:8000/attempts/{aid}"}
    return Saves(slots, None, f"{cookie.key}={cookie.value}", page)


def bare_app(tmp: Path, synchronous: str) -> tuple[Wsgi, Saves]:
    """benchmarks/load.py's baseline: one SQLAlchemy insert per request, SQLite WAL, BEGIN IMMEDIATE."""
    from flask import Flask, jsonify, request
    from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, event, insert

    engine = create_engine(f"sqlite:///{tmp / f'bare-{synchronous}.sqlite3'}",
                           connect_args={"timeout": 10, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    md = MetaData()
    saves = Table("saves", md, Column("id", Integer, primary_key=True), Column("path", String(200)),
                  Column("body", Text), Column("seq", Integer), Column("saved_at", Float))
    md.create_all(engine)
    app = Flask(f"bare_{synchronous.lower()}")

    @app.put("/api/v1/attempts/<attempt_id>/responses/<question_id>")
    def save(attempt_id: str, question_id: str):  # type: ignore[no-untyped-def]
        data = request.get_json(silent=True) or {}
        t = time.time()
        with engine.begin() as conn:
            conn.execute(insert(saves).values(path=request.path, body=json.dumps(data.get("response")),
                                              seq=data.get("seq"), saved_at=t))
        return jsonify({"saved_at": t, "seq": data.get("seq")})

    return app, Saves([(f"/api/v1/attempts/1/responses/q{i}", "c1") for i in range(1, 21)], None)


def profile(app: Wsgi, saves: Saves, n: int, out: str) -> None:
    import cProfile
    import pstats

    pr = cProfile.Profile(time.process_time)
    pr.enable()
    saves.run(app, n)
    pr.disable()
    pr.dump_stats(out)
    pstats.Stats(pr).sort_stats("cumulative").print_stats(45)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3000, help="saves per app per round (default 3000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, alternating the apps (default 3)")
    ap.add_argument("--full-path", action="store_true",
                    help="also time saves sent with a cookie, which take the full Flask path (no fast lane)")
    ap.add_argument("--profile", metavar="FILE", help="instead: cProfile n saves of the app to FILE and print the top")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qe-autosave-cpu-"))
    os.environ.setdefault("QUIZENGINE_INSTANCE", str(tmp))
    app, common, with_cookie, page = quizengine_app(tmp)
    apps = {"quizengine save": (app, common), "page save": (app, page),
            "page save, full Flask path": (app.wsgi_app.app, page), "bare insert, synchronous=FULL": bare_app(tmp, "FULL"),
            "bare insert, synchronous=NORMAL": bare_app(tmp, "NORMAL")}
    if args.full_path:
        apps["quizengine save, full Flask path"] = (app, with_cookie)
    for app, saves in apps.values():
        saves.run(app, 200)  # warm up: connections, compiled statements, caches
    if args.profile:
        profile(*apps["quizengine save, full Flask path" if args.full_path else "quizengine save"], args.n, args.profile)
        return 0
    best = {name: float("inf") for name in apps}
    for _ in range(args.rounds):
        for name, (app, saves) in apps.items():
            best[name] = min(best[name], saves.run(app, args.n) / args.n)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    print(f"server CPU per request (best of {args.rounds} rounds of {args.n}; load average {' '.join(load)})")
    for name, cpu in best.items():
        print(f"  {name:34s} {cpu * 1000:7.3f} ms")
    app_cpu = best["quizengine save"]
    print(f"  ratio page save full path / fast lane {best['page save, full Flask path'] / best['page save']:6.2f}x")
    for name in [n for n in apps if n.startswith("bare")]:
        print(f"  ratio {name:28s} {best[name] / app_cpu:6.2f}x  (bare CPU / app CPU: the throughput ratio "
              "if CPU bound)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
