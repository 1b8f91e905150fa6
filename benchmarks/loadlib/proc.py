"""Processes, the memory and CPU sampler, and small helpers of benchmarks/load.py."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# ---------------------------------------------------------------- small helpers

def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from /proc; [] once it is gone)."""
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


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, parents first."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        pids.append(p)
        todo += children(p)
    return pids


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


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


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


def steal_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat: the time the host gave this virtual
    machine's CPUs to others; (0, 0) where unknown."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> str:
    total = after[1] - before[1]
    return f"{100 * (after[0] - before[0]) / total:.1f}%" if total > 0 else "unknown"


def hash_probe(repeat: int = 5) -> float:
    """The machine's speed as this app feels it: the least thread CPU, in ms, of one password hash
    at the app's parameters (Argon2id, m = 19 MiB, t = 2, p = 1), the most CPU a request spends."""
    from quizengine.passwords import hash_password
    best = float("inf")
    for _ in range(repeat):
        t = time.thread_time()
        hash_password("probe-password")
        best = min(best, time.thread_time() - t)
    return best * 1e3


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

    def serve(self, exe: str, workers: int, logfile: Path, env: dict[str, str]) -> tuple[int, subprocess.Popen]:
        """``quizengine serve`` on a free port, its output in ``logfile``; returns (port, process) once
        every worker serves."""
        port = free_port()
        server = self.start([exe, "serve", "--port", str(port), "--workers", str(workers)], logfile, env=env)
        wait_until_serving(port, server, logfile, workers)
        return port, server

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


READY = "Worker ready"  # what each worker of `quizengine serve` logs once its app is built (server.py)


def wait_until_serving(port: int, proc: subprocess.Popen, logfile: Path, workers: int, timeout: float = 120.0) -> None:
    """Wait until ``quizengine serve`` listens and each of its ``workers`` has built its app: a worker that
    builds its own (the default) does so after the port is open, and a phase must not time that."""
    wait_for_port(port, proc, logfile, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the server exited with status {proc.returncode}; see {logfile}:\n" + tail(logfile))
        if logfile.read_text(errors="replace").count(READY) >= workers:
            return
        time.sleep(0.1)
    raise SystemExit(f"error: {workers} workers not ready after {timeout:.0f} s; see {logfile}")


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class MemorySampler(threading.Thread):
    """Peak and latest summed RSS and PSS (/proc/PID/smaps_rollup) of a process and all its descendants,
    every ``every`` s; CPU time (utime + stime from /proc/PID/stat) of the same processes, per phase."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.stop_event = threading.Event()
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.peak_procs = 0
        self.samples = 0
        self.last_rss_kib = self.last_pss_kib = self.last_procs = 0  # the latest sample (the end, once stopped)
        self.marks: dict[str, int] = {}  # phase name -> peak RSS during it
        self.peak_split: list[int] = []  # RSS (KiB) of each process at the peak, master first
        self.phase = "startup"
        self.phases: list[tuple[str, float, float, float, float, float]] = []  # name, wall, CPU s: server,
        # this script, finished children (wrk), the whole machine
        self.hz = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        """utime + stime of the server's processes (gunicorn master and workers), in s."""
        return cpu_of(self.tree())

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

    def tree(self) -> list[int]:
        return tree(self.pid)

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
        self.last_rss_kib, self.last_pss_kib, self.last_procs = rss, pss, len(pids)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=2)
            self.sample()  # the end state



def postgres_pids(url: str) -> list[int]:
    """The processes of the PostgreSQL cluster listening on ``url``'s port on this machine (its
    postmaster and every child: backends, checkpointer, WAL writer...); [] if none is found here."""
    port = re.search(r":(\d+)/", url)
    if not port:
        return []
    wanted = f"-p {port.group(1)}"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmd and f"{wanted} " in f"{cmd} " and " -D " in cmd:
            return tree(int(entry))
    return []


def cpu_of(pids: list[int]) -> float:
    """utime + stime of these processes, in s (a process gone counts 0)."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")
