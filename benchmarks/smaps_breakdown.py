"""What a running server's memory is made of: RSS and PSS per process, grouped by mapping.

Run:  .venv/bin/python benchmarks/smaps_breakdown.py PID [--top 25] [--every S --for S]

PID is the gunicorn master (`quizengine serve`); its descendants (the workers) are read too. For
each process it reads /proc/PID/smaps and groups the mappings: each shared library by package
(numpy, sqlalchemy, gevent, libpython, libc, ...), the Python heap and glibc's main arena
([heap]), anonymous mappings by size (thread stacks and arenas, 64 MiB reservations of glibc's
thread arenas, mmapped blocks over the malloc threshold), and prints RSS, PSS, private and shared
(MiB) per group, largest first. With --every/--for it samples the tree until the RSS sum peaks and
prints the breakdown at the peak.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadlib.proc import tree  # noqa: E402

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty", "Swap")


def group(path: str, size_kib: int, perms: str) -> str:
    """A mapping's group: a package for files under site-packages, the library's name, or the kind
    of anonymous memory."""
    if "/site-packages/" in path:
        pkg = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        return "lib " + pkg.split(".")[0].removesuffix("_libs").removesuffix(".libs")
    if path.startswith("/"):
        name = path.rsplit("/", 1)[1]
        if "python3" in name:
            return "lib python"
        if name.startswith(("libc.", "libc-", "ld-linux")):
            return "lib libc/ld"
        if "/lib/python3" in path:
            return "stdlib ext " + name.split(".")[0]
        return "file " + name.split(".so")[0]
    if path in ("[heap]", "[stack]", "[vdso]", "[vvar]", "[vsyscall]"):
        return path
    if path:
        return path
    if perms.startswith("---"):
        return "anon guard"
    if size_kib >= 60 * 1024:
        return "anon >=60 MiB (arena/reserve)"
    if size_kib >= 1024:
        return "anon 1-60 MiB (mmapped blocks, stacks)"
    return "anon <1 MiB (pymalloc arenas, small)"


def read(pid: int) -> dict[str, dict[str, int]]:
    """Group -> field -> KiB, for one process."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return {}
    current = None
    for line in lines:
        m = HEADER.match(line)
        if m:
            size = (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
            current = out[group(m.group(4).strip(), size, m.group(3))]
            current["Size"] += size
            current["n"] += 1
            continue
        name, _, rest = line.partition(":")
        if current is not None and name in FIELDS:
            current[name] += int(rest.split()[0])
    return out


def rss_sum(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:60]
    except OSError:
        return "?"


def report(pid: int, top: int) -> None:
    mib = 1024.0
    for i, p in enumerate(tree(pid)):
        groups = read(p)
        tot = defaultdict(int)
        for g in groups.values():
            for k, v in g.items():
                tot[k] += v
        print(f"\n{'master' if i == 0 else 'child'} {p} ({cmdline(p)}): RSS {tot['Rss'] / mib:.1f}, "
              f"PSS {tot['Pss'] / mib:.1f}, private {(tot['Private_Clean'] + tot['Private_Dirty']) / mib:.1f} MiB")
        print(f"  {'group':<42} {'n':>4} {'size':>8} {'RSS':>7} {'PSS':>7} {'priv':>7} {'shared':>7}")
        for name, g in sorted(groups.items(), key=lambda kv: -kv[1]["Rss"])[:top]:
            priv = g["Private_Clean"] + g["Private_Dirty"]
            shared = g["Shared_Clean"] + g["Shared_Dirty"]
            print(f"  {name[:42]:<42} {g['n']:>4} {g['Size'] / mib:8.1f} {g['Rss'] / mib:7.1f} {g['Pss'] / mib:7.1f} "
                  f"{priv / mib:7.1f} {shared / mib:7.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--every", type=float, default=0.0, help="sample the RSS sum every S s ...")
    ap.add_argument("--for", dest="span", type=float, default=0.0, help="... for S s; report at the peak")
    args = ap.parse_args()
    if args.every and args.span:
        peak, end = 0, time.monotonic() + args.span
        while time.monotonic() < end:
            pids = tree(args.pid)
            now = rss_sum(pids)
            if now > peak:
                peak = now
                print(f"peak RSS sum so far {peak / 1024:.1f} MiB", flush=True)
                report(args.pid, args.top)
            time.sleep(args.every)
        return 0
    report(args.pid, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
