"""Server memory after a class has used it: RSS and PSS of the gunicorn master and each worker.

Run:  .venv/bin/python benchmarks/memory_bench.py [--students 36] [--workers 2] [--clients 6]

It imports N students and one instructor into a fresh SQLite database in a temp folder, starts
`quizengine serve --port P --workers W` (gunicorn, gevent workers) and drives a class through it
from this process (threads, plain HTTP to 127.0.0.1):

  every student  logs in twice (POST /api/v1/auth/token, and the login form), opens the dashboard,
                 starts module-04-prep (half through the start form, half through the API), opens
                 the attempt page, saves every question (half through the page's autosave, half
                 through the API), opens the confirmation page, submits (form or API), opens the
                 results page;
  the instructor opens the dashboard, gradebook, grade and response CSVs, item analysis, roster,
                 the bank index, an item page, an attempt's review, the accommodations and
                 settings pages.

It prints, per process (the master, the workers, and the plots' drawing process while it runs),
VmRSS (/proc/PID/status) and Pss / Pss_Anon / Pss_File / Shared / Private
(/proc/PID/smaps_rollup) and the packages with native code it has mapped (numpy, matplotlib, ...)
right after start-up and again after the class, the sums, and the peak
RSS sum sampled every 0.2 s during the class. Target (issue 14): RSS sum under 300 MiB with 2
workers. Exit status 0 when the final RSS sum meets it, 1 when not, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from loadlib.client import make_response  # noqa: E402  (the load benchmark's responses)
from loadlib.proc import free_port, tree, venv_tool, wait_until_serving  # noqa: E402
QUIZ = "module-04-prep"
TARGET_RSS_MIB = 300.0
SEEN: dict[int, str] = {}  # status -> the first request answered with it (4xx, 5xx)
ROLLUP = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- /proc

def memory(pid: int) -> dict[str, int]:
    """VmRSS and the smaps_rollup fields of ``pid``, in KiB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["VmRSS"] = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, rest = line.partition(":")
            if name in ROLLUP:
                out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def packages(pid: int) -> set[str]:
    """The top-level packages with native code mapped in ``pid`` (numpy, matplotlib, PIL, sqlalchemy,
    ...), read from /proc/PID/maps: what a process has imported, pure-Python packages aside."""
    out: set[str] = set()
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
        if "/site-packages/" in path:
            out.add(path.split("/site-packages/", 1)[1].split("/", 1)[0].split(".")[0].removesuffix("_libs"))
    return out


def label(i: int, pid: int) -> str:
    """master, worker N, or the drawing process (quizengine.figure_server, a worker's child)."""
    if i == 0:
        return "master"
    line = cmdline(pid)
    return "drawer" if "figure_server" in line else (f"worker {i}" if line else "(exited)")


def table(title: str, pid: int) -> tuple[float, float]:
    """Print RSS/PSS per process of the server's tree, and the packages each holds; return the sums (MiB)."""
    pids = tree(pid)
    rows = [(p, memory(p)) for p in pids]
    log(f"\n{title}")
    log(f"  {'process':<16} {'pid':>7} {'RSS':>7} {'PSS':>7} {'PSS anon':>9} {'PSS file':>9} {'shared':>7} "
        f"{'private':>8}   (MiB)")
    mib = 1024.0
    for i, (p, m) in enumerate(rows):
        name = label(i, p)
        shared = m.get("Shared_Clean", 0) + m.get("Shared_Dirty", 0)
        private = m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
        log(f"  {name:<16} {p:>7} {m.get('VmRSS', 0) / mib:7.1f} {m.get('Pss', 0) / mib:7.1f} "
            f"{m.get('Pss_Anon', 0) / mib:9.1f} {m.get('Pss_File', 0) / mib:9.1f} {shared / mib:7.1f} {private / mib:8.1f}")
    for i, (p, _) in enumerate(rows):
        name = label(i, p)
        log(f"  {name} {p}: native packages mapped: {', '.join(sorted(packages(p))) or '-'}")
    rss = sum(m.get("VmRSS", 0) for _, m in rows) / mib
    pss = sum(m.get("Pss", 0) for _, m in rows) / mib
    log(f"  {'sum':<16} {'':>7} {rss:7.1f} {pss:7.1f}")
    return rss, pss


