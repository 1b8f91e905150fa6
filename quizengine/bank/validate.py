"""Lint rules over a loaded catalog: every problem in one run, each at its YAML node."""

from __future__ import annotations

import gc
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..constants import VALIDATION_SEEDS
from . import figures
from .catalog import BankItem, Catalog, QuizDef, load_catalog
from .families import give_away_pairs
from .loader import Problem
from .expr import ParamError, compile_expr
from .params import references, template_names
from .render import math_errors
from .precision import precision_problems
from .rules import LEAK_SHARE, SeedChecks, residue
from .seedbatch import SeedBatch
from .seedrun import prefill
from .types import item_type
from .core import memo
from .variant import VariantError, calculate, is_trivial, make_variant, values_for

SEEDS = VALIDATION_SEEDS
RENDER_SEEDS = 3  # full variants (Markdown, MathML, worked solution) built per item
RANK_P = 1e-3  # the key's rank among computed options is non-uniform when a chi-square test gives p below this
FIXED_SHARE = 0.9  # a distractor within FIXED_SPREAD of one ratio (or offset) to the key in this share of seeds
FIXED_SPREAD = 0.01
PAIR_FACTORS = {2.0: "2X", 0.5: "X/2", -1.0: "-X"}  # "pick the option X such that this is also shown"
PAIR_CLOSE = 0.01  # "also shown": an option within 1% of it
PAIR_MARGIN = 0.1  # a pairing heuristic that beats chance by more than this (or 3 standard errors) is an error
GC_YOUNG = 100_000  # allocations between collections of the youngest generation while the processes check


_FORKED: Catalog | None = None  # the catalog a forked worker inherits


def _check_one(item_id: str, seeds: int) -> tuple[list[Problem], list[tuple], list[tuple]]:
    report: list[tuple] = []
    later: list[tuple] = []  # the figures to draw, drawn by the main process (figures.check)
    return check_item(_FORKED.items[item_id], seeds, report, later), report, later


def validate_paths(paths: list[Path], seeds: int = SEEDS, jobs: int = 1) -> Catalog:
    """Load and lint; the catalog's problems hold everything found, sorted by place.

    ``cat.report`` gets a row per calculated item and slip (a buggy calculator, or a parameter
    transposed or misread): (item, slip, seeds where it changes the answer, seeds the tolerance
    accepts it, seeds checked). ``jobs`` > 1 checks the items in that many forked processes, each
    taking the next item as it finishes one (the costliest first), so that every process stays
    busy to the end; meanwhile this process draws the figures they prepared (it alone imports
    matplotlib). Only the single-threaded CLI asks for it: forking a process that runs other
    threads (a web worker) is not safe; meanwhile the loaded catalog is frozen out of the garbage
    collector's walks and its youngest generation collected less often. The result does not depend
    on ``jobs``.
    """
    global _FORKED
    cat = load_catalog(paths)
    if jobs > 1 and len(cat.items) > 1:
        _FORKED = cat
        ids = _costliest_first(cat)
        threshold = gc.get_threshold()
        gc.freeze()  # the catalog: no collection walks it again, in this process or the forked ones
        gc.set_threshold(GC_YOUNG, *threshold[1:])  # the checks make many short-lived containers, few cycles
        try:
            with ProcessPoolExecutor(max_workers=min(jobs, len(ids)),
                                     mp_context=multiprocessing.get_context("fork")) as pool:
                for item_id, (found, rows, later) in zip(ids, pool.map(_check_one, ids, [seeds] * len(ids))):
                    cat.problems += found
                    cat.report += rows
                    for seed, drawings in later:
                        figures.draw(cat.items[item_id], seed, drawings)
        finally:
            _FORKED = None
            gc.set_threshold(*threshold)
            gc.unfreeze()
    else:
        for item in cat.items.values():
            cat.problems += check_item(item, seeds, cat.report)
    for quiz in cat.quizzes.values():
        cat.problems += check_quiz(quiz, cat)
    cat.problems.sort(key=lambda p: (p.path, p.mark.line, p.mark.col, p.message))
    cat.report.sort()
    return cat


