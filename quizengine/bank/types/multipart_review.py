"""A multi-part item on the results page (per-part rows, the student's own chain where ECF was
earned) and its validation over many seeds (triviality, mistakes, chains where ECF never applies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...calc.engine import run_task
from ..core import Variant, VariantError, calculate, values_for
from ...tolerance import numbers_match
from ..ecf import CONSTANT, ecf_key, moves, recompute, task_kind, with_given
from ..loader import BankItem, Problem
from ..params import fmt, render_text, ParamError
from ..render import markdown_to_html
from ..solution import worked_solution
from .base import numbers_text

ECF_SEEDS = 50  # seeds whose chains are checked for ECF that a slip upstream can never earn
ECF_SHARE = 0.05  # more than this share of those seeds without ECF for a part is a warning
SLIP = 1.1  # the simulated slip: an earlier answer 10% off


def review(v: Variant, response: Any, result: dict[str, Any], points: float,
           view: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-part rows for the results page, scaled to the slot's ``points``, and the student's chain.

    ``view``, the variant's public view as rendered ahead (services/renderings), gives the parts'
    prompts already rendered (``MultipartType.public``: the same HTML), which spares the submit
    rendering them again (Markdown and MathML of each part's numbers, issue 14)."""
    scale = points / float(v.model.points) if v.model.points else 0.0
    shown = {p["id"]: p["prompt_html"] for p in (view or {}).get("parts") or [] if "prompt_html" in p}
    graded = {p["id"]: p for p in result.get("parts") or []}
    resp = response if isinstance(response, dict) else {}
    rows = []
    for k in v.payload.parts:
        g = graded.get(k.part.id, {})
        raw = resp.get(k.part.id)
        prompt_html = shown[k.part.id] if k.part.id in shown else markdown_to_html(k.part.prompt)
        rows.append({"id": k.part.id, "number": k.number, "name": k.name, "prompt_html": prompt_html,
                     "response": "(no answer)" if raw is None else numbers_text(raw),
                     "answer": numbers_text(k.answer), "score": round(g.get("score", 0.0) * scale, 10),
                     "max_score": round(k.part.points * scale, 10), "feedback": g.get("feedback", "Not answered."),
                     "correct": bool(g.get("correct")), "ecf": bool(g.get("ecf")),
                     "ecf_key": None if g.get("ecf_key") is None else numbers_text(g["ecf_key"])})
    out: dict[str, Any] = {"part_results": rows}
    chain = student_chain(v, graded)
    if chain:
        out["ecf_chain_html"] = markdown_to_html(chain)
    return out


def student_chain(v: Variant, graded: dict[str, dict[str, Any]]) -> str | None:
    """The worked chain from the student's own earlier values that earned ECF credit, or None."""
    given: dict[str, Any] = {}
    paths = {k.part.id: k.part.answer for k in v.payload.parts}
    for g in graded.values():
        for s in g.get("ecf_from") or [] if g.get("ecf") else []:
            given[paths[s["id"]]] = np.asarray(s["value"], dtype=np.float64)
    if not given:
        return None
    way = "a" if any(g.get("ecf") and g.get("ecf_derivative") == "a" for g in graded.values()) else "z"
    try:
        task = with_given(v.task, given, way)  # f' from the student's own a when that earned the credit
    except Exception:  # noqa: BLE001 - a stored value that no longer fits: show no chain
        return None
    credited = [k for k in v.payload.parts if graded.get(k.part.id, {}).get("ecf")]
    lines = ["**Your chain**: the calculator's chain from your own earlier answers "
             + ", ".join(f"{k.name} = {numbers_text(s)}" for k, s in _sources(v, given)) + ".", ""]
    for k in credited:
        mine = recompute(v.task, given, k.part.answer, derivative=graded[k.part.id].get("ecf_derivative", "z"))
        if mine is not None:
            lines.append(f"- part {k.number}, {k.name}: from your values ${_num(mine)}$ "
                         f"(the true chain: ${_num(k.answer)}$)")
    body = worked_solution(task, _result(task), ";".join(k.part.answer for k in credited), credited[-1].answer)
    lines += ["", body.rsplit("\n\nAnswer: ", 1)[0].replace("**Worked solution with your numbers**",
                                                              "Worked with your values:")]
    return "\n".join(lines)


