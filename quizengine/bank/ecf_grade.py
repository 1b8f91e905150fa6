"""Grading a chain part by part with error carried forward (bank/ecf.py has the graph, the
recomputing and the guards; bank/ecf_fast.py the short-cuts that cannot change a mark).

Below the item types: the ``multipart`` type (bank/types/multipart.py) grades with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calc import mistakes as buggy
from ..parsing import FormatError, parse_numeric
from ..tolerance import Tolerance, comparison, entries_close, numbers_match
from .core import Variant
from .ecf import CONSTANT, PartKey, PartResult, derivatives, ecf_key, moves, shown_value, zeroes
from .ecf_fast import Shortcuts
from .numfmt import FLOOR
from .params import fmt


def grade_parts(v: Variant, response: Any, shortcut: bool = True) -> list[PartResult]:
    """Grade every part: against the true chain and, for an ECF part, against the chain from the
    student's own valid answers to the parts it depends on; the better score counts.

    ``shortcut=False`` grades without bank/ecf_fast.py's short-cuts (the same marks, slower: for tests)."""
    resp = response if isinstance(response, dict) else {}
    credit = float(v.model.ecf_credit)
    parts = v.payload.parts
    values: dict[int, np.ndarray | FormatError] = {}  # part index -> the student's value, or why it is unreadable
    for i, k in enumerate(parts):
        if resp.get(k.part.id) is not None:
            try:
                values[i] = parse_numeric(resp[k.part.id], k.shape)
            except FormatError as e:
                values[i] = e
    read = {i: x for i, x in values.items() if isinstance(x, np.ndarray)}  # readable and finite
    truth = [np.asarray(k.answer, dtype=np.float64) for k in parts]
    feeding = {j for k in parts for j in k.deps}
    usable = {j: not zeroes(x, truth[j], parts[j].part.tolerance) for j, x in read.items() if j in feeding}
    cache: dict = {}
    fast = None
    if shortcut and credit > 0:
        used = {j for k in parts if k.part.ecf for j in k.deps if usable.get(j)}
        fast = Shortcuts(v.task, None if v.task.given else v.result, {parts[j].part.answer: read[j] for j in sorted(used)},
                         cache)
    wrong: dict[int, bool] = {}
    texts: dict | None = {} if fast else None  # part number -> its value as feedback shows it (fast only)
    oks: dict[int, np.ndarray | list[bool]] = {}  # part index -> which entries are right on the true chain
    ways: dict[tuple, tuple[str, ...]] = {}  # the sources' indices -> derivatives(), which reads only their paths
    out: list[PartResult] = []
    for i, k in enumerate(parts):
        p = k.part
        r = PartResult(p.id, k.number, 0.0, float(p.points))
        x = values.get(i)
        if x is None:
            r.feedback, r.answered = "Not answered.", False
            out.append(r)
            continue
        if isinstance(x, FormatError):
            r.feedback = r.format_error = str(x)
            out.append(r)
            continue
        ok = oks[i] = marks(x, truth[i], p.tolerance, fast is not None)
        fraction = share(ok)
        if fraction == 1.0:
            r.score, r.feedback = r.max_score, "Correct."
            out.append(r)
            continue
        why = ""
        sources = [j for j in k.deps if j in read and usable[j]]
        if p.ecf and credit > 0 and sources:
            given = {parts[j].part.answer: read[j] for j in sources}
            if fast is None:
                tried = derivatives(v.task, given)
            elif (tried := ways.get(tuple(sources))) is None:
                tried = ways[tuple(sources)] = derivatives(v.task, given)
            for way in tried:  # f' at z, or from the student's own a: the better counts
                if fraction >= credit:
                    break  # full ECF credit already: the other way cannot do better
                own = fast.pruned(given, way) if fast else given
                key, why_not = ecf_key(v.task, p.answer, truth[i], own, p.tolerance, cache, False, way)
                why = why_not if way == "z" else why  # the reason the graph's own chain gives, if any
                if key is None:
                    continue
                ecf_fraction = credit * share(marks(x, key, p.tolerance, fast is not None))
                if ecf_fraction > fraction and not ((fast and fast.moves(p.answer, key, given, p.tolerance, way))
                                                    or moves(v.task, p.answer, key, given, p.tolerance, cache, way)):
                    why = CONSTANT
                elif ecf_fraction > fraction:
                    fraction = ecf_fraction
                    r.ecf, r.ecf_key, r.ecf_derivative = True, key.tolist(), way
                    for j in sources:
                        if j not in wrong:  # numbers_match, from the comparison part j's own marking made
                            wrong[j] = (not (read[j].shape == truth[j].shape and all(oks[j])) if fast
                                        else not numbers_match(read[j], truth[j], parts[j].part.tolerance))
                    r.ecf_from = [{"part": parts[j].number, "id": parts[j].part.id, "name": parts[j].name,
                                   "value": read[j].tolist(), "wrong": wrong[j]} for j in sources]
        elif p.ecf and credit > 0 and any(j in read for j in k.deps):
            why = "your earlier answers it depends on are 0 where the true values are not"
        elif p.ecf and credit > 0 and k.deps:
            why = "none of the earlier answers it depends on could be read"
        r.score = round(r.max_score * fraction, 10)
        r.feedback = _part_feedback(k, x, ok, r, why, credit, texts)
        for mistake, value in k.mistakes.items():
            if not r.ecf and numbers_match(x, value, p.tolerance):
                r.mistake = mistake
                r.feedback = f"Your answer is what you get if you {buggy.DESCRIPTIONS[mistake]}."
                break
        out.append(r)
    return out


