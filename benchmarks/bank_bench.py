"""Time to validate the shipped banks, and to generate and grade one variant.

Run: .venv/bin/python benchmarks/bank_bench.py [BANKS] [--ecf-only | --figures-only]
Targets: validating every bank with 200 seeds per parametrized item, every rule included
(every buggy calculator and the parameter slips on every seed of every calculated item), under
10 s on 2 cores; generating + grading one variant with a p50 under 1 ms; building an item's figures
(issue 13) under 50 ms the first time and under 1 ms from the cache. As a baseline in the same
process it also times loading the YAML alone, so the ratio shows what the checks cost.
Grading a 6-part chain with error carried forward (issue 13; a slip in part 1 carried through
every later part, so every later part is recomputed and checked by the guards): p50 under 2 ms.
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


CHAINS = ("chain-opt-nesterov-quadratic", "chain-opt-adam", "chain-bp-softmax-ce", "chain-bp-221-sigmoid")


def chain_ecf(cat) -> None:
    """Grade chains whose first part slipped, every later part right for the slip (all ECF)."""
    import numpy as np

    from quizengine.bank.ecf import with_given
    from quizengine.bank.variant import resolve
    from quizengine.calc.engine import run_task

    for item_id in CHAINS:
        item = cat.items[item_id]
        times, earned = [], []
        for seed in range(20):
            v = make_variant(item, seed)
            first = v.payload.parts[0]
            wrong = np.asarray(first.answer, dtype=np.float64) * 1.2 + 0.05
            chain = run_task(with_given(v.task, {first.part.answer: wrong}))
            response = {first.part.id: wrong.tolist(), **{k.part.id: resolve(chain, k.part.answer)
                                                          for k in v.payload.parts[1:]}}
            for _ in range(10):
                t0 = time.perf_counter()
                g = grade(v, response)
                times.append(time.perf_counter() - t0)
            earned.append(sum(p["ecf"] for p in g.parts))
        q = statistics.quantiles(times, n=100)
        print(f"grade a {len(item.model.parts)}-part chain with ECF ({item_id}, {len(times)} runs, "
              f"{statistics.mean(earned):.1f} parts on ECF): p50 {q[49] * 1e3:.3f} ms, p95 {q[94] * 1e3:.3f} ms")


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
              f"({len(items)} items, 30 seeds)")


if __name__ == "__main__":
    main()
