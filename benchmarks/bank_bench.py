"""Time to validate the shipped banks, and to generate and grade one variant.

Run: .venv/bin/python benchmarks/bank_bench.py [BANKS]
Targets: validating every bank with 200 seeds per parametrized item, every rule included
(every buggy calculator and the parameter slips on every seed of every calculated item), under
10 s on 2 cores; generating + grading one variant with a p50 under 1 ms; building an item's figures
(issue 13) under 50 ms the first time and under 1 ms from the cache. As a baseline in the same
process it also times loading the YAML alone, so the ratio shows what the checks cost.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quizengine.bank import figures  # noqa: E402
from quizengine.bank.catalog import load_catalog  # noqa: E402
from quizengine.bank.validate import validate_paths  # noqa: E402
from quizengine.bank.variant import make_variant  # noqa: E402
from quizengine.grading import grade  # noqa: E402


def main() -> None:
    banks = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "banks"
    t0 = time.perf_counter()
    cat = load_catalog([banks])
    load_s = time.perf_counter() - t0
    import os

    jobs = min(os.cpu_count() or 1, 8)
    runs, serial = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        checked = validate_paths([banks], seeds=200, jobs=jobs)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        validate_paths([banks], seeds=200, jobs=1)
        serial.append(time.perf_counter() - t0)
    param = sum(1 for i in cat.items.values() if getattr(i.model, "params", None))
    print(f"{len(cat.items)} items ({param} parametrized) in {len(cat.files)} files; "
          f"{len(checked.errors)} errors")
    print(f"load YAML + schema only:              {load_s:7.3f} s")
    print(f"validate, 200 seeds per param. item:  {min(runs):7.3f} s best of 3 (median {statistics.median(runs):.3f} s)"
          f" with {jobs} processes, as `quizengine validate` runs it")
    print(f"  the same in one process:            {min(serial):7.3f} s best of 3; {min(runs) / load_s:.1f}x the load alone")

    per_type: dict[str, list[float]] = {}
    times = []
    for item in cat.items.values():
        for seed in range(20):
            t0 = time.perf_counter()
            v = make_variant(item, seed)
            grade(v, v.answer)
            dt = time.perf_counter() - t0
            times.append(dt)
            per_type.setdefault("calculated" if v.task is not None else "static", []).append(dt)
    q = statistics.quantiles(times, n=100)
    print(f"generate + grade one variant ({len(times)} runs): p50 {q[49] * 1e3:.3f} ms, p95 {q[94] * 1e3:.3f} ms, "
          f"max {max(times) * 1e3:.3f} ms")
    for kind, ts in sorted(per_type.items()):
        print(f"  {kind:<10} p50 {statistics.median(ts) * 1e3:.3f} ms over {len(ts)} runs")
    figure_bench(cat)


def figure_bench(cat) -> None:  # type: ignore[no-untyped-def]
    """Build each kind of figure for fresh seeds (first time: drawn) and again (cached)."""
    import subprocess

    code = ("import time; t = time.perf_counter(); import matplotlib.figure, matplotlib.backends.backend_svg; "
            "print((time.perf_counter() - t) * 1e3)")
    ms = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    print(f"figures: importing matplotlib, once per process (on the first plot; never for a page without one): "
          f"{ms:.0f} ms")
    by_kind: dict[str, list] = {}
    for item in cat.items.values():
        if len(item.model.figures) == 1:
            by_kind.setdefault(item.model.figures[0].kind, []).append(item)
    t0 = time.perf_counter()
    for items in by_kind.values():  # the first plot of a process also loads matplotlib's fonts
        figures.figures_for(make_variant(items[0], 999))
    print(f"  the first figure of each kind in this process: {(time.perf_counter() - t0) * 1e3:.0f} ms together")
    for kind, items in sorted(by_kind.items()):
        first, cached = [], []
        for n in range(30):
            v = make_variant(items[n % len(items)], 1000 + n)  # seeds no page has drawn
            t0 = time.perf_counter()
            figures.figures_for(v)
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            figures.figures_for(v)
            cached.append(time.perf_counter() - t0)
        print(f"  {kind:<10} first time p50 {statistics.median(first) * 1e3:6.2f} ms, max {max(first) * 1e3:6.2f} ms; "
              f"cached p50 {statistics.median(cached) * 1e3:.4f} ms, max {max(cached) * 1e3:.4f} ms "
              f"({len(items)} items, 30 seeds)")


if __name__ == "__main__":
    main()
