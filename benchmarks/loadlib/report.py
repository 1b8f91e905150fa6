"""What one run of benchmarks/load.py prints in detail, and its figures for the summary table."""

from __future__ import annotations

import argparse
from typing import Any

from .phases import CLIENTS, Bench
from .proc import MemorySampler, percentile
from .summary import Figure, server_errors

TARGET_SAVE_P95_MS = 50.0
TARGET_THROUGHPUT_RATIO = 0.5
TARGET_CPU_MS = 1.0
TARGET_MEMORY_MIB = 300.0
TARGET_P95_S = 1.0  # logins, starts, the spike and submits


def errors_per_phase(bench: Bench, run: dict[str, Any]) -> dict[str, int]:
    ep = bench.ep

    def n(*keys: str) -> int:
        return sum(ep[k].n_errors for k in keys if k in ep)

    return {
        "logins": n("logins/token"),
        "spike (start)": n("spike/start"),
        "paced (autosave)": n("paced/autosave"),
        "submits": n("submits/submit"),
        "starts": n("starts/start"),
        "verify (GET)": sum(e.n_errors for k, e in ep.items() if k.startswith("verify/")),
        "saturation (wrk)": sum(r.n_errors for r in run["sats"]),
        "2 instances (wrk)": run["two"].n_errors,
    }


def details(args: argparse.Namespace, bench: Bench, mem: MemorySampler, run: dict[str, Any]) -> None:
    ep = bench.ep
    print()
    print(f"== {run['kind']}: {run['db']} ==")
    print(f"  latency per endpoint (ms; open-loop phases from the scheduled send time), {args.students} students")
    for e in ep.values():
        print("  " + e.line())
    print("  errors per phase: " + ", ".join(f"{k} {v}" for k, v in errors_per_phase(bench, run).items())
          + f"; baselines (not counted) {sum(r.n_errors for rs in run['bases'].values() for r in rs)}")
    stale = sum(r.n_stale for r in run["sats"]) + run["two"].n_stale
    if stale:
        print(f"  {stale} wrk saves refused as stale (409: overtaken by a later save of the same slot; by the seq "
              "rule, not counted as errors; the verify phase checks no acknowledged answer was lost)")
    if bench.unacked_stored:
        print(f"  {bench.unacked_stored} answers stored with a seq above the last acknowledged one (a save whose "
              "answer timed out was stored after all; not lost)")
    print(f"  server log: {run['status_5xx']} responses 5xx, {run['tracebacks']} unhandled errors"
          + (f"; second instance {run['status_5xx_2']} responses 5xx" if run["status_5xx_2"] else ""))
    for e in ep.values():
        for ex in e.examples:
            print(f"    {e.name}: {ex}")
    for note in bench.notes[:20]:
        print(f"    {note}")
    if run["status_5xx"] or run["tracebacks"]:
        for (where, error), (count, frames) in server_errors(run["server_log"].read_text(errors="replace")).items():
            print(f"  server error x{count}: {where}: {error}")
            for f in frames:
                print(f"      {f}")
        print(f"  (full tracebacks in {run['server_log']})")
    split = mem.peak_split
    print(f"  memory: peak RSS sum {mem.peak_rss_kib / 1024:.0f} MiB, peak PSS sum {mem.peak_pss_kib / 1024:.0f} MiB over "
          f"{mem.peak_procs} processes; at the end RSS {mem.last_rss_kib / 1024:.0f}, PSS {mem.last_pss_kib / 1024:.0f} MiB "
          f"({mem.samples} samples every 0.2 s)"
          + (f"; at the peak: master {split[0] / 1024:.0f}, workers " + ", ".join(f"{x / 1024:.0f}" for x in split[1:])
             + " MiB" if split else ""))
    print("  peak RSS by phase (MiB): " + ", ".join(f"{k} {v / 1024:.0f}" for k, v in mem.marks.items()))
    print("  per phase: wall time; CPU of the server (% of one core), of this script (the client), of wrk, and of "
          "everything else (PostgreSQL, the baselines, the second instance, other users of the machine)")
    for name, wall, scpu, ccpu, kcpu, other in mem.phase_table():
        print(f"    {name:<34} {wall:6.1f} s   server {scpu:6.1f} s ({100 * scpu / max(wall, 1e-9):3.0f}%)"
              f"   client {ccpu:5.1f} s   wrk {kcpu:4.1f} s   others {other:5.1f} s")
    sats, bases = run["sats"], run["bases"]
    print("  saturation requests/s per round: quizengine " + ", ".join(f"{r.rps:.0f}" for r in sats)
          + f"; baseline {run['durability']} " + ", ".join(f"{r.rps:.0f}" for r in bases["app"])
          + f"; baseline {run['relaxed']} " + ", ".join(f"{r.rps:.0f}" for r in bases["relaxed"])
          + "; the best counts. quizengine's best round: " + (sats[run["best"]].latency_line or "latency ?"))
    print(f"  2 instances: {run['two'].rps:.0f} requests/s (" + " + ".join(f"{r.rps:.0f}" for r in run["two_parts"])
          + f"); {run['two'].latency_line}")
    if run["tail_2"]:
        print("  second instance's log:\n" + run["tail_2"])
    if bench.moon:
        m = bench.moon
        lag = [x * 1e3 for x in ep["moonshot/autosave"].lag]
        print(f"  moonshot: {m['students']} students, {m['saves']} autosaves, all answered after {m['wall']:.1f} s "
              f"(offered {m['rate']:.0f}/s over {args.moon_duration:g} s); client lag p50 {percentile(lag, 50):.1f}, p95 {percentile(lag, 95):.1f}, max "
              f"{max(lag, default=0):.1f} ms; client CPU {100 * m['client_cpu']:.0f}% of one core; "
              f"{m['connections']} connections")
    steps = run.get("setup") or []
    print(f"  this run: {run['wall']:.0f} s, of which set-up {sum(w for _, w, _ in steps):.0f} s ("
          + "; ".join(f"{name.split(' (')[0]} {w:.0f} s, CPU {c:.0f} s" for name, w, c in steps)
          + f"); load average before {run['load_before']}, after {run['load_after']}")


