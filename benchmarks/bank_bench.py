"""Time to validate the shipped banks, and to generate and grade one variant.

Run: .venv/bin/python benchmarks/bank_bench.py [BANKS] [--ecf-only | --figures-only] [--serial]
Targets: validating every bank with 200 seeds per parametrized item, every rule included
(every buggy calculator and the parameter slips on every seed of every calculated item), under
10 s on 2 cores; generating + grading one variant with a p50 under 1 ms; building an item's figures
(issue 13) under 50 ms the first time and under 1 ms from the cache. As a baseline in the same
process it also times loading the YAML alone.
Grading a chain with error carried forward (issue 13; a slip in part 1 carried through every later
part, so every later part is recomputed and checked by the guards): p50 under 2 ms for every chain
in the banks, each printed with its CPU time, its calculator runs and, as a baseline in the same
process, the same gradings without the short-cuts (the same marks). --ecf-only times just these.

Every timed figure is printed with its target and PASS or MISS. The validation is timed as the CLI
runs it (one process per core, at most 8), best of 3 and median, with the CPU seconds it took
(this process and its workers): on a shared machine the CPU seconds / cores is the wall time an
idle machine would give, so it is printed too, with the load average. --serial also times one
process.
"""

from __future__ import annotations

import os
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


CHAINS = ("chain-opt-nesterov-quadratic", "chain-opt-adam", "chain-bp-softmax-ce", "chain-bp-221-sigmoid")


def verdict(value: float, target: float, unit: str) -> str:
    return f"{'PASS' if value < target else 'MISS'} (target < {target:g} {unit})"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else ""


def chain_ecf(cat) -> None:
    """Grade every chain (multi-part item) in the banks with a slip in part 1 carried through every
    later part (each later part right for the slip: all ECF), 20 seeds x 10 gradings each: wall time
    (p50, p95) and CPU time (p50; the machine is shared, CPU time is less noisy) per grading, and the
    calculator runs one grading takes. As a baseline in the same process, interleaved with it: the
    same gradings without the short-cuts of bank/ecf_fast.py (ecf_grade.grade_parts(shortcut=False),
    the same marks), CPU p50 and runs. The four chains issue 13 names first, then the rest, worst first."""
    chains = [i for i in cat.items.values() if i.model.type == "multipart"]
    rows = [chain_times(item) for item in chains]
    print(f"grading a chain with ECF ({len(chains)} chains, 200 gradings each; {load()}; "
          f"'full': the same marks without the short-cuts, CPU p50 in this process):")
    by_id = {r[0]: r for r in rows}
    named = [by_id[c] for c in CHAINS if c in by_id]
    worst = max(rows, key=lambda r: r[3])
    for r in named + [r for r in sorted(rows, key=lambda r: -r[3]) if r not in named]:
        item_id, n_parts, on_ecf, p50, p95, cpu50, runs, full_cpu50, full_runs = r
        tag = "  (worst)" if r is worst else ""
        print(f"  {item_id:<30} {n_parts} parts, {on_ecf:.1f} on ECF: p50 {p50 * 1e3:6.3f} ms, p95 {p95 * 1e3:6.3f} ms, "
              f"CPU p50 {cpu50 * 1e3:6.3f} ms, {runs:4.1f} runs; full: CPU p50 {full_cpu50 * 1e3:6.3f} ms "
              f"({cpu50 / full_cpu50:.2f}x), {full_runs:4.1f} runs  {verdict(p50 * 1e3, 2, 'ms')}{tag}")