class Sampler(threading.Thread):
    """The peak RSS and PSS sums of the server's tree, every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(name="memory-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.stop_event = threading.Event()
        self.peak_rss = self.peak_pss = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            ms = [memory(p) for p in tree(self.pid)]
            self.peak_rss = max(self.peak_rss, sum(m.get("VmRSS", 0) for m in ms))
            self.peak_pss = max(self.peak_pss, sum(m.get("Pss", 0) for m in ms))
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=2)


# ---------------------------------------------------------------- HTTP

class Client:
    """One browser (a cookie jar) that also speaks the JSON API."""

    CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

    def __init__(self, base: str, timeout: float = 60.0):
        self.base, self.timeout = base, timeout
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.token: str | None = None
        self.statuses: dict[int, int] = {}

    def call(self, method: str, path: str, *, form: dict[str, str] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, final URL, text) of one request; redirects followed."""
        data, hdrs = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if self.token and path.startswith("/api/"):
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=hdrs, method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                status, url, text = r.status, r.url, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, url, text = e.code, e.url, e.read().decode("utf-8", "replace")
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 400 and status not in SEEN:
            SEEN[status] = f"{method} {path}: {text[:300]}"
        return status, url, text

    def csrf(self, html: str) -> str:
        m = self.CSRF.search(html)
        if not m:
            raise RuntimeError("no csrf_token on the page")
        return m.group(1)

    def login_form(self, username: str, password: str) -> str:
        _, _, page = self.call("GET", "/login")
        status, url, page = self.call("POST", "/login", form={"csrf_token": self.csrf(page), "username": username,
                                                               "password": password})
        if status != 200 or url.rstrip("/").endswith("/login"):
            raise RuntimeError(f"form login of {username} failed ({status}, {url})")
        return page


def student(base: str, i: int) -> dict[int, int]:
    """One student's whole quiz, through the pages (even i) or the API (odd i); the statuses seen."""
    rng = random.Random(i)
    c = Client(base)
    user, pw = f"s{i}", f"password-{i:04d}"
    status, _, text = c.call("POST", "/api/v1/auth/token", body={"username": user, "password": pw})
    if status != 200:
        raise RuntimeError(f"token for {user}: {status} {text[:200]}")
    c.token = json.loads(text)["token"]
    dashboard = c.login_form(user, pw)
    pages = i % 2 == 0
    if pages:
        status, url, page = c.call("POST", f"/quizzes/{QUIZ}/start", form={"csrf_token": c.csrf(dashboard)})
        attempt_id = int(re.search(r"/attempts/(\d+)", url).group(1))  # type: ignore[union-attr]
    else:
        status, _, text = c.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts")
        attempt_id = json.loads(text)["attempt_id"]
        status, _, page = c.call("GET", f"/attempts/{attempt_id}")
    token = c.csrf(page)
    _, _, text = c.call("GET", f"/api/v1/attempts/{attempt_id}")
    for seq, q in enumerate(json.loads(text)["questions"], start=1):
        value = make_response(q, rng)
        if pages:
            c.call("POST", f"/attempts/{attempt_id}/autosave", body={"question": q["id"], "response": value, "seq": seq},
                   headers={"X-CSRFToken": token})
        else:
            c.call("PUT", f"/api/v1/attempts/{attempt_id}/responses/{q['id']}", body={"response": value, "seq": seq})
    _, _, page = c.call("GET", f"/attempts/{attempt_id}/confirm")
    if pages:
        c.call("POST", f"/attempts/{attempt_id}/submit", form={"csrf_token": c.csrf(page)})
    else:
        c.call("POST", f"/api/v1/attempts/{attempt_id}/submit")
        c.call("GET", f"/attempts/{attempt_id}/result")
    c.call("GET", "/dashboard")
    return c.statuses


