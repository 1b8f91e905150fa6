"""Class-size load benchmark: a whole class against the real server (`quizengine serve`, gunicorn).

Run:  .venv/bin/python benchmarks/load.py [--students 300] [--workers 2] [--quick]
      .venv/bin/python benchmarks/load.py --postgres                 # a throwaway PostgreSQL cluster
      .venv/bin/python benchmarks/load.py --database-url postgresql+psycopg://u:pw@127.0.0.1/db
                                         # EMPTIES that database first (drops every table in it)

It imports N students with `quizengine users import` into a fresh database (SQLite WAL in a temp
folder, or PostgreSQL), starts `quizengine serve --port P --workers W` (gunicorn, gevent workers)
and, from this process (asyncio, one connection per request, all traffic to 127.0.0.1), simulates
the class, in this order:

  login    every student asks for a token (POST /api/v1/auth/token), open loop, Poisson arrivals
           at --login-rate per second;
  spike    (c) every student starts an attempt of module-04-prep within the same second;
  paced    (a) open loop: each student autosaves its 20 answers (PUT .../responses/qK with a valid
           response for the question's type and an increasing seq) as a Poisson process, one save
           every --save-interval s on average (300 students -> 100 saves/s), then submits;
           latencies are measured from the scheduled send time (no coordinated omission);
  verify   every stored response equals the last acknowledged one (GET /api/v1/attempts/{id});
  start #2 every student starts a second attempt (closed loop, a few at a time);
  saturate (b) wrk (Debian's /usr/bin/wrk) with a generated Lua script cycles through the
           students' autosaves on their second attempts (each wrk thread owns a disjoint set of
           (attempt, question) slots; seq is the thread's request counter, so it only grows per
           slot; the Lua script records the highest acknowledged seq per slot from the answers),
           then the same wrk run against a BASELINE: a minimal Flask app doing one SQLite insert
           through SQLAlchemy (WAL, synchronous=FULL, BEGIN IMMEDIATE) served by gunicorn with
           the same settings and worker count (also on PostgreSQL runs); --rounds (default 2)
           alternating rounds, the best round of each counts (the disk makes single runs noisy);
           then the stored state is checked again.

The server's memory is the sum of the RSS of the gunicorn master and its workers, sampled from
/proc every 0.2 s for the whole run. A summary block lists the targets with PASS/MISS; the exit
status is 0 when every target passes, 1 otherwise, 2 when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUIZ = "module-04-prep"
WRK = "/usr/bin/wrk"
TIMEOUT = -1  # pseudo status: the request timed out
CONN_ERROR = 0  # pseudo status: connection refused/reset

TARGET_SAVE_P95_MS = 50.0
TARGET_THROUGHPUT_RATIO = 0.5
TARGET_MEMORY_MIB = 300.0
TARGET_SPIKE_P95_S = 1.0


# ---------------------------------------------------------------- small helpers

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_tool(name: str) -> str:
    near = Path(sys.executable).with_name(name)
    if near.exists():
        return str(near)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"error: {name} not found next to {sys.executable} nor on PATH (install the project first)")
    return found


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, AttributeError):
        pass
    try:
        load = ", load average before the run " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = ""
    return f"nproc {nproc}, {model}{mem}, Linux {platform.release()}, Python {platform.python_version()}{load}"


# ---------------------------------------------------------------- processes (always cleaned up)

class Processes:
    """Every child process this script starts, each in its own session; all are killed on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], logfile: Path, env: dict[str, str] | None = None,
              cwd: str | None = None) -> subprocess.Popen:
        fh = open(logfile, "w")
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        fh.close()
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, grace: float = 10.0) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # the group we created: gunicorn master + its workers
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        else:  # the leader is gone: make sure no worker of its group survives
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(reversed(self.procs)):
            try:
                self.stop(p, grace=5.0)
            except Exception as e:  # noqa: BLE001 - keep cleaning up the others
                print(f"warning: could not stop process {p.pid}: {e}", file=sys.stderr)