def _lat(ep: Any) -> str:
    return (f"p95 {ep.p(95):.2f} s (p50 {ep.p(50):.2f}, max {max(ep.lat, default=float('nan')):.2f})"
            + (f", {ep.n_errors} err" if ep.n_errors else "") + (f", {ep.throttled}x429" if ep.throttled else ""))


def figures(args: argparse.Namespace, bench: Bench, mem: MemorySampler, run: dict[str, Any]) -> list[Figure]:
    ep = bench.ep
    sats, bases, best = run["sats"], run["bases"], run["best"]
    errors = sum(errors_per_phase(bench, run).values())
    lost = sum(v for k, v in bench.lost.items() if k != "moonshot")
    checked = sum(v for k, v in bench.checked.items() if k != "moonshot")
    save_p95 = ep["paced/autosave"].p(95) * 1e3
    sat_rps = sats[best].rps
    b_app, b_rel = max(r.rps for r in bases["app"]), max(r.rps for r in bases["relaxed"])
    answered = sum(sats[best].statuses.values())
    cpu_ms = 1e3 * run["sat_cpu"][best] / max(answered, 1)
    rss, pss = mem.peak_rss_kib / 1024, mem.peak_pss_kib / 1024
    draw = bench.spike_draw
    n = args.students
    figs = [
        Figure("errors", "errors (non-2xx, timeouts), all phases", "0", f"{errors}", errors == 0, errors),
        Figure("lost", "lost answers (paced + saturation)", "0", f"{lost} of {checked} checked", lost == 0, lost),
        Figure("paced_p95_ms", f"paced autosave p95 (~{n / args.save_interval:.0f}/s)", f"< {TARGET_SAVE_P95_MS:g} ms",
               f"{save_p95:.1f} ms (p50 {ep['paced/autosave'].p(50) * 1e3:.1f})", save_p95 < TARGET_SAVE_P95_MS, save_p95),
        Figure("saturated_ratio_app", f"saturated autosave / bare insert ({run['durability']})",
               f">= {TARGET_THROUGHPUT_RATIO:g} x", f"{sat_rps:.0f} / {b_app:.0f} req/s = {sat_rps / b_app:.2f} x",
               sat_rps / b_app >= TARGET_THROUGHPUT_RATIO, sat_rps / b_app),
        Figure("saturated_ratio_relaxed", f"saturated autosave / bare insert ({run['relaxed']})", "",
               f"{sat_rps:.0f} / {b_rel:.0f} req/s = {sat_rps / b_rel:.2f} x", None, sat_rps / b_rel),
        Figure("autosave_cpu_ms", "autosave server CPU per request", f"<= {TARGET_CPU_MS:g} ms",
               f"{cpu_ms:.2f} ms ({run['sat_cpu'][best]:.1f} s / {answered} req)", cpu_ms <= TARGET_CPU_MS, cpu_ms),
        Figure("logins_p95_s", f"{n} logins, {CLIENTS} clients", f"p95 < {TARGET_P95_S:g} s", _lat(ep["logins/token"]),
               ep["logins/token"].p(95) < TARGET_P95_S, ep["logins/token"].p(95)),
        Figure("spike_p95_s", f"spike: {n} starts within 1 s", f"p95 < {TARGET_P95_S:g} s", _lat(ep["spike/start"]),
               ep["spike/start"].p(95) < TARGET_P95_S, ep["spike/start"].p(95)),
        Figure("spike_chain_figures", "spike: those with a chain + >= 2 figures (#13)", f"p95 < {TARGET_P95_S:g} s",
               f"{draw['chain_and_2_figures_p95']:.2f} s ({draw['chain_and_2_figures']} of {draw['attempts']}; "
               f"{draw['with_chain']} with a chain; {draw['figures_min']}-{draw['figures_max']} fig.)",
               draw["chain_and_2_figures"] >= 1 and draw["chain_and_2_figures_p95"] < TARGET_P95_S,
               draw["chain_and_2_figures_p95"]),
        Figure("starts_p95_s", f"{n} starts, {CLIENTS} clients", f"p95 < {TARGET_P95_S:g} s", _lat(ep["starts/start"]),
               ep["starts/start"].p(95) < TARGET_P95_S, ep["starts/start"].p(95)),
        Figure("submits_p95_s", f"{n} submits, {CLIENTS} clients", f"p95 < {TARGET_P95_S:g} s",
               _lat(ep["submits/submit"]), ep["submits/submit"].p(95) < TARGET_P95_S, ep["submits/submit"].p(95)),
        Figure("rss_peak_mib", "server RSS sum, peak", f"< {TARGET_MEMORY_MIB:g} MiB",
               f"{rss:.0f} MiB ({mem.peak_procs} processes)", rss < TARGET_MEMORY_MIB, rss),
        Figure("pss_peak_mib", "server PSS sum, peak", "", f"{pss:.0f} MiB", None, pss),
        Figure("memory_end_mib", "server RSS / PSS sum at the end", "",
               f"{mem.last_rss_kib / 1024:.0f} / {mem.last_pss_kib / 1024:.0f} MiB", None, mem.last_rss_kib / 1024),
        Figure("instances_1", "saturated autosave, 1 instance", "", f"{sat_rps:.0f} req/s", None, sat_rps),
        Figure("instances_2", "saturated autosave, 2 instances (2 cores cap it)", "",
               f"{run['two'].rps:.0f} req/s ({run['two'].rps / sat_rps:.2f} x)", None, run["two"].rps),
    ]
    if bench.moon:
        m, e = bench.moon, ep["moonshot/autosave"]
        p95 = e.p(95) * 1e3
        lag95 = percentile(e.lag, 95) * 1e3
        mlost = bench.lost.get("moonshot", 0)
        figs += [
            Figure("moon_p95_ms", f"moonshot: {m['students']} students, ~{m['rate']:.0f} saves/s", "p95 < 50 ms",
                   f"{p95:.1f} ms (p50 {e.p(50) * 1e3:.1f}, {m['saves']} saves)", p95 < 50, p95, gating=False),
            Figure("moon_errors", "moonshot errors / lost", "0 / 0",
                   f"{e.n_errors} / {mlost} of {bench.checked.get('moonshot', 0)}", e.n_errors == 0 and mlost == 0,
                   e.n_errors + mlost, gating=False),
            Figure("moon_client_lag_ms", "moonshot client's own lag p95 (its CPU)", "",
                   f"{lag95:.1f} ms ({100 * m['client_cpu']:.0f}% of a core)", None, lag95, gating=False),
        ]
    figs.append(Figure("load_average", "load average before / after this run", "",
                       f"{run['load_before'].split()[0]} / {run['load_after'].split()[0]} ({run['wall']:.0f} s)", None))
    return figs