def instructor(base: str, password: str) -> dict[int, int]:
    """The instructor's pages after the class; the statuses seen."""
    c = Client(base, timeout=600.0)  # the bank pages validate every bank once (seconds of CPU)
    c.login_form("teacher", password)
    for path in ("/instructor/", f"/instructor/quizzes/{QUIZ}/gradebook", f"/instructor/quizzes/{QUIZ}/grades.csv",
                 f"/instructor/quizzes/{QUIZ}/grades.csv?format=canvas", f"/instructor/quizzes/{QUIZ}/responses.csv",
                 f"/instructor/quizzes/{QUIZ}/analysis", f"/instructor/quizzes/{QUIZ}/analysis?attempts=all",
                 "/instructor/roster", "/instructor/banks/", f"/instructor/quizzes/{QUIZ}/accommodations",
                 f"/instructor/quizzes/{QUIZ}/settings", "/instructor/attempts/1"):
        c.call("GET", path)
    _, _, page = c.call("GET", "/instructor/banks/")
    m = re.search(r'href="(/instructor/banks/items/[^"]+)"', page)
    if m:
        c.call("GET", m.group(1))
    return c.statuses


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=36)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=6, help="students at once")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (database, server log)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    log(f"load average {Path('/proc/loadavg').read_text().split()[:3]}; python {sys.version.split()[0]}")
    tmp = Path(tempfile.mkdtemp(prefix="qe-mem-"))
    env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "memory-benchmark",
           "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": f"sqlite:///{tmp / 'qe.sqlite3'}",
           "QUIZENGINE_LOGINS_PER_ADDRESS": "0"}
    exe = venv_tool("quizengine")
    server: subprocess.Popen | None = None
    try:
        roster = tmp / "roster.csv"
        roster.write_text("username,full_name,student_id,email,password\n" + "".join(
            f"s{i},Student {i},{100000 + i},s{i}@example.org,password-{i:04d}\n" for i in range(args.students)))
        t0 = time.monotonic()
        for cmd, stdin in (([exe, "users", "import", str(roster)], None),
                           ([exe, "users", "add", "teacher", "--role", "instructor", "--password-stdin"], "teacher-pw-1\n")):
            r = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise SystemExit(f"error: {' '.join(cmd[1:3])} failed:\n{r.stdout}{r.stderr}")
        log(f"imported {args.students} students and an instructor in {time.monotonic() - t0:.1f} s")

        port = free_port()
        logfile = tmp / "server.log"
        with open(logfile, "wb") as fh:
            server = subprocess.Popen([exe, "serve", "--port", str(port), "--workers", str(args.workers)], env=env,
                                      stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until_serving(port, server, logfile, args.workers)
        start_rss, start_pss = table("after start-up (no request yet)", server.pid)

        base = f"http://127.0.0.1:{port}"
        sampler = Sampler(server.pid)
        sampler.start()
        t0 = time.monotonic()
        statuses: dict[int, int] = {}
        failures: list[str] = []
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(student, base, i) for i in range(args.students)]
            for f in futures:
                try:
                    for k, v in f.result().items():
                        statuses[k] = statuses.get(k, 0) + v
                except Exception as e:  # noqa: BLE001 - reported, and the exit status says so
                    failures.append(str(e))
        for k, v in instructor(base, "teacher-pw-1").items():
            statuses[k] = statuses.get(k, 0) + v
        sampler.stop()
        log(f"\nclass: {args.students} students ({args.clients} at once) and the instructor in "
            f"{time.monotonic() - t0:.1f} s; statuses {dict(sorted(statuses.items()))}"
            + (f"; {len(failures)} failed, first: {failures[0]}" if failures else ""))
        for status, first in sorted(SEEN.items()):
            log(f"  first {status}: {first}")
        time.sleep(0.5)
        rss, pss = table("after the class", server.pid)
        log(f"\npeak during the class: RSS sum {sampler.peak_rss / 1024:.1f} MiB, PSS sum {sampler.peak_pss / 1024:.1f} MiB")
        ok = rss < TARGET_RSS_MIB
        log(f"target RSS sum < {TARGET_RSS_MIB:.0f} MiB: {rss:.1f} MiB  {'PASS' if ok else 'MISS'}  "
            f"(start-up {start_rss:.1f}, PSS {start_pss:.1f} -> {pss:.1f})")
        log(f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
        if failures or any(k >= 500 for k in statuses):
            return 2
        return 0 if ok else 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
