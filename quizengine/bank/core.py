"""What every item type builds its variant from: the Variant itself, drawn values, the calculator's
answer and the buggy answers that can be told apart from it.

Below the item types (``bank/types/``): nothing here knows one type from another. A Variant's
type-specific data is its ``payload``, built by its type (``kind``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..calc import mistakes as buggy
from ..calc.engine import run_task
from ..calc.losses import InfiniteLossError
from ..calc.spec import ActivationTask, NetworkTask, SpecError, Task, parse
from ..tolerance import Tolerance, numbers_match
from .loader import BankItem
from .params import ParamError, denoise, draw, evaluate, fmt, largest, noise_floor, render_text, substitute_spec
from .render import markdown_to_html


class VariantError(ValueError):
    """An item that cannot produce a variant for some seed; ``key`` names the part at fault."""

    def __init__(self, key: tuple, message: str):
        super().__init__(message)
        self.key = key


@dataclass
class Option:
    """A choice, a matching side or an ordering entry as a student sees it."""

    id: str
    text: str  # Markdown

    @property
    def html(self) -> str:
        return markdown_to_html(self.text)


@dataclass
class Variant:
    """One item under one seed. ``kind`` is its item type (the registry's entry), ``payload`` the
    data only that type has (its options, its answer's shape, its buggy answers)."""

    item: BankItem
    seed: int
    kind: Any  # bank.types.base.ItemType
    values: dict[str, Any] = field(default_factory=dict)  # params and derived values
    prompt: str = ""
    answer: Any = None  # the correct response, in the API's response format
    payload: Any = None
    scale: float = 0.0  # its largest drawn value: shown numbers below 1e-12 of it (and of the result's) are residue, shown as 0
    spec: dict | None = None  # a calculated item's spec with this seed's numbers,
    task: Task | None = None  # as the calculator parsed it,
    result: dict | None = None  # and its result

    @property
    def model(self) -> Any:
        return self.item.model

    @property
    def type(self) -> str:
        return self.model.type

    @property
    def prompt_html(self) -> str:
        return markdown_to_html(self.prompt)

    @property
    def explanation(self) -> str | None:
        """The author's explanation and the worked solution (built on first use: only after a submit)."""
        if "_explanation" not in self.__dict__:
            self.__dict__["_explanation"] = _explanation(self)
        return self.__dict__["_explanation"]

    @property
    def explanation_html(self) -> str | None:
        return None if self.explanation is None else markdown_to_html(self.explanation)

    # Views of the payload, for callers that ask any variant (None or empty when its type has none).
    @property
    def buggy(self) -> dict[str, Any]:
        """Mistake -> the response that shows it (a number, or a computed option's id)."""
        return getattr(self.payload, "mistakes", {})

    @property
    def answer_shape(self) -> tuple[int, ...]:
        return getattr(self.payload, "shape", ())

    @property
    def choices(self) -> list[Option] | None:
        return getattr(self.payload, "choices", None)

    @property
    def choice_feedback(self) -> dict[str, str]:
        return getattr(self.payload, "feedback", {})

    @property
    def sources(self) -> dict[str, tuple[str, float]]:
        return getattr(self.payload, "sources", {})

    @property
    def lefts(self) -> list[Option] | None:
        return getattr(self.payload, "lefts", None)

    @property
    def rights(self) -> list[Option] | None:
        return getattr(self.payload, "rights", None)

    @property
    def options(self) -> list[Option] | None:
        return getattr(self.payload, "options", None)

    def public(self) -> dict[str, Any]:
        """Return what a student may see before submission: no answer, no correctness, no mistakes."""
        out: dict[str, Any] = {"id": self.item.id, "type": self.type, "prompt_html": self.prompt_html,
                               "points": self.model.points}
        out.update(self.kind.public(self))
        return out


def options_public(options: list[Option]) -> list[dict[str, str]]:
    return [{"id": c.id, "text": c.text, "html": c.html} for c in options]


# ---------------------------------------------------------------- drawing and calculating

PATH_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|(\.)")


@lru_cache(maxsize=2048)
def parse_path(path: str) -> tuple[str | int, ...]:
    """Split ``layers[1].dW[0][1]`` into ('layers', 1, 'dW', 0, 1); KeyError when malformed."""
    steps: list[str | int] = []
    pos = 0
    for m in PATH_TOKEN.finditer(path):
        if m.start() != pos:
            break
        pos = m.end()
        name, index, dot = m.groups()
        if not dot:
            steps.append(name if name is not None else int(index))
    if pos != len(path) or not steps:
        raise KeyError(f"cannot read {path!r} at character {pos + 1}")
    return tuple(steps)


def resolve(result: Any, path: str) -> Any:
    """Follow a result path such as ``layers[1].dW[0][1]``; raise KeyError naming the first bad step."""
    node = result
    for step in parse_path(path):  # the common case, plain dicts and lists all the way
        if type(step) is str:
            if type(node) is dict and step in node:
                node = node[step]
                continue
        elif type(node) is list and -len(node) <= step < len(node):
            node = node[step]
            continue
        return _resolve(result, path)  # anything else the long way, which names the bad step
    return node


def _resolve(result: Any, path: str) -> Any:
    node, done = result, ""
    for step in parse_path(path):
        if isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                keys = ", ".join(node) if isinstance(node, dict) else "none (it is a value)"
                raise KeyError(f"{path!r}: {done or 'the result'} has no {step!r} (it has: {keys})")
            node = node[step]
            done += ("." if done else "") + step
        else:
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                size = f"has {len(node)} entries" if isinstance(node, list) else "is a number"
                raise KeyError(f"{path!r}: {done} {size}, so [{step}] does not exist")
            node = node[step]
            done += f"[{step}]"
    return node


# While one item is validated, its rules share each seed's values, calculation and buggy results
# (``memo``): a rule asking again gets the objects computed first, which every caller only reads.
_MEMO: ContextVar[dict | None] = ContextVar("bank_memo", default=None)


@contextmanager
def memo() -> Iterator[None]:
    """Compute each (item, seed)'s values, calculation and buggy results once within the block."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def shared(key: tuple, owner: Any, make: Callable[[], Any]) -> Any:
    """``make()``, made once per ``key`` within ``memo`` (``owner``, whose id the key holds, is kept alive
    with it); made afresh outside one."""
    cache = _MEMO.get()
    if cache is None:
        return make()
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = (owner, make())
    return hit[1]


def values_for(item: BankItem, seed: int) -> dict[str, Any]:
    """Draw the params and evaluate the derived values of an item for one seed."""
    cache = _MEMO.get()
    if cache is None:
        return _values_for(item, seed)
    key = ("values", id(item), seed)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = (item, _values_for(item, seed))
    return hit[1]


def _values_for(item: BankItem, seed: int) -> dict[str, Any]:
    m = item.model
    env: dict[str, Any] = {}
    for name, spec in getattr(m, "params", {}).items():
        try:
            env[name] = draw(item.id, seed, name, spec)
        except ParamError as e:
            raise VariantError(("params", name), f"param {name!r}: {e}") from None
    for name, expr in getattr(m, "derived", {}).items():
        try:
            env[name] = evaluate(expr, env)
        except ParamError as e:
            raise VariantError(("derived", name), f"derived {name!r} = {expr!r}: {e}") from None
    return env


def finite(v: Any) -> bool:
    if type(v) is float:
        return math.isfinite(v)
    try:
        return bool(np.isfinite(np.asarray(v, dtype=np.float64)).all())
    except (TypeError, ValueError):
        return False


def calculate(item: BankItem, seed: int, env: dict[str, Any], read_answer: bool = True) -> tuple[dict, Task, dict, Any]:
    """Substitute the values into the item's spec, run it, and read the answer path (unless
    ``read_answer`` is false: a multi-part item reads one path per part)."""
    cache = _MEMO.get()
    mine = cache is not None and cache.get(("values", id(item), seed), (None, None))[1] is env
    if not mine:
        return _calculate(item, seed, env, read_answer)
    key = ("calculate", id(item), seed, read_answer)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = _calculate(item, seed, env, read_answer)
    return hit


def _calculate(item: BankItem, seed: int, env: dict[str, Any], read_answer: bool) -> tuple[dict, Task, dict, Any]:
    spec, task, result = parsed(item, seed, env, run=True)
    return spec, task, result, answer_of(item, seed, spec, result) if read_answer else None


def parsed(item: BankItem, seed: int, env: dict[str, Any], run: bool = False) -> tuple[dict, Task, dict | None]:
    """The item's spec with the seed's values substituted, the task the calculator parses from it and,
    if ``run``, its result."""
    try:
        spec = substitute_spec(item.model.calc, env)
    except ParamError as e:
        raise VariantError(("calc",), str(e)) from None
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            task = parse(spec)
            return spec, task, run_task(task) if run else None
    except (SpecError, InfiniteLossError, FloatingPointError) as e:
        raise VariantError(("calc",), f"the calculator refuses seed {seed}'s spec: {e}") from None


def answer_of(item: BankItem, seed: int, spec: dict, result: dict) -> Any:
    """The answer path's value in a seed's result: finite, residue (0.1 + 0.2 - 0.3) set to 0."""
    try:
        answer = resolve(result, item.model.answer)
    except KeyError as e:
        raise VariantError(("answer",), str(e).strip('"')) from None
    if not finite(answer):
        raise VariantError(("answer",), f"the answer is not a finite number for seed {seed}: {answer!r}")
    # Floating-point residue (0.1 + 0.2 - 0.3) is 0: a key of -5.55e-17 would refuse the exact answer 0.
    if type(answer) is float:  # the common scalar, without a 0-d array (the same test)
        noisy = 0 < abs(answer) < 1e-9
    else:
        tiny = np.abs(np.asarray(answer, dtype=np.float64))
        noisy = bool(((tiny > 0) & (tiny < 1e-9)).any())
    return denoise(answer, largest(spec, result)) if noisy else answer


def buggy_result(task: Task, mistake: str) -> dict[str, Any] | None:
    """``calc.mistakes.buggy_result``, run once per task and mistake within ``memo``."""
    cache = _MEMO.get()
    if cache is None:
        return buggy.buggy_result(task, mistake)
    key = ("buggy", id(task), mistake)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = (task, buggy.buggy_result(task, mistake))
    return hit[1]


def _shape(v: Any) -> tuple[int, ...]:
    """``np.shape(v)``, answered without an array for the common float and array."""
    t = type(v)
    return () if t is float else v.shape if t is np.ndarray else np.shape(v)


def buggy_answers(task: Task, path: str, answer: Any, mistakes: list[str],
                  result: dict | None = None) -> Iterator[tuple[str, Any]]:
    """Each mistake's answer where it applies: its buggy calculator runs, ``path`` reads a finite value
    of the answer's shape. The one filter of buggy answers (variants and validation both use it).
    Given the true ``result``, a mistake that leaves the quantity at ``path`` as it is (a slip in the
    backward pass read at a forward value, say) is not run: its answer is read from ``result``
    (``calc.mistakes.unchanged_at``)."""
    steps = parse_path(path) if result is not None else ()
    for mistake in mistakes:
        res = result if steps and buggy.unchanged_at(task, mistake, steps) else buggy_result(task, mistake)
        if res is None:
            continue
        try:
            value = resolve(res, path)
        except KeyError:
            continue
        if _shape(value) == _shape(answer) and finite(value):
            yield mistake, value


def mistake_values(item: BankItem, task: Task, answer: Any, tol: Tolerance) -> dict[str, Any]:
    """Mistake -> its buggy answer, for the mistakes the tolerance tells apart from ``answer``."""
    return {k: value for k, value in buggy_answers(task, item.model.answer, answer, item.model.mistakes)
            if not numbers_match(value, answer, tol)}  # else indistinguishable in this variant


def _explanation(v: Variant) -> str | None:
    with noise_floor(max(v.scale, largest(v.spec, v.result))):
        return _explained(v)


def _explained(v: Variant) -> str | None:
    m = v.model
    parts = []
    if m.explanation:
        env = dict(v.values)
        if v.kind.answer_in_explanation:
            env["answer"] = v.answer
        try:
            parts.append(render_text(m.explanation, env))
        except ParamError as e:
            raise VariantError(("explanation",), str(e)) from None
    if v.task is not None:
        parts.append(v.kind.worked(v))
    return "\n\n".join(parts) if parts else None


def is_trivial(task: Task, result: dict, answer_path: str) -> str | None:
    """Return why a calculated variant makes a gradient question trivial, or None."""
    gradient_question = any(k in answer_path for k in ("delta", "dW", "db", "W_new", "b_new", "derivative"))
    if isinstance(task, NetworkTask):
        for k, (layer, lr) in enumerate(zip(task.network.layers, result["layers"])):
            name = layer.activation.name
            if name not in ("sigmoid", "tanh", "relu"):
                continue
            z = np.asarray(lr["z"])
            if name != "relu" and np.any(np.abs(z) > 6):
                return f"layer {k + 1}'s {name} saturates (|z| = {fmt(np.max(np.abs(z)), 3)} > 6)"
            if gradient_question and name == "relu" and np.all(z <= 0):
                return f"every ReLU unit of layer {k + 1} is dead (z <= 0), so the gradients through it are 0"
    elif isinstance(task, ActivationTask) and gradient_question:
        if task.name in ("sigmoid", "tanh") and np.any(np.abs(task.z) > 6):
            return f"{task.name} saturates (|z| = {fmt(np.max(np.abs(task.z)), 3)} > 6), its derivative is ~0"
        if task.name == "relu" and np.all(task.z <= 0):
            return "every z <= 0, so every ReLU derivative is 0"
    return None