def _sources(v: Variant, given: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(k, given[k.part.answer]) for k in v.payload.parts if k.part.answer in given]


def _result(task: Any) -> dict[str, Any]:
    return run_task(task)


def _num(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return fmt(float(a))
    return "(" + ", ".join(_num(e) for e in a) + ")"


def seed_rules(item: BankItem, seeds: int, kind: Any) -> list[Problem]:
    """Every seed builds (each part's path, finite answers), no seed is trivial, each mistake applies
    to some part and differs from its key, and ECF stays possible after a slip upstream."""
    m, out = item.model, []
    trivial: list[tuple[int, str]] = []
    applies = {k: 0 for k in m.mistakes}
    no_ecf: dict[int, list[tuple[int, str]]] = {}
    for seed in range(seeds):
        v = Variant(item=item, seed=seed, kind=kind)
        try:
            v.values = values_for(item, seed)
            v.prompt = render_text(m.prompt, v.values)
            v.spec, v.task, v.result, _ = calculate(item, seed, v.values, read_answer=False)
            kind.build(v, None)
        except ParamError as e:
            return out + [item.problem(("prompt",), f"seed {seed}: {e}")]
        except VariantError as e:
            return out + [item.problem(e.key, f"seed {seed}: {e}")]
        if not m.allow_trivial:
            why = kind.trivial(v)
            if why:
                trivial.append((seed, why))
        for k in v.payload.parts:
            for mistake in k.mistakes:
                applies[mistake] += 1
        if seed < ECF_SEEDS:
            runs: dict = {}  # the seed's chains by their given values: parts often slip the same earlier part
            for i, k in enumerate(v.payload.parts):
                why = _slip_refused(v, k, runs)
                if why:
                    no_ecf.setdefault(i, []).append((seed, why))
    if trivial:
        seed, why = trivial[0]
        out.append(item.problem(("params",), f"{len(trivial)} of {seeds} seeds make the question trivial "
                                f"(first: seed {seed}, {why}); narrow the ranges, or set allow_trivial: true"))
    for i, mistake in enumerate(m.mistakes):
        if applies[mistake] == 0:
            out.append(item.problem(("mistakes", i), f"mistake {mistake!r} gives no part a recognisable answer "
                                    "in any variant"))
    checked = min(seeds, ECF_SEEDS)
    for i, bad in sorted(no_ecf.items()):
        if len(bad) > ECF_SHARE * checked:
            seed, why = bad[0]
            out.append(item.problem(("parts", i), f"part {i + 1}: a 10% slip in the parts it depends on earns no "
                                    f"error carried forward in {len(bad)} of {checked} seeds (first: seed {seed}: "
                                    f"{why}); narrow the ranges, or set ecf: false", "warning"))
    return out


def _slip_refused(v: Variant, k: Any, runs: dict | None = None) -> str | None:
    """Why a slip in the part's first dependency would earn no ECF on this part when it matters (the
    chain from the slip gives another key), or None. ``runs`` (one per seed) keeps each recomputed
    chain by its given values, as a grading does (``ecf.recompute``): the same values either way."""
    if not k.part.ecf or not k.deps or task_kind(v.task) is None:
        return None
    dep = v.payload.parts[k.deps[0]]
    given = {dep.part.answer: np.asarray(dep.answer, dtype=np.float64) * SLIP + 0.01}
    key, why = ecf_key(v.task, k.part.answer, k.answer, given, k.part.tolerance, runs, check_constant=False)
    if key is None:
        return why
    if numbers_match(key, k.answer, k.part.tolerance):
        return None  # the slip does not reach this part's precision: the true key marks it right
    return None if moves(v.task, k.part.answer, key, given, k.part.tolerance, runs) else CONSTANT