def chain_times(item) -> tuple:  # type: ignore[no-untyped-def]
    """(id, parts, mean parts on ECF, wall p50, wall p95, CPU p50, runs per grading, and without the
    short-cuts: CPU p50, runs per grading) of grading ``item``'s chains."""
    import numpy as np

    from quizengine.bank import ecf, ecf_fast
    from quizengine.bank.ecf import with_given
    from quizengine.bank.ecf_grade import grade_parts
    from quizengine.bank.variant import resolve
    from quizengine.calc.engine import run_task

    times, cpus, full_cpus, earned, runs = [], [], [], [], {True: 0, False: 0}
    counting = [True]

    def counted(task):  # type: ignore[no-untyped-def]
        runs[counting[0]] += 1
        return run_task(task)

    ecf.run_task = ecf_fast.run_task = counted
    try:
        for seed in range(20):
            v = make_variant(item, seed)
            first = v.payload.parts[0]
            wrong = np.asarray(first.answer, dtype=np.float64) * 1.2 + 0.05
            chain = run_task(with_given(v.task, {first.part.answer: wrong}))
            response = {first.part.id: wrong.tolist(), **{k.part.id: resolve(chain, k.part.answer)
                                                          for k in v.payload.parts[1:]}}
            for _ in range(10):
                counting[0] = True
                c0, t0 = time.process_time(), time.perf_counter()
                g = grade(v, response)
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                counting[0] = False
                c0 = time.process_time()
                grade_parts(v, response, shortcut=False)
                full_cpus.append(time.process_time() - c0)
            earned.append(sum(p["ecf"] for p in g.parts))
    finally:
        ecf.run_task = ecf_fast.run_task = run_task
    q = statistics.quantiles(times, n=100)
    return (item.model.id, len(item.model.parts), statistics.mean(earned), q[49], q[94], statistics.median(cpus),
            runs[True] / len(times), statistics.median(full_cpus), runs[False] / len(times))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    banks = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "banks"
    if "--ecf-only" in sys.argv:
        chain_ecf(load_catalog([banks]))
        return
    if "--figures-only" in sys.argv:
        figure_bench(load_catalog([banks]))
        return
    t0 = time.perf_counter()
    cat = load_catalog([banks])
    load_s = time.perf_counter() - t0
    jobs = min(os.cpu_count() or 1, 8)
    seeds = 200
    runs, cpus = [], []
    for _ in range(3):
        c0, t0 = cpu_seconds(), time.perf_counter()
        checked = validate_paths([banks], seeds=seeds, jobs=jobs)
        runs.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
    param = [i for i in cat.items.values() if getattr(i.model, "params", None)]
    print(f"{len(cat.items)} items ({len(param)} parametrized, {seeds} seeds each: {len(param) * seeds} variants) "
          f"in {len(cat.files)} files; {len(checked.errors)} errors, {len(checked.problems) - len(checked.errors)} warnings")
    print(f"load YAML + schema only:              {load_s:7.3f} s")
    print(f"validate banks, every rule:           {min(runs):7.3f} s best of 3 (median {statistics.median(runs):.3f} s)"
          f" with {jobs} processes, as `quizengine validate` runs it; {load()}  {verdict(min(runs), 10, 's')}")
    print(f"  CPU seconds (all processes):        {min(cpus):7.3f} s best of 3 (median {statistics.median(cpus):.3f} s);"
          f" / {jobs} cores = {min(cpus) / jobs:.3f} s on an idle machine  {verdict(min(cpus) / jobs, 10, 's')}")
    if "--serial" in sys.argv:
        c0, t0 = cpu_seconds(), time.perf_counter()
        validate_paths([banks], seeds=seeds, jobs=1)
        print(f"  the same in one process:            {time.perf_counter() - t0:7.3f} s ({cpu_seconds() - c0:.3f} CPU s)")

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
          f"max {max(times) * 1e3:.3f} ms  {verdict(q[49] * 1e3, 1, 'ms')}")
    for kind, ts in sorted(per_type.items()):
        print(f"  {kind:<10} p50 {statistics.median(ts) * 1e3:.3f} ms over {len(ts)} runs")
    figure_bench(cat)
    chain_ecf(cat)


def figure_bench(cat) -> None:  # type: ignore[no-untyped-def]
    """Build each kind of figure for fresh seeds (first time: drawn) and again (cached), in CPU time
    (the machine is shared). Counted apart: importing matplotlib (once per process) and each plot
    kind's first drawing in this process (it makes the kind's reused canvas and loads the fonts);
    "first time" is a variant's first drawing after those."""
    already = "matplotlib" in sys.modules  # nothing before this section draws a plot
    t0 = time.process_time()
    import contourpy  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    ms = (time.process_time() - t0) * 1e3
    print(f"figures (CPU time; load average {open('/proc/loadavg').read().split()[0]}): importing matplotlib, "
          f"once per process (on the first plot; never for a page without one): "
          f"{'(already imported)' if already else f'{ms:.0f} ms'}")
    by_kind: dict[str, list] = {}
    for item in cat.items.values():
        if len(item.model.figures) == 1:
            by_kind.setdefault(item.model.figures[0].kind, []).append(item)
    for kind, items in sorted(by_kind.items()):  # the first plot of a kind makes its canvas and loads fonts
        t0 = time.process_time()
        figures.figures_for(make_variant(items[0], 999))
        print(f"  the first {kind} figure in this process: {(time.process_time() - t0) * 1e3:.1f} ms")
    for kind, items in sorted(by_kind.items()):
        first, cached = [], []
        for n in range(30):
            v = make_variant(items[n % len(items)], 1000 + n)  # seeds no page has drawn
            t0 = time.process_time()
            figures.figures_for(v)
            first.append(time.process_time() - t0)
            t0 = time.process_time()
            figures.figures_for(v)
            cached.append(time.process_time() - t0)
        print(f"  {kind:<10} first time p50 {statistics.median(first) * 1e3:6.2f} ms, max {max(first) * 1e3:6.2f} ms; "
              f"cached p50 {statistics.median(cached) * 1e3:.4f} ms, max {max(cached) * 1e3:.4f} ms "
              f"({len(items)} items, 30 seeds)  first {verdict(statistics.median(first) * 1e3, 50, 'ms')}, "
              f"cached {verdict(statistics.median(cached) * 1e3, 1, 'ms')}")


if __name__ == "__main__":
    main()
