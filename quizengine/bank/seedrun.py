"""Every seed's calculation of one item from one batched run (``calc.batch``), put in the validator's
memo (``core.memo``) before its rules ask: each seed's values are drawn and its spec parsed as
before, then the true calculator runs once over all seeds instead of once per seed, and the listed
mistakes of a multi-part or single-choice item (whose variants show their answers) once each.

What the memo is handed is what the per-seed way computes, number for number (the batched
calculator gives every seed's numbers bit for bit; tests/bank/test_seed_run.py compares them on every
shipped item). Whatever the batch does not cover is left out of the memo, so the rules compute it
seed by seed as before and meet the same errors at the same seed: a seed whose values, spec or answer
fail (and every later seed), seeds that differ in structure or have given values, a floating-point
error in the batched run, a seed whose loss is infinite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calc.batch import stack
from ..calc.batch_mistakes import buggy, results, run
from ..calc.mistakes import unchanged_at
from .core import VariantError, _MEMO, answer_of, parse_path, parsed, values_for
from .loader import BankItem
from .params import ParamError, draw_seeds, evaluate

BATCH_KEY = "seedrun"  # memo key (with the item's id) of (the seeds' tasks, their batch, its true result)


def prefill(item: BankItem, seeds: int, multipart: bool) -> None:
    """Within ``memo``: each seed's ``calculate(item, seed, values_for(item, seed), read_answer)``
    from one batched run (``read_answer`` is false for a multi-part item, which reads one path per
    part); for a multi-part or single-choice item also each seed's ``buggy_result`` of its listed mistakes."""
    cache = _MEMO.get()
    m = item.model
    if cache is None or seeds < 2 or getattr(m, "calc", None) is None:
        return
    if not multipart and not isinstance(getattr(m, "answer", None), str):
        return
    _values(cache, item, seeds)
    specs, tasks = [], []
    try:
        for seed in range(seeds):
            spec, task, _ = parsed(item, seed, values_for(item, seed))
            specs.append(spec)
            tasks.append(task)
    except VariantError:
        pass  # this seed fails the per-seed way: only the seeds before it are batched
    if len(tasks) < 2:
        return
    batch = stack(tasks)
    if batch is None:
        return
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            true = run(batch)
    except FloatingPointError:
        return  # the per-seed way finds which seed it is
    cache[(BATCH_KEY, id(item))] = (item, (tasks, batch, true))
    each = results(batch, true)
    losses = true["loss"] if isinstance(true, dict) and "loss" in true else None
    for seed, (spec, task, result) in enumerate(zip(specs, tasks, each)):
        if losses is not None and losses[seed] is None:
            break  # an infinite loss: the per-seed calculator refuses this seed
        try:
            answer = None if multipart else answer_of(item, seed, spec, result)
        except VariantError:
            break
        cache[("calculate", id(item), seed, not multipart)] = (spec, task, result, answer)
    if multipart:  # (MultipartType._build reads the true result where a mistake leaves every part as it is)
        _mistakes(cache, item, tasks, batch, true, [parse_path(p.answer) for p in m.parts])
    elif m.type == "single_choice":  # (its options: every listed mistake's answer on every seed)
        _mistakes(cache, item, tasks, batch, true, [])


def _values(cache: dict, item: BankItem, seeds: int) -> None:
    """Each seed's ``values_for(item, seed)``, every parameter drawn for all seeds at once
    (``params.draw_seeds``), up to the first seed that fails (``values_for`` then says why)."""
    m = item.model
    try:
        columns = [(name, draw_seeds(item.id, seeds, name, spec)) for name, spec in getattr(m, "params", {}).items()]
    except ParamError:
        return
    derived = getattr(m, "derived", {})
    for seed in range(seeds):
        key = ("values", id(item), seed)
        if key in cache:
            continue
        env = {name: column[seed] for name, column in columns}
        try:
            for name, expr in derived.items():
                env[name] = evaluate(expr, env)
        except ParamError:
            return
        cache[key] = (item, env)


def _mistakes(cache: dict, item: BankItem, tasks: list, batch: Any, true: Any, steps: list[tuple]) -> None:
    """Each seed's ``buggy_result(task, mistake)`` of the item's listed mistakes, on the seeds where it
    changes some path of ``steps`` (any path when none is given)."""
    for mistake in item.model.mistakes:
        wanted = [s for s, task in enumerate(tasks) if not steps or not all(unchanged_at(task, mistake, st) for st in steps)]
        if not wanted:
            continue
        res, applies = buggy(batch, mistake, true)
        each = results(batch, res) if res is not None else None
        for s in wanted:
            task = tasks[s]
            cache[("buggy", id(task), mistake)] = (task, each[s] if applies[s] else None)


def batched(item: BankItem, tasks: list) -> tuple[Any, Any] | None:
    """(the batch, its true result) that ``prefill`` ran for exactly these tasks, or None."""
    cache = _MEMO.get()
    hit = cache.get((BATCH_KEY, id(item))) if cache is not None else None
    if hit is None:
        return None
    mine, batch, true = hit[1]
    if len(mine) != len(tasks) or any(a is not b for a, b in zip(mine, tasks)):
        return None
    return batch, true