def marks(x: np.ndarray, key: np.ndarray, tol: Tolerance, plain: bool = False) -> np.ndarray | list[bool]:
    """``entries_close(x, key, tol)``; ``plain``: as a list of the entries in order (the same answers,
    without numpy's calls, which cost more than the comparing on a chain's small arrays)."""
    if not plain or x.shape != key.shape or not key.size:
        return entries_close(x, key, tol)
    return list(map(comparison(tol), x.ravel().tolist(), key.ravel().tolist()))


def share(ok: np.ndarray | list[bool]) -> float:
    """The share of entries right: ``float(np.mean(ok))``, counted."""
    if isinstance(ok, list):
        return sum(ok) / len(ok)  # (never empty: marks)
    return int(np.count_nonzero(ok)) / ok.size if ok.size else float(np.mean(ok))


def _part_feedback(k: PartKey, x: np.ndarray, ok: np.ndarray | list[bool], r: PartResult, why: str, credit: float,
                   texts: dict | None = None) -> str:
    """``texts``: a grading's earlier answers as shown (by part number; a part's value is the same in
    every part it feeds), filled here; None: each made anew."""
    kept = texts is not None
    if r.ecf:
        src = " and ".join(f"your {s['name']} = {_source_shown(s, texts)} from part {s['part']}" for s in named(r.ecf_from))
        scaled = "" if credit == 1 else f" ({fmt(credit * 100)}% of the points for error carried forward)"
        full = r.score >= r.max_score * credit - 1e-9
        return (f"Part {k.number} is marked on {src}: {'right' if full else 'partly right'} for your values{scaled} "
                f"(the true chain gives {true_shown(k.answer) if kept else shown_value(k.answer)}).")
    right, size = (sum(ok), len(ok)) if isinstance(ok, list) else (int(ok.sum()), ok.size)
    text = f"{right} of {size} entries are right." if x.ndim else "Not right."
    if why and k.part.ecf:
        text += f" No credit carried forward: {why}."
    return text


def _source_shown(source: dict[str, Any], texts: dict | None) -> str:
    if texts is None:
        return shown_value(source["value"])
    if source["part"] not in texts:
        texts[source["part"]] = shown_value(source["value"])
    return texts[source["part"]]


_SHOWN: dict[int, tuple[Any, float, str]] = {}  # id(key) -> (key, numfmt's floor, shown_value(key))


def true_shown(key: Any) -> str:
    """``shown_value(key)`` for a variant's true key, made once per key (and number floor)."""
    floor = FLOOR.get()
    entry = _SHOWN.get(id(key))
    if entry is None or entry[0] is not key or entry[1] != floor:
        if len(_SHOWN) >= 4096:
            _SHOWN.clear()
        entry = _SHOWN[id(key)] = (key, floor, shown_value(key))  # (the key kept: its id is no other's meanwhile)
    return entry[2]


def named(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources feedback names: the wrong ones nearest to the part (the latest wrong earlier answer
    stands for those before it), or the latest one if none is wrong (a rounded value carried on)."""
    wrong = [s for s in sources if s.get("wrong")]
    return wrong[-1:] if wrong else sources[-1:]
