"""The figures of one benchmark run, the summary table (one column per database) and --json."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    key: str  # stable name, for --json
    label: str  # what is measured
    target: str  # "< 1 s"; "" for a figure without a target
    value: str  # the measured value as printed
    passed: bool | None = None  # None: no target
    number: float | None = None  # the value as a number (its unit is in the label), for --json
    gating: bool = True  # a MISS makes the exit status 1 (the moonshot is reported, not gating)


def verdict(f: Figure | None) -> str:
    if f is None:
        return "-"
    if f.passed is None:
        return ""
    return ("PASS" if f.passed else "MISS") + ("" if f.gating else "*")


def table(columns: list[tuple[str, list[Figure]]], width: int = 44) -> None:
    """One row per figure: label, target, then each database's value and verdict."""
    keys: list[str] = []
    info: dict[str, Figure] = {}
    for _, figs in columns:
        for f in figs:
            if f.key not in info:
                keys.append(f.key)
                info[f.key] = f
    by = [{f.key: f for f in figs} for _, figs in columns]
    head = f"  {'figure':<50} {'target':<12}" + "".join(f" {name:<{width}} {'':<5}" for name, _ in columns)
    print(head)
    print("  " + "-" * (len(head) - 2))
    for k in keys:
        row = f"  {info[k].label:<50} {info[k].target:<12}"
        for col in by:
            f = col.get(k)
            row += f" {(f.value if f else '-'):<{width}} {verdict(f):<5}"
        print(row.rstrip())
    print("  (* the moonshot is reported, not counted in the exit status)")


def all_passed(figs: list[Figure]) -> bool:
    return all(f.passed is not False for f in figs if f.gating)


def write_json(path: Path, meta: dict[str, Any], columns: list[tuple[str, list[Figure]]]) -> None:
    path.write_text(json.dumps({**meta, "runs": {name: [asdict(f) for f in figs] for name, figs in columns}},
                               indent=2) + "\n")


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