def _costliest_first(cat: Catalog) -> list[str]:
    """Item ids by the work their checks take, most first: every seed of a calculated item runs the
    calculator several times (more for a multi-part item or one with figures); a static item is cheap."""
    def cost(item_id: str) -> tuple[int, int]:
        m = cat.items[item_id].model
        if getattr(m, "calc", None) is None:
            return (0, 0)
        return (1, 2 * (m.type == "multipart") + bool(m.figures) + len(getattr(m, "params", {})))
    return sorted(cat.items, key=cost, reverse=True)


def check_item(item: BankItem, seeds: int = SEEDS, report: list | None = None,
               later: list | None = None) -> list[Problem]:
    """Every rule on one item; the rules share each seed's values, calculation and buggy results.
    With ``later``, the sample figures are appended to it for the caller to draw (figures.check)."""
    with memo():
        return _check_item(item, seeds, report, later)


def _check_item(item: BankItem, seeds: int, report: list | None, later: list | None = None) -> list[Problem]:
    m = item.model
    out: list[Problem] = []
    out += item_type(m.type).rules(item)
    if not m.explanation:
        out.append(item.problem(("id",), "no explanation: students see only right or wrong", "warning"))
    out += _reference_rules(item)
    if out and any(p.severity == "error" for p in out):
        return out
    for text_key in ("prompt", "explanation"):
        text = getattr(m, text_key) or ""
        for bad in math_errors(text):
            out.append(item.problem((text_key,), f"math that cannot be rendered: {bad}"))
    prefill(item, seeds, not item_type(m.type).single_answer_path)  # every seed's calculation, batched
    for seed in range(min(RENDER_SEEDS, seeds)):
        try:
            v = make_variant(item, seed)
            shown = {"prompt": v.prompt, "explanation": v.explanation or ""}
        except VariantError as e:
            out.append(item.problem(e.key, f"seed {seed}: {e}"))
            return out
        for key, text in shown.items():
            tiny = residue(text)
            if tiny:
                out.append(item.problem((key,), f"seed {seed}: the {key} prints {tiny}, floating-point residue "
                                        "below 1e-12 of its largest value; print it as 0"))
    out += figures.check(item, seeds, later)
    if getattr(m, "calc", None) is not None:
        own = item_type(m.type).seed_rules(item, seeds)
        out += own if own is not None else _calculated_rules(item, seeds, report)
        if m.type == "single_choice" and not any(p.severity == "error" for p in out):
            out += _computed_choice_rules(item, seeds)
    elif m.type == "numeric":
        out += precision_problems(item, [m.answer])
    return out


def _reference_rules(item: BankItem) -> list[Problem]:
    m, out = item.model, []
    params = list(getattr(m, "params", {}))
    derived = list(getattr(m, "derived", {}))
    defined = set(params)
    for name, expr in getattr(m, "derived", {}).items():
        if name in defined:
            out.append(item.problem(("derived", name), f"{name!r} is both a param and a derived value", key=True))
        try:
            compile_expr(expr)
        except ParamError as e:
            out.append(item.problem(("derived", name), f"derived {name!r}: {e}"))
        defined.add(name)
    names = set(params) | set(derived)
    for key in ("prompt", "explanation"):
        extra = {"answer"} if key == "explanation" and item_type(m.type).answer_in_explanation else set()
        for ref in sorted(template_names(getattr(m, key) or "") - names - extra):
            out.append(item.problem((key,), f"{{{{{ref}}}}} refers to an undefined parameter "
                                    f"(defined: {', '.join(sorted(names)) or 'none'})"))
    calc = getattr(m, "calc", None)
    if calc is not None:
        for ref in sorted(references(calc) - names):
            out.append(item.problem(("calc",), f"\"${ref}\" refers to an undefined parameter "
                                    f"(defined: {', '.join(sorted(names)) or 'none'})"))
    return out