def wait_for_port(port: int, proc: subprocess.Popen, logfile: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited with status {proc.returncode}; see {logfile}:\n"
                             + tail(logfile))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"error: nothing listens on port {port} after {timeout:.0f} s; see {logfile}")


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class MemorySampler(threading.Thread):
    """Peak of the summed RSS (and PSS) of a process and all its descendants, every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.stop_event = threading.Event()
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.peak_procs = 0
        self.samples = 0
        self.marks: dict[str, int] = {}  # phase name -> peak RSS during it
        self.peak_split: list[int] = []  # RSS (KiB) of each process at the peak, master first
        self.phase = "startup"
        self.phases: list[tuple[str, float, float, float, float, float]] = []  # name, wall, CPU s: server,
        # this script, finished children (wrk), the whole machine
        self.hz = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        """utime + stime of the server's processes (gunicorn master and workers), in s."""
        total = 0
        for p in self.tree():
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / self.hz

    def enter(self, phase: str) -> None:
        """Mark the start of a phase: its peak RSS, wall time and CPU (server, this client) are kept."""
        t = os.times()
        self.phases.append((phase, time.monotonic(), self.cpu_seconds(), t.user + t.system,
                            t.children_user + t.children_system, self.machine_busy()))
        self.phase = phase

    def machine_busy(self) -> float:
        """CPU seconds the whole machine spent busy (all CPUs, /proc/stat), including steal."""
        try:
            f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)) / self.hz
        except (OSError, ValueError, IndexError):
            return float("nan")

    def phase_table(self) -> list[tuple[str, float, float, float, float, float]]:
        """Per phase: wall s, CPU s of the server, this script, finished children (wrk), everything else."""
        out = []
        for (name, w0, s0, c0, k0, m0), (_, w1, s1, c1, k1, m1) in zip(self.phases, self.phases[1:]):
            others = (m1 - m0) - (s1 - s0) - (c1 - c0) - (k1 - k0)
            out.append((name, w1 - w0, s1 - s0, c1 - c0, k1 - k0, max(others, 0.0)))
        return out

    @staticmethod
    def _children(pid: int) -> list[int]:
        out: list[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                try:
                    out += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
                except OSError:
                    pass
        except OSError:
            pass
        return out

    def tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            todo += self._children(p)
        return pids

    @staticmethod
    def _field(path: str, name: str) -> int:
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith(name):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def sample(self) -> None:
        pids = self.tree()
        split = [self._field(f"/proc/{p}/status", "VmRSS:") for p in pids]
        rss = sum(split)
        if rss > self.peak_rss_kib:
            self.peak_split = split
        pss = sum(self._field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
        self.samples += 1
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.peak_pss_kib = max(self.peak_pss_kib, pss)
        self.peak_procs = max(self.peak_procs, len(pids))
        self.marks[self.phase] = max(self.marks.get(self.phase, 0), rss)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=2)


# ---------------------------------------------------------------- the HTTP client (asyncio)

class Http:
    """A minimal HTTP/1.1 client: one connection per request (gunicorn's sync workers close it anyway)."""

    def __init__(self, port: int, limit: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.sem = asyncio.Semaphore(limit)

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n"
                f"Content-Length: {len(payload)}\r\n")
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        raw = head.encode() + b"\r\n" + payload
        async with self.sem:
            try:
                return await asyncio.wait_for(self._exchange(raw), self.timeout)
            except asyncio.TimeoutError:
                return TIMEOUT, None
            except (OSError, ValueError, IndexError) as e:
                return CONN_ERROR, str(e)

    async def _exchange(self, raw: bytes) -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            data = await reader.read()  # until the server closes (Connection: close)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                body = body[:int(v)]
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body.decode(errors="replace")


@dataclass
class Endpoint:
    """Latencies (s, from the scheduled send time) and failures of one endpoint in one phase."""
    name: str
    lat: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def record(self, latency: float, status: int, data: Any, ok: tuple[int, ...]) -> bool:
        self.lat.append(latency)
        if status in ok:
            return True
        key = {TIMEOUT: "timeout", CONN_ERROR: "connection error"}.get(status, str(status))
        self.errors[key] = self.errors.get(key, 0) + 1
        if len(self.examples) < 3:
            self.examples.append(f"{key}: {str(data)[:200]}")
        return False

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def line(self) -> str:
        if not self.lat:
            return f"  {self.name:<22} n=0"
        ms = [x * 1e3 for x in self.lat]
        err = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "0"
        return (f"  {self.name:<22} n={len(ms):<6} p50 {percentile(ms, 50):8.1f}  p95 {percentile(ms, 95):8.1f}  "
                f"p99 {percentile(ms, 99):8.1f}  max {max(ms):8.1f} ms   errors {err}")


@dataclass
class Student:
    i: int
    username: str
    password: str
    token: str | None = None
    attempt: dict[str, Any] | None = None
    attempt2: dict[str, Any] | None = None
    acked: dict[str, tuple[int, Any]] = field(default_factory=dict)  # qid -> (seq, value) last acknowledged
    pending: list[asyncio.Task] = field(default_factory=list)


def make_response(q: dict[str, Any], rng: random.Random) -> Any:
    """A valid response for the question's type (README, "JSON API"), random but well formed."""
    kind = q["type"]
    if kind == "single_choice":
        return rng.choice(q["choices"])["id"]
    if kind == "multiple_select":
        ids = [c["id"] for c in q["choices"]]
        return rng.sample(ids, rng.randint(1, len(ids)))
    if kind == "true_false":
        return rng.random() < 0.5
    if kind == "numeric":
        def build(shape: list[int]) -> Any:
            return round(rng.uniform(-3, 3), 4) if not shape else [build(shape[1:]) for _ in range(shape[0])]
        return build(list(q.get("shape") or []))
    if kind == "short_text":
        return f"answer {rng.randrange(10**6)}"
    if kind == "matching":
        rights = [r["id"] for r in q["rights"]]
        return {left["id"]: rng.choice(rights) for left in q["lefts"]}
    if kind == "ordering":
        ids = [o["id"] for o in q["options"]]
        rng.shuffle(ids)
        return ids
    raise SystemExit(f"error: question type {kind!r} unknown to this benchmark")


async def open_loop(events: list[tuple[float, Any]], fire) -> None:  # type: ignore[no-untyped-def]
    """Start ``fire(t_sched, payload)`` at each scheduled time, whatever the server is doing."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks = []
    for offset, payload in sorted(events, key=lambda e: e[0]):
        t = t0 + offset
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(t, payload)))
    await asyncio.gather(*tasks)


# ---------------------------------------------------------------- phases

class Bench:
    def __init__(self, args: argparse.Namespace, port: int):
        self.args = args
        self.port = port
        self.rng = random.Random(args.seed)
        self.students = [Student(i, f"s{i}", f"password-{i:04d}") for i in range(args.students)]
        self.ep: dict[str, Endpoint] = {}
        self.lost_paced = 0
        self.checked_paced = 0
        self.unacked_stored = 0
        self.verify_notes: list[str] = []

    def endpoint(self, phase: str, name: str) -> Endpoint:
        key = f"{phase}/{name}"
        if key not in self.ep:
            self.ep[key] = Endpoint(f"{name} ({phase})")
        return self.ep[key]

    async def run_class(self, mem: MemorySampler) -> None:
        a = self.args
        http = Http(self.port, limit=a.max_connections, timeout=a.timeout)
        loop = asyncio.get_running_loop()
        n = len(self.students)

        # login: Poisson arrivals
        mem.enter("login")
        ep = self.endpoint("login", "token")
        t, events = 0.0, []
        for s in self.students:
            t += self.rng.expovariate(a.login_rate)
            events.append((t, s))
        log(f"login: {n} students at {a.login_rate:g}/s (Poisson), ~{t:.0f} s")

        async def login(t_sched: float, s: Student) -> None:
            st, data = await http.call("POST", "/api/v1/auth/token", {"username": s.username, "password": s.password})
            if ep.record(loop.time() - t_sched, st, data, (200,)):
                s.token = data["token"]

        await open_loop(events, login)
        log(ep.line().strip())

        # spike: every student starts within the same second
        mem.enter("spike")
        ep = self.endpoint("spike", "start")
        ready = [s for s in self.students if s.token]
        log(f"spike: {len(ready)} students start {QUIZ} within 1 s")

        async def start(t_sched: float, s: Student) -> None:
            st, data = await http.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=s.token)
            if ep.record(loop.time() - t_sched, st, data, (201,)):
                s.attempt = data

        await open_loop([(self.rng.random(), s) for s in ready], start)
        log(ep.line().strip())

        # paced autosaves and submits (open loop)
        mem.enter("paced")
        ep_save, ep_submit = self.endpoint("paced", "autosave"), self.endpoint("paced", "submit")
        going = [s for s in self.students if s.attempt]
        events = []
        last = 0.0
        for s in going:
            t = 0.0
            for k, q in enumerate(s.attempt["questions"]):  # type: ignore[index]
                t += self.rng.expovariate(1.0 / a.save_interval)
                events.append((t, ("save", s, q, k + 1, make_response(q, self.rng))))
            t += self.rng.expovariate(1.0 / a.save_interval)
            events.append((t, ("submit", s, None, 0, None)))
            last = max(last, t)
        saves = sum(1 for e in events if e[1][0] == "save")
        log(f"paced: {saves} autosaves + {len(going)} submits, each student one save per {a.save_interval:g} s "
            f"on average (~{len(going) / a.save_interval:.0f} saves/s), ~{last:.0f} s")

        async def save(s: Student, q: dict, seq: int, value: Any, t_sched: float) -> None:
            aid = s.attempt["attempt_id"]  # type: ignore[index]
            st, data = await http.call("PUT", f"/api/v1/attempts/{aid}/responses/{q['id']}",
                                       {"response": value, "seq": seq}, token=s.token)
            if ep_save.record(loop.time() - t_sched, st, data, (200,)):
                prev = s.acked.get(q["id"])
                if prev is None or prev[0] < seq:
                    s.acked[q["id"]] = (seq, value)

        async def fire(t_sched: float, ev: tuple) -> None:
            kind, s, q, seq, value = ev
            if kind == "save":
                task = asyncio.create_task(save(s, q, seq, value, t_sched))
                s.pending.append(task)
                await task
                return
            # a client submits once its saves are answered; the latency still counts from t_sched
            await asyncio.gather(*s.pending)
            st, data = await http.call("POST", f"/api/v1/attempts/{s.attempt['attempt_id']}/submit", token=s.token)
            ep_submit.record(loop.time() - t_sched, st, data, (200,))

        await open_loop(events, fire)
        log(ep_save.line().strip())
        log(ep_submit.line().strip())

        # verify the stored state of the first attempts
        mem.enter("verify")
        await self.verify_paced(http, going)

        # second attempts, for the saturation phase
        mem.enter("start #2")
        ep = self.endpoint("prepare", "start #2")
        sem = asyncio.Semaphore(4)

        async def start2(s: Student) -> None:
            async with sem:
                t0 = loop.time()
                st, data = await http.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=s.token)
                if ep.record(loop.time() - t0, st, data, (201,)):
                    s.attempt2 = data

        await asyncio.gather(*(start2(s) for s in going))
        log(ep.line().strip() + "   (closed loop, 4 at a time)")

    async def verify_paced(self, http: Http, going: list[Student]) -> None:
        ep = self.endpoint("verify", "GET attempt")
        sem = asyncio.Semaphore(8)
        loop = asyncio.get_running_loop()

        async def check(s: Student) -> None:
            async with sem:
                t0 = loop.time()
                st, data = await http.call("GET", f"/api/v1/attempts/{s.attempt['attempt_id']}", token=s.token)
                if not ep.record(loop.time() - t0, st, data, (200,)):
                    self.verify_notes.append(f"could not read attempt {s.attempt['attempt_id']}: {st}")
                    self.lost_paced += len(s.acked)  # unverifiable counts as lost
                    return
            if data.get("state") != "submitted":
                self.verify_notes.append(f"attempt {data['attempt_id']} is {data.get('state')}, not submitted")
            stored = {q["id"]: q for q in data["questions"]}
            for qid, q in stored.items():
                acked = s.acked.get(qid)
                if acked is None:
                    if q.get("response") is not None:
                        self.unacked_stored += 1  # e.g. a timed-out save the server did store
                    continue
                self.checked_paced += 1
                seq, value = acked
                sseq = q.get("seq") or 0
                if sseq < seq or (sseq == seq and q.get("response") != value):
                    self.lost_paced += 1
                    if len(self.verify_notes) < 10:
                        self.verify_notes.append(f"attempt {data['attempt_id']} {qid}: acknowledged seq {seq} "
                                                 f"{json.dumps(value)[:60]}, stored seq {sseq} "
                                                 f"{json.dumps(q.get('response'))[:60]}")

        await asyncio.gather(*(check(s) for s in going))
        log(f"verify: {self.checked_paced} acknowledged answers checked, {self.lost_paced} lost"
            + (f", {self.unacked_stored} stored without acknowledgement" if self.unacked_stored else ""))

    # ------------------------------------------------------------ saturation (wrk)

    def saturation_slots(self) -> list[tuple[Student, dict, Any]]:
        """(student, question, response) of every open second attempt, interleaved across students."""
        ready = [s for s in self.students if s.attempt2]
        nq = max((len(s.attempt2["questions"]) for s in ready), default=0)  # type: ignore[index]
        slots = []
        for k in range(nq):
            for s in ready:
                qs = s.attempt2["questions"]  # type: ignore[index]
                if k < len(qs):
                    slots.append((s, qs[k], make_response(qs[k], self.rng)))
        return slots

    async def verify_saturation(self, slots: list[tuple[Student, dict, Any]], acked: dict[int, int]) -> tuple[int, int, list[str]]:
        """Lost = a slot whose stored seq is below the highest acknowledged one, or whose value differs."""
        http = Http(self.port, limit=8, timeout=self.args.timeout)
        by_attempt: dict[int, Any] = {}
        students = {s.attempt2["attempt_id"]: s for s, _, _ in slots}  # type: ignore[index]
        sem = asyncio.Semaphore(8)
        ep = self.endpoint("verify", "GET attempt #2")
        loop = asyncio.get_running_loop()

        async def get(aid: int, s: Student) -> None:
            async with sem:
                t0 = loop.time()
                st, data = await http.call("GET", f"/api/v1/attempts/{aid}", token=s.token)
                if ep.record(loop.time() - t0, st, data, (200,)):
                    by_attempt[aid] = {q["id"]: q for q in data["questions"]}

        await asyncio.gather(*(get(aid, s) for aid, s in students.items()))
        lost, checked, notes = 0, 0, []
        for idx, (s, q, value) in enumerate(slots, start=1):
            stored_q = by_attempt.get(s.attempt2["attempt_id"], {}).get(q["id"])  # type: ignore[index]
            seq = acked.get(idx)
            if stored_q is None:
                lost += seq is not None
                continue
            if stored_q.get("response") is not None and stored_q.get("response") != value:
                lost += 1  # a value nobody sent for this slot
                notes.append(f"attempt {s.attempt2['attempt_id']} {q['id']}: stored {stored_q.get('response')!r}")
                continue
            if seq is None:
                continue
            checked += 1
            if (stored_q.get("seq") or 0) < seq:
                lost += 1
                if len(notes) < 10:
                    notes.append(f"attempt {s.attempt2['attempt_id']} {q['id']}: acknowledged seq {seq}, "
                                 f"stored seq {stored_q.get('seq')}")
        return lost, checked, notes


def lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_lua(path: Path, slots: list[tuple[Student, dict, Any]], threads: int) -> None:
    """The wrk script: thread t owns slots t+1, t+1+T, ...; seq = the thread's request counter."""
    tokens: dict[int, int] = {}
    tok_lines, slot_lines = [], []
    for s, q, value in slots:
        if s.i not in tokens:
            tokens[s.i] = len(tokens) + 1
            tok_lines.append(lua_str(s.token or ""))
        aid = s.attempt2["attempt_id"]  # type: ignore[index]
        slot_lines.append("{%s,%d,%s}" % (lua_str(f"/api/v1/attempts/{aid}/responses/{q['id']}"), tokens[s.i],
                                          lua_str(json.dumps(value, separators=(",", ":")))))
    path.write_text(f"""-- generated by benchmarks/load.py: autosaves of real students to their own open attempts
local NTHREADS = {threads}
local tokens = {{
{(','+chr(10)).join(tok_lines)}
}}
local slots = {{
{(','+chr(10)).join(slot_lines)}
}}
local threads = {{}}
local nextid = 0

function setup(thread)
  thread:set("tid", nextid)
  nextid = nextid + 1
  table.insert(threads, thread)
end

function init(args)
  mine = {{}}
  for i = 1, #slots do
    if (i - 1) % NTHREADS == tid then mine[#mine + 1] = i end
  end
  base = tonumber(args[1]) or 0  -- a later round's seqs start above every earlier one
  issued = 0
  statuses = {{}}
  acked = {{}}
  host = wrk.headers["Host"]
end

function request()
  issued = issued + 1
  local idx = mine[(issued - 1) % #mine + 1]
  local s = slots[idx]
  local body = '{{"response":' .. s[3] .. ',"seq":' .. (base + issued) .. '}}'
  return "PUT " .. s[1] .. " HTTP/1.1\\r\\nHost: " .. host .. "\\r\\nAuthorization: Bearer " .. tokens[s[2]] ..
         "\\r\\nContent-Type: application/json\\r\\nContent-Length: " .. #body .. "\\r\\n\\r\\n" .. body
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and body then
    local q = tonumber(string.match(body, '"seq":%s*(%d+)'))
    if q and q > base then
      local idx = mine[(q - base - 1) % #mine + 1]
      if (acked[idx] or 0) < q then acked[idx] = q end
    end
  end
end

function done(summary, latency, requests)
  local parts = {{}}
  for _, t in ipairs(threads) do
    local st, ac = t:get("statuses"), t:get("acked")
    local s1, a1 = {{}}, {{}}
    for k, v in pairs(st) do s1[#s1 + 1] = '"' .. k .. '":' .. v end
    for k, v in pairs(ac) do a1[#a1 + 1] = '[' .. k .. ',' .. v .. ']' end
    parts[#parts + 1] = '{{"issued":' .. t:get("issued") .. ',"statuses":{{' .. table.concat(s1, ",") ..
                        '}},"acked":[' .. table.concat(a1, ",") .. ']}}'
  end
  io.write("LOADJSON [" .. table.concat(parts, ",") .. "]\\n")
  io.write(string.format("LOADERRORS %d %d %d %d %d %d\\n", summary.requests, summary.errors.connect,
           summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
""")


@dataclass
class WrkResult:
    rps: float
    requests: int
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    acked: dict[int, int]
    latency_line: str
    raw: str

    @property
    def n_errors(self) -> int:
        bad = sum(v for k, v in self.statuses.items() if not k.startswith("2"))
        return bad + sum(self.socket_errors.values())


def run_wrk(port: int, script: Path, args: argparse.Namespace, procs: Processes, logfile: Path,
            seq_base: int = 0) -> WrkResult:
    cmd = [WRK, "-t", str(args.wrk_threads), "-c", str(args.wrk_connections), "-d", f"{args.duration}s",
           "--timeout", "10s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/", "--", str(seq_base)]
    p = procs.start(cmd, logfile)
    try:
        p.wait(timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        procs.stop(p)
        raise SystemExit(f"error: wrk did not finish; see {logfile}")
    if p in procs.procs:
        procs.procs.remove(p)
    out = logfile.read_text(errors="replace")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    j = re.search(r"^LOADJSON (.*)$", out, re.M)
    e = re.search(r"^LOADERRORS (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if p.returncode != 0 or not (m and j and e):
        raise SystemExit(f"error: wrk failed (status {p.returncode}); its output:\n{out[-3000:]}")
    threads = json.loads(j.group(1))
    statuses: dict[str, int] = {}
    acked: dict[int, int] = {}
    for t in threads:
        for k, v in t["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for idx, seq in t["acked"]:
            acked[idx] = max(acked.get(idx, 0), seq)
    total, conn, read, write, _status, timeout = map(int, e.groups())
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    latency_line = (f"latency mean {lat.group(1)}, p50 {pct.get('50', '?')}, p90 {pct.get('90', '?')}, "
                    f"p99 {pct.get('99', '?')}, max {lat.group(3)}") if lat else ""
    return WrkResult(float(m.group(1)), total, statuses,
                     {k: v for k, v in {"connect": conn, "read": read, "write": write, "timeout": timeout}.items() if v},
                     acked, latency_line, out)


BASELINE_APP = '''"""The baseline: one SQLite insert through SQLAlchemy per request (written by benchmarks/load.py)."""
import json
import os
import time

from flask import Flask, jsonify, request
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, event, insert

engine = create_engine("sqlite:///" + os.environ["BASELINE_DB"],
                       connect_args={"timeout": 10, "check_same_thread": False})


@event.listens_for(engine, "connect")
def on_connect(dbapi_conn, record):
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


@event.listens_for(engine, "begin")
def on_begin(conn):
    conn.exec_driver_sql("BEGIN IMMEDIATE")


md = MetaData()
saves = Table("saves", md, Column("id", Integer, primary_key=True), Column("path", String(200)),
              Column("body", Text), Column("seq", Integer), Column("saved_at", Float))
md.create_all(engine)
engine.dispose()  # no connection shared across gunicorn's fork

app = Flask(__name__)


@app.put("/api/v1/attempts/<attempt_id>/responses/<question_id>")
def save(attempt_id, question_id):
    data = request.get_json(silent=True) or {}
    t = time.time()
    with engine.begin() as conn:
        conn.execute(insert(saves).values(path=request.path, body=json.dumps(data.get("response")),
                                          seq=data.get("seq"), saved_at=t))
    return jsonify({"saved_at": t, "seq": data.get("seq")})
'''


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


def redacted(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=None, help="class size N (default 300; 50 with --quick)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers, for the server (gevent) and the baseline (sync)")
    ap.add_argument("--database-url", help="a PostgreSQL SQLAlchemy URL; the database is EMPTIED first")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL cluster (tests/pg.py)")
    ap.add_argument("--duration", type=int, default=None, help="wrk duration in s (default 10; 5 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a fast check: N=50, one save per 1 s, wrk 5 s")
    ap.add_argument("--save-interval", type=float, default=None,
                    help="mean s between one student's saves (default 3; 1 with --quick)")
    ap.add_argument("--login-rate", type=float, default=5.0, help="logins per s in the login phase (default 5)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="saturation rounds, each quizengine then baseline; the best of each counts (default 2)")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--wrk-connections", type=int, default=16)
    ap.add_argument("--max-connections", type=int, default=1000, help="client connections open at once")
    ap.add_argument("--timeout", type=float, default=30.0, help="client timeout per request, s")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, databases, Lua script)")
    a = ap.parse_args()
    a.students = a.students or (50 if a.quick else 300)
    a.duration = a.duration or (5 if a.quick else 10)
    a.save_interval = a.save_interval or (1.0 if a.quick else 3.0)
    if not 1 <= a.students <= 5000:
        ap.error("--students must be between 1 and 5000")
    if not 1 <= a.workers <= 64:
        ap.error("--workers must be between 1 and 64")
    if not 1 <= a.duration <= 600:
        ap.error("--duration must be between 1 and 600 s")
    if not 1 <= a.rounds <= 5:
        ap.error("--rounds must be between 1 and 5")
    if a.wrk_connections < a.wrk_threads:
        ap.error("--wrk-connections must be at least --wrk-threads")
    if a.postgres and a.database_url:
        ap.error("give --postgres or --database-url, not both")
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
    if not os.access(WRK, os.X_OK):
        print(f"error: {WRK} not found: the saturation phase needs Debian's wrk; install it with\n"
              "    apt-get install wrk", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="qe-load-"))
    keep = args.keep
    stack = ExitStack()
    mem: MemorySampler | None = None
    try:
        if args.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.pg import throwaway_postgres

            log("starting a throwaway PostgreSQL cluster")
            args.database_url = stack.enter_context(throwaway_postgres())
        if args.database_url:
            db_desc = prepare_postgres(args.database_url) + f" ({redacted(args.database_url)})"
            db_desc += ", throwaway cluster, fsync=off" if args.postgres else ""
            url = args.database_url
        else:
            url = f"sqlite:///{tmp / 'quizengine.sqlite3'}"
            db_desc = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL, file in {tmp})"

        env = {**os.environ, "QUIZENGINE_INSTANCE": str(tmp), "QUIZENGINE_SECRET_KEY": "load-benchmark",
               "QUIZENGINE_BANKS": str(ROOT / "banks"), "QUIZENGINE_DATABASE_URL": url,
               # every simulated student comes from 127.0.0.1: the per-address login rate would
               # measure the throttle, not the server (a real class has many addresses)
               "QUIZENGINE_LOGINS_PER_ADDRESS": "0"}
        n = args.students
        roster = tmp / "roster.csv"
        roster.write_text("username,full_name,student_id,email,password\n" + "".join(
            f"s{i},Student {i},{100000 + i},s{i}@example.org,password-{i:04d}\n" for i in range(n)))
        exe = venv_tool("quizengine")
        log(f"importing {n} students (quizengine users import; PBKDF2 600k per password)")
        t0 = time.monotonic()
        r = subprocess.run([exe, "users", "import", str(roster)], env=env, capture_output=True, text=True,
                           timeout=120 + n * 2)
        if r.returncode != 0:
            raise SystemExit(f"error: users import failed:\n{r.stdout}{r.stderr}")
        log(f"imported in {time.monotonic() - t0:.1f} s")

        port = free_port()
        server_log = tmp / "server.log"
        server = procs.start([exe, "serve", "--port", str(port), "--workers", str(args.workers)], server_log, env=env)
        wait_for_port(port, server, server_log)
        mem = MemorySampler(server.pid)
        mem.start()
        log(f"server: quizengine serve on 127.0.0.1:{port}, {args.workers} gevent workers (pid {server.pid})")

        bench = Bench(args, port)
        asyncio.run(bench.run_class(mem))

        # saturation
        slots = bench.saturation_slots()
        if not slots:
            raise SystemExit("error: no student has an open second attempt; nothing to saturate")
        lua = tmp / "autosave.lua"
        write_lua(lua, slots, args.wrk_threads)
        (tmp / "baseline_app.py").write_text(BASELINE_APP)
        bport = free_port()
        blog = tmp / "baseline.log"
        benv = {**os.environ, "BASELINE_DB": str(tmp / "baseline.sqlite3"), "PYTHONPATH": str(tmp)}
        baseline = procs.start([venv_tool("gunicorn"), "--bind", f"127.0.0.1:{bport}", "--workers", str(args.workers),
                                "--worker-class", "sync", "--timeout", "60", "--preload", "--access-logfile", "-",
                                "--chdir", str(tmp), "baseline_app:app"], blog, env=benv)
        wait_for_port(bport, baseline, blog)
        log(f"saturation: wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.duration}s over "
            f"{len(slots)} (attempt, question) slots of {len({s.i for s, _, _ in slots})} students; "
            f"{args.rounds} round(s) of quizengine then baseline (Flask + SQLAlchemy, one SQLite insert per "
            f"request, gunicorn {args.workers} sync workers on 127.0.0.1:{bport}); the best round of each counts")
        sats: list[WrkResult] = []
        bases: list[WrkResult] = []
        for r in range(args.rounds):
            mem.enter(f"saturation #{r + 1}")
            res = run_wrk(port, lua, args, procs, tmp / f"wrk-server-{r + 1}.log", seq_base=r * 10**9)
            sats.append(res)
            log(f"  quizengine autosave #{r + 1}: {res.rps:.0f} requests/s, {res.requests} requests, statuses "
                f"{res.statuses}" + (f", socket errors {res.socket_errors}" if res.socket_errors else "")
                + f"; {res.latency_line}")
            mem.enter(f"baseline #{r + 1} (server idle)")
            res = run_wrk(bport, lua, args, procs, tmp / f"wrk-baseline-{r + 1}.log", seq_base=r * 10**9)
            bases.append(res)
            log(f"  baseline insert    #{r + 1}: {res.rps:.0f} requests/s, {res.requests} requests, statuses "
                f"{res.statuses}" + (f", socket errors {res.socket_errors}" if res.socket_errors else "")
                + f"; {res.latency_line}")
        # (the baseline app stays up, idle, until the cleanup: reaping it now would add its CPU to wrk's)
        acked: dict[int, int] = {}
        for res in sats:
            for idx, seq in res.acked.items():
                acked[idx] = max(acked.get(idx, 0), seq)
        mem.enter("verify #2")
        lost_sat, checked_sat, sat_notes = asyncio.run(bench.verify_saturation(slots, acked))
        log(f"verify: {checked_sat} slots with an acknowledged saturation save checked, {lost_sat} lost")
        mem.enter("end")
        mem.stop()

        # 5xx in the server log
        log_text = server_log.read_text(errors="replace")
        tracebacks = len(re.findall(r"^unhandled error on ", log_text, re.M)) or log_text.count("Traceback (most recent")
        status_5xx = len(re.findall(r'" 5\d\d ', log_text))
        ok = report(args, bench, sats, bases, mem, lost_sat, checked_sat, sat_notes, db_desc, tracebacks, status_5xx,
                    server_log)
        keep = keep or not ok
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        keep = True
        return 130
    finally:
        if mem is not None:
            mem.stop()
        procs.stop_all()
        stack.close()
        if keep:
            print(f"(temp folder kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def server_errors(text: str) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """Unhandled errors in the server log, grouped by (request, final exception): count, quizengine frames."""
    groups: dict[tuple[str, str], tuple[int, list[str]]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"unhandled error on (.*)", lines[i])
        if not m:
            i += 1
            continue
        where, frames, error = m.group(1), [], "?"
        i += 1
        while i < len(lines) and not lines[i].startswith(("unhandled error on ", "127.0.0.1 - ")):
            line = lines[i]
            f = re.match(r'\s+File "(.*?/quizengine/[^"]+)", line (\d+), in (\S+)', line)
            if f:
                code = lines[i + 1].strip() if i + 1 < len(lines) else ""
                frames.append(f"{f.group(1).split('/quizengine/', 1)[1]}:{f.group(2)} in {f.group(3)}: {code}")
            elif re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\w*: ", line):
                error = line.strip()
            i += 1
        key = (where, error[:200])
        count, _ = groups.get(key, (0, []))
        groups[key] = (count + 1, frames[-8:])
    return groups


def report(args: argparse.Namespace, bench: Bench, sats: list[WrkResult], bases: list[WrkResult], mem: MemorySampler,
           lost_sat: int, checked_sat: int, sat_notes: list[str], db_desc: str, tracebacks: int,
           status_5xx: int, server_log: Path) -> bool:
    ep = bench.ep
    print()
    print(f"== latency per endpoint (ms, from the scheduled send time), {args.students} students ==")
    for key in ("login/token", "spike/start", "paced/autosave", "paced/submit", "prepare/start #2",
                "verify/GET attempt", "verify/GET attempt #2"):
        if key in ep:
            print(ep[key].line())
    print()
    print("== errors per phase ==")
    phases = {
        "login (token)": ep["login/token"].n_errors,
        "spike (start)": ep["spike/start"].n_errors,
        "paced (autosave+submit)": ep["paced/autosave"].n_errors + ep["paced/submit"].n_errors,
        "start #2": ep["prepare/start #2"].n_errors,
        "verify (GET)": sum(e.n_errors for k, e in ep.items() if k.startswith("verify/")),
        "saturation (wrk)": sum(r.n_errors for r in sats),
    }
    for name, v in phases.items():
        print(f"  {name:<26} {v}")
    print(f"  {'baseline (wrk)':<26} {sum(r.n_errors for r in bases)}   (the baseline app, not counted)")
    print(f"  server log: {status_5xx} responses 5xx, {tracebacks} unhandled errors")
    for e in ep.values():
        for ex in e.examples:
            print(f"    {e.name}: {ex}")
    for note in bench.verify_notes[:10] + sat_notes[:10]:
        print(f"    {note}")
    if status_5xx or tracebacks:
        groups = server_errors(server_log.read_text(errors="replace"))
        for (where, error), (count, frames) in groups.items():
            print(f"  server error x{count}: {where}: {error}")
            for f in frames:
                print(f"      {f}")
        print(f"  (full tracebacks in {server_log})")

    errors = sum(phases.values())  # the log's 5xx are among them (a cross-check)
    lost = bench.lost_paced + lost_sat
    save_p95 = percentile(ep["paced/autosave"].lat, 95) * 1e3
    sat_rps, base_rps = max(r.rps for r in sats), max(r.rps for r in bases)
    ratio = sat_rps / base_rps if base_rps else 0.0
    mem_mib = mem.peak_rss_kib / 1024
    spike_p95 = percentile(ep["spike/start"].lat, 95)
    rows = [
        ("zero errors (non-2xx, timeouts)", f"{errors}", errors == 0),
        ("zero lost answers", f"{lost} ({bench.checked_paced} paced + {checked_sat} saturation checked)", lost == 0),
        (f"paced autosave p95 < {TARGET_SAVE_P95_MS:g} ms", f"{save_p95:.1f} ms", save_p95 < TARGET_SAVE_P95_MS),
        (f"saturated autosave >= {TARGET_THROUGHPUT_RATIO:g} x baseline",
         f"{sat_rps:.0f} / {base_rps:.0f} req/s = {ratio:.2f} x", ratio >= TARGET_THROUGHPUT_RATIO),
        (f"server memory < {TARGET_MEMORY_MIB:g} MiB", f"{mem_mib:.0f} MiB peak RSS sum", mem_mib < TARGET_MEMORY_MIB),
        (f"spike start p95 < {TARGET_SPIKE_P95_S:g} s", f"{spike_p95:.2f} s", spike_p95 < TARGET_SPIKE_P95_S),
    ]
    print()
    print("== summary ==")
    print(f"  machine   {args.machine}")
    print(f"  database  {db_desc}")
    print(f"  server    quizengine serve, gunicorn {args.workers} gevent workers; {args.students} students; "
          f"paced: one save per {args.save_interval:g} s per student "
          f"(~{args.students / args.save_interval:.0f}/s); wrk -t{args.wrk_threads} -c{args.wrk_connections} "
          f"-d{args.duration}s")
    print(f"  memory    peak RSS sum {mem_mib:.0f} MiB over {mem.peak_procs} processes "
          f"(PSS sum {mem.peak_pss_kib / 1024:.0f} MiB; {mem.samples} samples every 0.2 s); by phase: "
          + ", ".join(f"{k} {v / 1024:.0f}" for k, v in mem.marks.items()))
    split = mem.peak_split
    if split:
        print(f"            at the peak: master {split[0] / 1024:.0f} MiB, workers "
              + ", ".join(f"{x / 1024:.0f}" for x in split[1:]) + " MiB")
    print("  cpu       per phase: wall time; CPU time of the server (% of one core), of this script (the client),"
          " of wrk, and of every other process (PostgreSQL, the baseline app, anything else running)")
    for name, wall, scpu, ccpu, kcpu, other in mem.phase_table():
        print(f"            {name:<26} {wall:6.1f} s   server {scpu:6.1f} s ({100 * scpu / max(wall, 1e-9):3.0f}%)"
              f"   client {ccpu:5.1f} s   wrk {kcpu:4.1f} s   others {other:5.1f} s")
    print("  saturate  requests/s per round: quizengine " + ", ".join(f"{r.rps:.0f}" for r in sats)
          + "; baseline " + ", ".join(f"{r.rps:.0f}" for r in bases) + " (the best counts); quizengine wrk "
          + (sats[int(max(range(len(sats)), key=lambda k: sats[k].rps))].latency_line or "latency ?"))
    for label, value, passed in rows:
        print(f"  {label:<42} {value:<52} {'PASS' if passed else 'MISS'}")
    ok = all(p for _, _, p in rows)
    print(f"  {'all targets':<42} {'':<52} {'PASS' if ok else 'MISS'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
