"""An item's variant as an instructor previews it: prompt, options, answer, worked solution."""

from __future__ import annotations

from typing import Any

from ..bank.figures import figures_for
from ..bank.params import plain
from ..bank.types.base import numbers_text
from ..bank.variant import Variant
from ..calc.mistakes import DESCRIPTIONS


def preview_data(v: Variant) -> dict[str, Any]:
    """Return the preview object of `quizengine preview --json` (README, "Question banks"), and more."""
    m = v.model
    data: dict[str, Any] = {
        "id": v.item.id, "type": v.type, "topic": v.item.topic, "seed": v.seed, "version": v.item.version,
        "points": m.points, "prompt": v.prompt, "prompt_html": v.prompt_html, "answer": plain(v.answer),
        "explanation": v.explanation, "explanation_html": v.explanation_html, "source": v.item.source,
        "parametrized": bool(getattr(m, "params", None)), "calculated": getattr(m, "calc", None) is not None,
    }
    data.update(v.kind.preview(v))
    if v.values:
        data["params"] = {k: plain(val) for k, val in v.values.items()}
    if v.spec is not None:
        data["spec"] = v.spec
    data.update(v.kind.preview_marking(v))
    data["figures"] = [f.data() for f in figures_for(v)]
    if v.buggy:
        data["mistakes"] = {k: {"answer": plain(val), "description": DESCRIPTIONS[k]} for k, val in v.buggy.items()}
    return data


def preview_text(v: Variant) -> str:
    """Return a readable preview for a terminal."""
    lines = [f"{v.item.id} ({v.type}, topic {v.item.topic}, seed {v.seed}, version {v.item.version})", "", v.prompt.rstrip()]
    for key, opts in v.kind.preview(v).items():
        if isinstance(opts, list) and opts:
            lines += ["", f"{key}:"] + [f"  {o['id']}: {o.get('text') or o.get('prompt', '')}" for o in opts]
    for k, f in enumerate(figures_for(v), start=1):
        shown = "" if f.when == "always" else " (shown after submission)"
        lines += ["", f"figure {k} ({f.kind}){shown}: {f.alt}"] + [f"  {line}" for line in f.details]
    lines += ["", f"answer: {v.kind.answer_text(v)}"]
    for k, val in v.buggy.items():
        shown = val if isinstance(val, str) else numbers_text(plain(val))
        lines.append(f"mistake {k}: {shown}  ({DESCRIPTIONS[k]})")
    if v.explanation:
        lines += ["", "explanation:", v.explanation.rstrip()]
    return "\n".join(lines)