def _calculated_rules(item: BankItem, seeds: int, report: list | None = None) -> list[Problem]:
    m, out = item.model, []
    trivial: list[tuple[int, str]] = []
    checks = SeedChecks(item, seeds)
    done = []  # (env, spec, task, result, answer) of every seed
    for seed in range(seeds):
        try:
            env = values_for(item, seed)
            done.append((env, *calculate(item, seed, env)))
        except VariantError as e:
            return out + [item.problem(e.key, f"seed {seed}: {e}")]
        if not m.allow_trivial:
            why = is_trivial(done[-1][2], done[-1][3], m.answer)
            if why:
                trivial.append((seed, why))
    batch = SeedBatch(item, *[[d[i] for d in done] for i in (2, 3, 4, 1)]) if len(done) > 1 else None
    if batch is not None:
        checks.prepare(batch, [d[0] for d in done])
    for seed, (env, spec, task, result, answer) in enumerate(done):
        checks.add(seed, env, task, result, answer, spec, batch)
    if trivial:
        seed, why = trivial[0]
        out.append(item.problem(("params",), f"{len(trivial)} of {seeds} seeds make the question trivial "
                                f"(first: seed {seed}, {why}); narrow the ranges, or set allow_trivial: true"))
    out += _listed_mistakes(checks)
    out += checks.problems()
    if m.type == "numeric":
        out += precision_problems(item, checks.keys)
    if report is not None:
        report += checks.report()
    return out


def _listed_mistakes(checks: SeedChecks) -> list[Problem]:
    """The mistakes an item lists apply, change its answer, and are told apart by its tolerance."""
    item, m, out = checks.item, checks.item.model, []
    for i, k in enumerate(m.mistakes):
        loose = checks.leaks.get(k, [])
        if not checks.applies.get(k):
            out.append(item.problem(("mistakes", i), f"mistake {k!r} does not apply to this calculation "
                                    f"or answer path ({m.answer})"))
        elif not checks.differs.get(k):
            out.append(item.problem(("mistakes", i), f"mistake {k!r} gives the right answer in every variant, "
                                    "so it can never be recognised"))
        elif loose:
            sev = "error" if len(loose) > LEAK_SHARE * checks.seeds else "warning"
            out.append(item.problem(("tolerance",) if "tolerance" in item.raw else ("mistakes", i),
                                    f"the tolerance accepts the {k!r} answer in {len(loose)} of {checks.seeds} seeds "
                                    f"(first: seed {loose[0]}); tighten it", sev))
    return out


