"""Smoke test of benchmarks/load.py: a tiny class through every phase, on SQLite (no timings asserted).

The class is as small as still runs every phase with students at once (4, and 2 more for the
moonshot: 10 attempts for `quizengine warm` to render ahead, not 16), and each student saves every
0.2 s on average (its 20 saves in about 4 s, not 20 s of waiting): the same phases, figures and checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIGURES = {"errors", "lost", "paced_p95_ms", "saturated_ratio_app", "saturated_ratio_relaxed", "autosave_cpu_ms",
           "logins_p95_s", "spike_p95_s", "spike_chain_figures", "starts_p95_s", "submits_p95_s", "rss_peak_mib",
           "pss_peak_mib", "memory_end_mib", "instances_1", "instances_2", "moon_p95_ms", "moon_errors",
           "moon_client_lag_ms"}


@pytest.mark.slow
def test_quick_run_reports_every_figure_without_errors_or_lost_answers(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load.py"), "--quick", "--students", "4",
                        "--save-interval", "0.2", "--duration", "2", "--moonshot", "--moon-students", "6",
                        "--moon-duration", "3",
                        "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode in (0, 1), r.stdout[-3000:] + r.stderr[-3000:]  # 2: the benchmark could not run
    data = json.loads(out.read_text())
    figs = {f["key"]: f for f in data["runs"]["SQLite"]}
    assert FIGURES <= set(figs)
    assert figs["errors"]["number"] == 0, r.stdout[-3000:]
    assert figs["lost"]["number"] == 0, r.stdout[-3000:]
    assert figs["moon_errors"]["number"] == 0, r.stdout[-3000:]
    assert figs["autosave_cpu_ms"]["number"] > 0  # the server's CPU was read from /proc
    assert figs["pss_peak_mib"]["number"] > 0
    assert all(0 < ms < 60_000 for ms in data["hash_cpu_ms"]) and "machine speed: one Argon2id hash" in r.stdout
    assert "== summary" in r.stdout and "moonshot" in r.stdout
