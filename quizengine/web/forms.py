"""Turning the attempt page's form fields into responses, and responses into readable text."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from ..bank.params import fmt
from ..services.attempts import NOT_TEXT


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


def text(s: str) -> str:
    """A stored string made printable: lone surrogates and control characters become U+FFFD."""
    return NOT_TEXT.sub("\ufffd", s)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {text(str(k)): _clean(v) for k, v in value.items()}
    return value


def fitted(q: dict[str, Any]) -> Any:
    """The stored response as the question's widget can show it; None (blank) when it doesn't fit.

    Saves are checked since issue 9, but values stored earlier may hold unknown ids, a wrong matrix
    shape or non-text characters: the page shows what fits instead of failing.
    """
    value, kind = _clean(q.get("response")), q["type"]
    if kind in ("single_choice", "short_text"):
        return value if isinstance(value, str) else None
    if kind == "multiple_select":
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None
    if kind == "true_false":
        return value if isinstance(value, bool) else None
    if kind == "numeric":
        return value if _fits(value, list(q.get("shape") or [])) else None
    if kind == "matching":
        return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else None
    if kind == "ordering":
        if not isinstance(value, list):
            return None
        ids = [o["id"] for o in q["options"]]
        known = list(dict.fromkeys(v for v in value if isinstance(v, str) and v in ids))
        return known + [i for i in ids if i not in known]
    return None


def _fits(value: Any, shape: list[int]) -> bool:
    if not shape:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    return isinstance(value, list) and len(value) == shape[0] and all(_fits(v, shape[1:]) for v in value)


def describe(q: dict[str, Any], value: Any) -> str:
    """A response as plain text for a results page (HTML-escaped by the template); any stored value."""
    if value is None:
        return "(no answer)"
    value = _clean(value)
    kind = q["type"]
    texts = {o["id"]: o.get("text") or o["id"] for key in ("choices", "lefts", "rights", "options")
             for o in q.get(key) or []}

    def name(v: Any) -> str:
        return texts.get(v, v) if isinstance(v, str) else _numbers(v)

    if kind == "single_choice":
        return name(value)
    if kind == "multiple_select" and isinstance(value, list):
        return "; ".join(name(v) for v in value) or "(nothing ticked)"
    if kind == "true_false" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "numeric":
        return _numbers(value)
    if kind == "matching" and isinstance(value, dict):
        return "; ".join(f"{name(k)} -> {name(v)}" for k, v in value.items())
    if kind == "ordering" and isinstance(value, list):
        return " -> ".join(name(v) for v in value)
    return _numbers(value)


def _numbers(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_numbers(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_numbers(x)}" for k, x in v.items()) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        try:
            return fmt(v)
        except OverflowError:  # an integer beyond float64, stored before saves were checked
            return "(a number too large to show)"
    return str(v)
