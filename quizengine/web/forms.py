"""Turning the attempt page's form fields into responses, and responses into readable text."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from ..bank.params import fmt


def field(item_id: str, *parts: object) -> str:
    return "-".join(["q", item_id, *map(str, parts)])


def response_from_form(form: MultiDict, q: dict[str, Any]) -> Any:
    """The API-format response of one question from the plain form; None when left blank."""
    iid, kind = q["id"], q["type"]
    if kind in ("single_choice", "short_text"):
        v = form.get(field(iid), "").strip() if kind == "short_text" else form.get(field(iid))
        return v or None
    if kind == "true_false":
        v = form.get(field(iid))
        return None if v not in ("true", "false") else v == "true"
    if kind == "multiple_select":
        picked = form.getlist(field(iid))
        return picked or None
    if kind == "numeric":
        shape = q.get("shape") or []
        if not shape:
            v = form.get(field(iid), "").strip()
            return v or None
        if len(shape) == 1:
            cells = [form.get(field(iid, i), "").strip() for i in range(shape[0])]
        else:
            cells = [[form.get(field(iid, i, j), "").strip() for j in range(shape[1])] for i in range(shape[0])]
        flat = cells if len(shape) == 1 else [c for row in cells for c in row]
        return cells if any(flat) else None
    if kind == "matching":
        pairs = {o["id"]: form.get(field(iid, o["id"]), "") for o in q["lefts"]}
        pairs = {k: v for k, v in pairs.items() if v}
        return pairs or None
    if kind == "ordering":
        ranks = []
        for pos, o in enumerate(q["options"]):
            raw = form.get(field(iid, o["id"]), "").strip()
            try:
                ranks.append((float(raw), pos, o["id"]))
            except ValueError:
                return None
        return [oid for _, _, oid in sorted(ranks)]
    return None


def describe(q: dict[str, Any], value: Any) -> str:
    """A response as plain text for a results page (HTML-escaped by the template)."""
    if value is None:
        return "(no answer)"
    kind = q["type"]
    texts = {o["id"]: o.get("text") or o["id"] for key in ("choices", "lefts", "rights", "options")
             for o in q.get(key) or []}
    if kind == "single_choice":
        return texts.get(value, str(value))
    if kind == "multiple_select":
        return "; ".join(texts.get(v, str(v)) for v in value) or "(nothing ticked)"
    if kind == "true_false":
        return "true" if value else "false"
    if kind == "numeric":
        return _numbers(value)
    if kind == "matching":
        return "; ".join(f"{texts.get(k, k)} -> {texts.get(v, v)}" for k, v in value.items())
    if kind == "ordering":
        return " -> ".join(texts.get(v, str(v)) for v in value)
    return str(value)


def _numbers(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_numbers(x) for x in v) + "]"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt(v)
    return str(v)
