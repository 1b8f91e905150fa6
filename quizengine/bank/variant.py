"""One item under one seed: its numbers, rendered prompt, options, answer and worked solution."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..calc import mistakes as buggy
from ..calc.engine import run_task
from ..calc.losses import InfiniteLossError
from ..calc.spec import SpecError, Task, parse
from . import schema
from .catalog import BankItem
from .choices import computed_options, option_count
from .params import ParamError, draw, evaluate, fmt, plain, render_text, shuffled, substitute
from .render import markdown_to_html
from .solution import worked_solution


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
    item: BankItem
    seed: int
    values: dict[str, Any] = field(default_factory=dict)  # params and derived values
    prompt: str = ""
    choices: list[Option] | None = None  # single_choice, multiple_select
    lefts: list[Option] | None = None  # matching
    rights: list[Option] | None = None  # matching
    options: list[Option] | None = None  # ordering (shown shuffled)
    answer: Any = None  # the correct response, in the API's response format
    buggy: dict[str, Any] = field(default_factory=dict)  # mistake -> its (wrong) response
    choice_feedback: dict[str, str] = field(default_factory=dict)
    # Computed choices: option id -> (where it comes from: "key", a mistake or "decoy N", its exact value).
    sources: dict[str, tuple[str, float]] = field(default_factory=dict)
    spec: dict | None = None
    task: Task | None = None
    result: dict | None = None

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

    @property
    def answer_shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.answer)) if self.type == "numeric" else ()

    def public(self) -> dict[str, Any]:
        """Return what a student may see before submission: no answer, no correctness, no mistakes."""
        out: dict[str, Any] = {"id": self.item.id, "type": self.type, "prompt_html": self.prompt_html,
                               "points": self.model.points}
        for key in ("choices", "lefts", "rights", "options"):
            opts = getattr(self, key)
            if opts is not None:
                out[key] = [{"id": c.id, "text": c.text, "html": c.html} for c in opts]
        if self.type == "numeric":
            out["shape"] = list(self.answer_shape)
        return out


# ---------------------------------------------------------------- building

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


def values_for(item: BankItem, seed: int) -> dict[str, Any]:
    """Draw the params and evaluate the derived values of an item for one seed."""
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


def _finite(v: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(v, dtype=np.float64))))
    except (TypeError, ValueError):
        return False


def calculate(item: BankItem, seed: int, env: dict[str, Any]) -> tuple[dict, Task, dict, Any]:
    """Substitute the values into the item's spec, run it, and read the answer path."""
    m = item.model
    try:
        spec = substitute(m.calc, env)
    except ParamError as e:
        raise VariantError(("calc",), str(e)) from None
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            task = parse(spec)
            result = run_task(task)
    except (SpecError, InfiniteLossError, FloatingPointError) as e:
        raise VariantError(("calc",), f"the calculator refuses seed {seed}'s spec: {e}") from None
    try:
        answer = resolve(result, m.answer)
    except KeyError as e:
        raise VariantError(("answer",), str(e).strip('"')) from None
    if not _finite(answer):
        raise VariantError(("answer",), f"the answer is not a finite number for seed {seed}: {answer!r}")
    return spec, task, result, answer


def _mistake_values(item: BankItem, task: Task, answer: Any) -> dict[str, Any]:
    from ..grading import numbers_match  # local: grading imports this module's types

    out = {}
    for mistake in item.model.mistakes:
        res = buggy.buggy_result(task, mistake)
        if res is None:
            continue
        try:
            value = resolve(res, item.model.answer)
        except KeyError:
            continue
        if np.shape(value) != np.shape(answer) or not _finite(value):
            continue
        if numbers_match(value, answer, item.model.tolerance):
            continue  # indistinguishable from the right answer in this variant
        out[mistake] = value
    return out


