"""Turning the attempt page's form fields into responses, and responses into readable text.

Each item type reads its own fields and describes its own responses (bank/types/); here the
stored values are made printable first, whatever their type.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from ..bank.types import item_type
from ..bank.types.base import field, numbers_text
from ..services.attempts import NOT_TEXT

__all__ = ["describe", "describe_html", "field", "fitted", "response_from_form", "review_template", "text",
           "widget"]


def response_from_form(form: MultiDict, q: dict[str, Any]) -> Any:
    """The API-format response of one question from the plain form; None when left blank."""
    return item_type(q["type"]).from_form(form, q)


def widget(q: dict[str, Any]) -> str:
    """The template of a question's input widget."""
    return item_type(q["type"]).template


def review_template(q: dict[str, Any]) -> str | None:
    """The template of a graded question's results for its item type, or None for the common one."""
    return item_type(q["type"]).review_template


def inline(html: str) -> Markup:
    """Rendered Markdown of one paragraph without its <p> (for a legend, a table cell, a list item)."""
    s = html.strip()
    if s.startswith("<p>") and s.endswith("</p>") and s.count("<p>") == 1:
        s = s[3:-4]
    return Markup(s)


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
    return item_type(q["type"]).fitted(q, _clean(q.get("response")))


def describe(q: dict[str, Any], value: Any) -> str:
    """A response as plain text for a results page (HTML-escaped by the template); any stored value."""
    if value is None:
        return "(no answer)"
    texts = {o["id"]: o.get("text") or o["id"] for key in ("choices", "lefts", "rights", "options")
             for o in q.get(key) or []}

    def name(v: Any) -> str:
        return texts.get(v, v) if isinstance(v, str) else numbers_text(v)

    return item_type(q["type"]).describe(q, _clean(value), name)


def describe_html(q: dict[str, Any], value: Any) -> Markup:
    """A response as HTML for a results page: options as rendered (math included), pairs as a table."""
    if value is None:
        return Markup("(no answer)")
    texts = {o["id"]: o.get("text") or o["id"] for key in ("choices", "lefts", "rights", "options")
             for o in q.get(key) or []}
    htmls = {o["id"]: o["html"] for key in ("choices", "lefts", "rights", "options") for o in q.get(key) or []
             if o.get("html")}

    def name(v: Any) -> str:
        return texts.get(v, v) if isinstance(v, str) else numbers_text(v)

    def name_html(v: Any) -> str:
        if isinstance(v, str) and v in htmls:
            return str(inline(htmls[v]))
        return str(escape(name(v)))

    return Markup(item_type(q["type"]).describe_html(q, _clean(value), name, name_html))
