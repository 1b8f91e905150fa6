"""``multipart``: a chain of numeric parts on one calculator spec (forward pass, loss, deltas,
gradients, an update; or an optimizer's velocity, then its parameters), marked with error carried
forward (ECF): a part wrong on the true chain can earn its credit on the chain the calculator
recomputes from the student's own earlier answers (bank/ecf.py).

The response is an object ``{part_id: value}`` (CONTRACT §3a), each value a numeric response; a
part left out is unanswered. The page's autosave sends the whole object, with one seq per question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, StrictBool, model_validator

from ...parsing import CostlyNumber, FormatError, parse_numeric
from ...tolerance import Tolerance
from ...calc.mistakes import unchanged_at
from ..core import Variant, VariantError, _shape, buggy_result, finite, is_trivial, parse_path, resolve, shared
from ..ecf import PartKey, depends, graph_key, task_kind
from ..ecf_grade import grade_parts
from ..ecf_names import quantity_name
from ..loader import BankItem, Problem
from ..params import fmt, latex, plain
from ..render import markdown_to_html
from ..schema import DEFAULT_TOLERANCE, Calculated, ItemBase, Strict, Text
from ..seedcmp import match
from ..solution import row, worked_solution
from . import multipart_review
from .base import ItemType, Namer, Outcome, ResponseRefused, numbers_text
from .numeric import TYPE as NUMERIC, NumericPayload

PartId = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=20)


class Part(Strict):
    id: str = PartId
    prompt: Text
    answer: str  # a path into the calculator's result
    tolerance: Tolerance = DEFAULT_TOLERANCE
    points: float = Field(default=1.0, gt=0)
    ecf: StrictBool = True  # may earn its credit on the student's own earlier values
    depends_on: list[str] | None = None  # earlier parts it is computed from (default: from the graph)
    name: str | None = None  # the quantity's name in feedback (default: from the path, e.g. a⁽¹⁾)


class Multipart(ItemBase, Calculated):
    type: Literal["multipart"]
    parts: list[Part] = Field(min_length=2, max_length=12)
    ecf_credit: float = Field(default=1.0, ge=0, le=1)  # the share of a part's points ECF earns

    @model_validator(mode="before")
    @classmethod
    def _points_from_parts(cls, data: Any) -> Any:
        if isinstance(data, dict) and "points" not in data and isinstance(data.get("parts"), list):
            try:
                data = {**data, "points": sum(float(p.get("points", 1.0)) for p in data["parts"])}
            except (AttributeError, TypeError, ValueError):
                pass  # the parts' own validation says what is wrong
        return data

    @model_validator(mode="after")
    def _chain(self) -> "Multipart":
        if self.calc is None:
            raise ValueError("a multipart item needs 'calc': its parts are paths into one calculator result")
        seen: list[str] = []
        for p in self.parts:
            if p.id in seen:
                raise ValueError(f"part id {p.id!r} is used twice")
            for d in p.depends_on or []:
                if d not in seen:
                    raise ValueError(f"part {p.id!r}: depends_on names {d!r}, which is not an earlier part "
                                     f"(earlier: {', '.join(seen) or 'none'})")
            seen.append(p.id)
        return self


@dataclass(frozen=True)
class _PartId:
    """A part as the save's checks read it (its id): what a save view keeps of the bank's Part."""

    id: str


@dataclass
class MultipartPayload:
    parts: list[PartKey]

    @property
    def shape(self) -> tuple[int, ...]:  # (a multi-part answer has no single shape)
        return ()


def precision(tol: Tolerance) -> str:
    """How a part is marked, in words."""
    if tol.sigfigs is not None:
        return f"to {tol.sigfigs} significant figures"
    if tol.decimals is not None:
        return f"to {tol.decimals} decimal places"
    rel = f"within {fmt((tol.rel or 0) * 100)}%" if tol.rel else ""
    return rel + (" or " if rel and tol.abs else "") + (f"within {fmt(tol.abs)}" if tol.abs else "") or "exactly"


class MultipartType(ItemType):
    name = "multipart"
    model = Multipart
    response_format = "an object {part_id: a numeric response}, one entry per answered part"
    single_answer_path = False

    @property
    def review_template(self) -> str | None:
        return "student/items/review/multipart.html"

    # ------------------------------------------------------------ variants
    def build(self, v: Variant, calculated: Any) -> None:
        # Built once per calculation while an item is validated (its figures and its rules both ask).
        v.answer, v.payload = shared(("multipart", id(v.task), id(v.result)), (v.task, v.result), lambda: self._build(v))

    def _build(self, v: Variant) -> tuple[dict[str, Any], MultipartPayload]:
        m: Multipart = v.model
        if task_kind(v.task) is None:
            raise VariantError(("calc",), "a multipart item's calc is a network or an optimizer task")
        keys: list[PartKey] = []
        # each part's earlier parts, from the calculator's graph (the same for every seed of one graph)
        every = shared(("multipart deps", id(v.item), graph_key(v.task)), v.item, lambda: _deps(m, v.task))
        for i, p in enumerate(m.parts):
            try:
                answer = plain(resolve(v.result, p.answer))
            except KeyError as e:
                raise VariantError(("parts", i, "answer"), str(e).strip('"')) from None
            if not finite(answer):
                raise VariantError(("parts", i, "answer"), f"the answer is not a finite number: {answer!r}")
            keys.append(PartKey(p, i + 1, answer, tuple(np.shape(answer)), every[i], p.name or quantity_name(p.answer)))
        for mistake in m.mistakes:  # one buggy run per mistake, read at every part's path
            # (none when it leaves every part's quantity as it is: the true result gives the same values)
            same = all(unchanged_at(v.task, mistake, parse_path(k.part.answer)) for k in keys)
            res = v.result if same else buggy_result(v.task, mistake)
            for k in keys if res is not None else []:
                try:
                    value = resolve(res, k.part.answer)
                except KeyError:
                    continue
                if _shape(value) == k.shape and finite(value) and not match(value, k.answer, k.part.tolerance):
                    k.mistakes[mistake] = plain(value)
        return {k.part.id: k.answer for k in keys}, MultipartPayload(keys)

    def save_view(self, v: Variant) -> Variant:
        keys = [PartKey(part=_PartId(k.part.id), number=k.number, answer=None, shape=k.shape, deps=(), name="")
                for k in v.payload.parts]
        return Variant(item=None, seed=0, kind=self, payload=MultipartPayload(keys))  # type: ignore[arg-type]

    def view_from_public(self, q: dict[str, Any]) -> Variant:
        keys = [PartKey(part=_PartId(p["id"]), number=p["number"], answer=None, shape=tuple(p["shape"]), deps=(), name="")
                for p in q["parts"]]
        return Variant(item=None, seed=0, kind=self, payload=MultipartPayload(keys))  # type: ignore[arg-type]

    def public(self, v: Variant) -> dict[str, Any]:
        return {"parts": [{"id": k.part.id, "number": k.number, "prompt_html": markdown_to_html(k.part.prompt),
                           "points": k.part.points, "shape": list(k.shape), "precision": precision(k.part.tolerance)}
                          for k in v.payload.parts]}

    def worked(self, v: Variant) -> str:
        """The true chain's worked solution, then every part's answer."""
        keys = v.payload.parts
        paths = ";".join(k.part.answer for k in keys)
        if task_kind(v.task) == "optimizer":
            paths = max((k.part.answer for k in keys), key=lambda p: _step(p))
        body = worked_solution(v.task, v.result, paths, keys[-1].answer).rsplit("\n\nAnswer: ", 1)[0]
        lines = [body, "", "The parts:", ""]
        lines += [f"- part {k.number}, {k.name}: ${_tex(k.answer)}$" for k in keys]
        return "\n".join(lines)

    def trivial(self, v: Variant) -> str | None:
        return is_trivial(v.task, v.result, ";".join(k.part.answer for k in v.payload.parts))

    # ------------------------------------------------------------ responses
    def json_ok(self, value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and (x is None or NUMERIC.json_ok(x))
                                               for k, x in value.items())

    def misfit(self, v: Variant, value: Any) -> str | None:
        keys = {k.part.id: k for k in v.payload.parts}
        for pid, x in value.items():
            if pid not in keys:
                return f"{pid!r} is not a part of this question (parts: {', '.join(keys)})"
            if x is not None:
                problem = NUMERIC.misfit(_sub(keys[pid]), x)
                if problem:
                    return f"part {keys[pid].number} ({pid}): {problem}"
        return None

    def note(self, v: Variant, value: Any) -> str | None:
        notes = []
        for k in v.payload.parts:
            x = value.get(k.part.id)
            if x is None:
                continue
            try:
                parse_numeric(x, k.shape)
            except CostlyNumber as e:
                raise ResponseRefused(400, f"not saved: part {k.number}: {e}") from None
            except FormatError as e:
                notes.append(f"part {k.number}: {e}")
        return "; ".join(notes) or None

    def grade(self, v: Variant, response: Any) -> Outcome:
        return self.grade_full(v, response)[0]

    def grade_full(self, v: Variant, response: Any) -> tuple[Outcome, list[dict[str, Any]]]:
        """The item's outcome and one result per part (score in the part's points)."""
        results = grade_parts(v, response)
        total = sum(r.max_score for r in results)
        fraction = sum(r.score for r in results) / total if total else 0.0
        lines = [f"Part {r.number}: {r.feedback}" for r in results if r.feedback]
        mistake = next((r.mistake for r in results if r.mistake), None)
        return (fraction, "\n".join(lines), mistake), [r.to_json() for r in results]

    # ------------------------------------------------------------ pages
    def from_form(self, form: Any, q: dict[str, Any]) -> Any:
        out = {}
        for p in q.get("parts") or []:
            value = NUMERIC.from_form(form, {"id": f"{q['id']}-{p['id']}", "shape": p.get("shape") or []})
            if value is not None:
                out[p["id"]] = value
        return out or None

    def fitted(self, q: dict[str, Any], value: Any) -> Any:
        if not isinstance(value, dict):
            return {}
        return {p["id"]: NUMERIC.fitted(p, value.get(p["id"])) for p in q.get("parts") or []}

    def describe(self, q: dict[str, Any], value: Any, name: Namer) -> str:
        if not isinstance(value, dict):
            return numbers_text(value)
        return "; ".join(f"part {i}: {numbers_text(value[p['id']]) if value.get(p['id']) is not None else '(no answer)'}"
                         for i, p in enumerate(q.get("parts") or [], start=1))

    def review(self, v: Variant, response: Any, result: dict[str, Any], points: float,
               view: dict[str, Any] | None = None) -> dict[str, Any]:
        """The results page's per-part rows and, where ECF was earned, the student's own chain."""
        return multipart_review.review(v, response, result, points, view)

    # ------------------------------------------------------------ previews
    def preview(self, v: Variant) -> dict[str, Any]:
        return {"parts": [{"id": k.part.id, "prompt": k.part.prompt, "answer": k.answer, "answer_path": k.part.answer,
                           "tolerance": k.part.tolerance.model_dump(exclude_none=True), "precision": precision(k.part.tolerance),
                           "points": k.part.points, "ecf": k.part.ecf,
                           "depends_on": [v.payload.parts[j].part.id for j in k.deps],
                           "mistakes": {m: plain(x) for m, x in k.mistakes.items()}}
                          for k in v.payload.parts], "ecf_credit": v.model.ecf_credit}

    def answer_text(self, v: Variant) -> str:
        return "; ".join(f"{k.part.id} = {numbers_text(k.answer)}" for k in v.payload.parts)

    def stress_key(self, v: Variant, answer: Any) -> str:
        return numbers_text(answer[v.payload.parts[-1].part.id])

    def stress_number(self, v: Variant, answer: Any) -> float | None:
        last = answer[v.payload.parts[-1].part.id]
        return float(last) if np.ndim(last) == 0 else None

    def seed_rules(self, item: BankItem, seeds: int) -> list[Problem]:
        return multipart_review.seed_rules(item, seeds, self)


def _deps(m: Multipart, task: Any) -> list[tuple[int, ...]]:
    """Each part's earlier parts it is computed from: those it names, else those upstream in the graph."""
    return [tuple(j for j, q in enumerate(m.parts[:i]) if q.id in p.depends_on) if p.depends_on is not None
            else tuple(j for j, q in enumerate(m.parts[:i]) if depends(task, p.answer, q.answer))
            for i, p in enumerate(m.parts)]


def _sub(k: PartKey) -> Variant:
    """A stand-in variant for the numeric type's checks of one part."""
    return Variant(item=None, seed=0, kind=NUMERIC, payload=NumericPayload(k.shape))  # type: ignore[arg-type]


def _step(path: str) -> int:
    return int(path.split("steps[")[1].split("]")[0]) if "steps[" in path else -1


def _tex(x: Any) -> str:
    return row(x) if np.ndim(x) == 1 else latex(x)
TYPE = MultipartType()