def _chi2_sf(x: float, df: int) -> float:
    """P(chi-square with ``df`` degrees of freedom >= x), in closed form for integer ``df``."""
    if df < 1 or x <= 0:
        return 1.0
    y = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= y / i
            total += term
        return min(1.0, math.exp(-y) * total)
    total, term = math.erfc(math.sqrt(y)), math.sqrt(y) / math.gamma(1.5)
    for i in range((df - 1) // 2):
        total += math.exp(-y) * term
        term *= y / (i + 1.5)
    return min(1.0, total)


def _ordinal(r: int, n: int) -> str:
    if r == 0:
        return "smallest"
    if r == n - 1:
        return "largest"
    return f"{r + 1}{'nd' if r == 1 else 'rd' if r == 2 else 'th'}"


def _constant(values: list[float]) -> float | None:
    """The value ``values`` nearly always take (within FIXED_SPREAD of their median), or None."""
    if len(values) < 10:
        return None
    mid = float(np.median(values))
    near = sum(abs(v - mid) <= FIXED_SPREAD * abs(mid) for v in values)
    return mid if mid != 0 and near >= FIXED_SHARE * len(values) else None


def _computed_choice_rules(item: BankItem, seeds: int) -> list[Problem]:
    """Keys recognisable without computing: by rank among the options, a fixed ratio or offset, a pair."""
    m, out = item.model, []
    if seeds < 1:
        return out
    ranks: list[tuple[int, int]] = []  # (key's rank among the shown values, number of options)
    ratios: dict[str, list[float]] = {}
    offsets: dict[str, list[float]] = {}
    pair_hits = {c: 0.0 for c in PAIR_FACTORS}
    chance = 0.0
    for seed in range(seeds):
        try:
            v = make_variant(item, seed)
        except VariantError as e:
            return [item.problem(e.key, f"seed {seed}: {e}")]
        shown = {o.id: float(o.text) for o in v.choices}
        key = shown[v.answer]
        ranks.append((sum(x < key for x in shown.values()), len(shown)))
        chance += 1 / len(shown)
        exact_key = v.sources[v.answer][1]
        for oid, (source, value) in v.sources.items():
            if oid == v.answer:
                continue
            offsets.setdefault(source, []).append(value - exact_key)
            if exact_key != 0:
                ratios.setdefault(source, []).append(value / exact_key)
        for c in PAIR_FACTORS:
            picks = [i for i, x in shown.items()
                     if any(j != i and abs(y - c * x) <= PAIR_CLOSE * max(abs(y), abs(c * x)) for j, y in shown.items())]
            pair_hits[c] += (v.answer in picks) / len(picks) if picks else 1 / len(shown)
    out += _rank_problem(item, ranks, seeds)
    where = {k: ("mistakes", i) for i, k in enumerate(m.mistakes)}
    for source in sorted(set(ratios) | set(offsets), key=lambda k: (k not in where, k)):
        ratio, offset = _constant(ratios.get(source, [])), _constant(offsets.get(source, []))
        what = f"distractor {source!r}" if source in where else f"the {source} option"
        n = len(offsets[source])
        if ratio is not None:
            out.append(item.problem(where.get(source, ("mistakes",)),
                                    f"{what} is always {ratio:.4g} x the key (in {n} seeds that show it); "
                                    "spotting the pair gives the key away: drop the mistake from this item"))
        elif offset is not None:
            out.append(item.problem(where.get(source, ("mistakes",)),
                                    f"{what} is always the key {'+' if offset > 0 else '-'} {abs(offset):.4g} "
                                    f"(in {n} seeds that show it); spotting the pair gives the key away: "
                                    "drop the mistake from this item"))
    chance /= seeds
    margin = max(PAIR_MARGIN, 3 * math.sqrt(chance * (1 - chance) / seeds))
    for c, hits in pair_hits.items():
        if hits / seeds > chance + margin:
            out.append(item.problem(("mistakes",), f"picking the option X such that {PAIR_FACTORS[c]} is also shown "
                                    f"finds the key in {hits / seeds:.0%} of {seeds} seeds (chance: {chance:.0%}); "
                                    "drop the mistake that is a fixed multiple of the key"))
    return out


def _rank_problem(item: BankItem, ranks: list[tuple[int, int]], seeds: int) -> list[Problem]:
    """A chi-square test of the key's rank against uniform (each seed's rank uniform over its options)."""
    width = max(n for _, n in ranks)
    observed, expected = [0] * width, [0.0] * width
    for r, n in ranks:
        observed[r] += 1
        for k in range(n):
            expected[k] += 1 / n
    cells = [(o, e) for o, e in zip(observed, expected) if e > 0]
    stat = sum((o - e) ** 2 / e for o, e in cells)
    if _chi2_sf(stat, len(cells) - 1) >= RANK_P:
        return []
    counts = ", ".join(f"{_ordinal(r, width)} {o}" for r, o in enumerate(observed))
    return [item.problem(("mistakes",), f"the key's rank among the options sorted by value is far from uniform over "
                         f"{seeds} seeds ({counts}; uniform: about {seeds / width:.0f} each, chi-square p < {RANK_P:g}); "
                         "a student can pick by position without computing")]


def check_quiz(quiz: QuizDef, cat: Catalog) -> list[Problem]:
    q, doc, out = quiz.model, quiz.doc, []
    pools: list[set[str]] = []
    for s, slot in enumerate(q.slots):
        if slot.items is not None:
            pool = set()
            for j, iid in enumerate(slot.items):
                if iid not in cat.items:
                    out.append(doc.problem(("slots", s, "items", j), f"quiz {q.id}: no item {iid!r} in the banks"))
                else:
                    pool.add(iid)
        else:
            if slot.topic not in cat.banks:
                out.append(doc.problem(("slots", s, "topic"), f"quiz {q.id}: no bank has topic {slot.topic!r} "
                                       f"(topics: {', '.join(sorted(cat.banks)) or 'none'})"))
                pools.append(set())
                continue
            pool = {i for i in cat.banks[slot.topic].item_ids
                    if (not slot.tags or set(slot.tags) <= set(cat.items[i].model.tags))
                    and not set(slot.exclude_tags or ()) & set(cat.items[i].model.tags)}
        at = ("slots", s, "count") if "count" in doc.data["slots"][s] else ("slots", s)
        families = {cat.items[i].model.family or f"item {i}" for i in pool}
        if slot.count > len(pool):
            out.append(doc.problem(at, f"quiz {q.id}: slot {s + 1} draws {slot.count} items from a pool of {len(pool)}"))
        elif slot.count > len(families):
            out.append(doc.problem(at, f"quiz {q.id}: slot {s + 1} draws {slot.count} items from a pool of {len(pool)} "
                                   f"in only {len(families)} families (a draw takes at most one item of a family)"))
        calculated = sum(getattr(cat.items[i].model, "calc", None) is not None for i in pool)
        if 0 < calculated < len(pool):
            out.append(doc.problem(("slots", s), f"quiz {q.id}: slot {s + 1}'s pool mixes {calculated} calculated items "
                                   f"with {len(pool) - calculated} others, so students get different numbers of "
                                   "calculated items: filter it (tags: [numeric] or exclude_tags: [numeric])", "warning"))
        pools.append(pool)
    total = sum(sl.count for sl in q.slots)
    union = set().union(*pools) if pools else set()
    if not out and len(union) < total:
        out.append(doc.problem(("slots",), f"quiz {q.id}: the slots draw {total} distinct items but their pools "
                               f"hold only {len(union)} together"))
    if not out and q.repeats == "avoid" and (q.max_attempts or 1) > 1:
        out += _repeat_problems(quiz, pools, total, len(union))
    ordered = sorted((cat.items[i] for i in union), key=lambda it: (it.path, it.index))
    by_model = {id(it.model): it for it in ordered}
    for a, b, why in give_away_pairs([it.model for it in ordered]):
        out.append(by_model[id(b)].problem(("id",), f"{why} with {a.id}, and quiz {q.id} can draw both in one "
                                           "attempt: give both the same family (family: NAME)", "warning"))
    return out


def _repeat_problems(quiz: QuizDef, pools: list[set[str]], total: int, union: int) -> list[Problem]:
    """A warning when ``repeats: avoid`` cannot hold for every allowed attempt."""
    q, doc, n = quiz.model, quiz.doc, quiz.model.max_attempts
    short = [(s, len(pool), slot.count) for s, (pool, slot) in enumerate(zip(pools, q.slots))
             if len(pool) < n * slot.count]
    if short:
        s, size, count = short[0]
        what = f"slot {s + 1}'s pool of {size} items (it draws {count} per attempt)"
    elif union < n * total:
        what = f"the pools' {union} items together ({total} per attempt)"
    else:
        return []
    at = ("max_attempts",) if "max_attempts" in doc.data else ("slots",)
    return [doc.problem(at, f"quiz {q.id}: with repeats: avoid, {n} attempts run out of {what}; later attempts "
                        "redraw the items a student met longest ago: widen the pool, lower max_attempts, "
                        "or set repeats: allow", "warning")]