def make_variant(item: BankItem, seed: int) -> Variant:
    """Build the variant of ``item`` for ``seed``; the same seed always gives the same variant."""
    m = item.model
    v = Variant(item=item, seed=seed)
    if isinstance(m, (schema.SingleChoice, schema.Numeric)) and (m.params or m.derived or m.calc):
        v.values = values_for(item, seed)
    try:
        v.prompt = render_text(m.prompt, v.values)
    except ParamError as e:
        raise VariantError(("prompt",), str(e)) from None
    if getattr(m, "calc", None) is not None:
        v.spec, v.task, v.result, answer = calculate(item, seed, v.values)
        v.buggy = _mistake_values(item, v.task, answer)
    else:
        answer = None
    salt = (item.id, seed)
    if isinstance(m, schema.Numeric):
        v.answer = answer if m.calc is not None else plain(m.answer)
        if not _finite(v.answer):
            raise VariantError(("answer",), f"the answer is not a finite number: {v.answer!r}")
    elif isinstance(m, schema.SingleChoice) and m.calc is not None:
        _computed_choices(v, m, answer, salt)
    elif isinstance(m, (schema.SingleChoice, schema.MultipleSelect)):
        order = shuffled(m.choices, *salt, "choices") if m.shuffle else list(m.choices)
        v.choices = [Option(f"c{i + 1}", c.text) for i, c in enumerate(order)]
        correct = [opt.id for opt, c in zip(v.choices, order) if c.correct]
        v.answer = correct[0] if m.type == "single_choice" and correct else correct
        v.choice_feedback = {opt.id: c.feedback for opt, c in zip(v.choices, order) if c.feedback}
    elif isinstance(m, schema.TrueFalse):
        v.answer = m.answer
    elif isinstance(m, schema.ShortText):
        v.answer = m.answers[0]
    elif isinstance(m, schema.Matching):
        v.lefts = [Option(f"l{i + 1}", p.left) for i, p in enumerate(m.pairs)]
        rights = [p.right for p in m.pairs] + list(m.distractors)
        order = shuffled(list(range(len(rights))), *salt, "rights")
        v.rights = [Option(f"r{k + 1}", rights[i]) for k, i in enumerate(order)]
        v.answer = {f"l{i + 1}": f"r{order.index(i) + 1}" for i in range(len(m.pairs))}
    elif isinstance(m, schema.Ordering):
        n = len(m.sequence)
        order = list(range(n))
        for attempt in range(20):  # never show the items already in order
            order = shuffled(list(range(n)), *salt, "order", attempt)
            if order != list(range(n)):
                break
        v.options = [Option(f"o{k + 1}", m.sequence[i]) for k, i in enumerate(order)]
        v.answer = [f"o{order.index(i) + 1}" for i in range(n)]
    return v


def _computed_choices(v: Variant, m: schema.SingleChoice, answer: Any, salt: tuple) -> None:
    from ..grading import numbers_match  # local: grading imports this module's types

    if np.ndim(answer) != 0:
        raise VariantError(("answer",), "computed options need a scalar answer")
    wrong = {k: float(value) for k, value in v.buggy.items()}
    try:
        options = computed_options(float(answer), wrong, option_count(len(m.mistakes)), m.digits, salt,
                                   lambda x: not numbers_match(x, answer, m.tolerance))
    except ValueError as e:
        raise VariantError(("mistakes",), str(e)) from None
    v.choices = [Option(f"c{i + 1}", text) for i, (_, _, text) in enumerate(options)]
    v.buggy = {}  # a mistake not among the options can never be picked
    for opt, (source, value, _) in zip(v.choices, options):
        v.sources[opt.id] = (source, value)
        if source == "key":
            v.answer = opt.id
        elif source in wrong:
            v.choice_feedback[opt.id] = f"This is what you get if you {buggy.DESCRIPTIONS[source]}."
            v.buggy[source] = opt.id


def _explanation(v: Variant) -> str | None:
    m = v.model
    parts = []
    if m.explanation:
        env = dict(v.values)
        if v.type == "numeric":
            env["answer"] = v.answer
        try:
            parts.append(render_text(m.explanation, env))
        except ParamError as e:
            raise VariantError(("explanation",), str(e)) from None
    if v.task is not None:
        value = v.answer if v.type == "numeric" else resolve(v.result, m.answer)
        parts.append(worked_solution(v.task, v.result, m.answer, value))
    return "\n\n".join(parts) if parts else None


def is_trivial(task: Task, result: dict, answer_path: str) -> str | None:
    """Return why a calculated variant makes a gradient question trivial, or None."""
    from ..calc.spec import ActivationTask, NetworkTask

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
