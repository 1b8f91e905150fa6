"""Markdown with ``$...$`` math to safe HTML: markdown-it-py, latex2mathml, then nh3."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

MATHML_TAGS = {
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
    "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "mpadded", "mphantom", "menclose", "mover", "munder",
    "munderover", "mtable", "mtr", "mtd", "merror", "mfenced",
}
MATHML_ATTRS = {
    "xmlns", "display", "mathvariant", "stretchy", "fence", "separator", "form", "lspace", "rspace",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame",
    "linethickness", "width", "height", "depth", "minsize", "maxsize", "symmetric", "largeop",
    "movablelimits", "accent", "accentunder", "notation", "scriptlevel", "displaystyle", "open", "close",
    "separators", "encoding", "alttext", "aria-label",
}
HTML_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span", "div",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "sub", "sup", "del", "img",
}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    **{t: set(MATHML_ATTRS) for t in MATHML_TAGS},
}

ACCENTS = {"&#x0005E;": "&#x002C6;", "&#x0007E;": "&#x002DC;"}  # \hat and \tilde: ^ -> U+02C6, ~ -> U+02DC

UNARY = re.compile(r'(<mo(?: stretchy="false")?>(?:&#x00028;|\[|&#x0005B;|&#x0002C;|&#x0003D;|&#x0003C;|&#x0003E;'
                   r'|&#x02264;|&#x02265;)</mo>)<mo>(&#x02212;|&#x0002B;)</mo>')

FUNCTION_ARG = re.compile(r"(<mi>[a-z]{2,}</mi>|<msup><mi>[a-z]{2,}</mi><mn>[^<]*</mn></msup>)(<m[in]>)")


@lru_cache(maxsize=4096)
def _mathml(content: str, display: str) -> str:
    try:
        mathml = latex_to_mathml(content, display=display)
    except Exception:  # latex2mathml raises many types on bad input; show the source instead
        return f'<code class="math-error">{html.escape(content)}</code>'
    # The LaTeX source is the formula's plain-text name (screen readers, table headers, copying).
    # ^ and ~ as accents stretch upwards in Chromium (a tall hat beside the y): the accent characters don't.
    for ascii_, accent in ACCENTS.items():
        mathml = mathml.replace(f"<mo>{ascii_}</mo></mover>", f"<mo>{accent}</mo></mover>").replace(
            f'<mo stretchy="false">{ascii_}</mo></mover>', f'<mo stretchy="false">{accent}</mo></mover>')
    # a sign after an opening bracket, a comma or a relation is unary: no binary-operator space ("( − 1, 1)")
    mathml = UNARY.sub(r'\1<mo form="prefix">\2</mo>', mathml)
    # a thin space after a function name before its argument, as TeX sets it ("tanh z", not "tanhz")
    mathml = FUNCTION_ARG.sub(r'\1<mspace width="0.1667em"></mspace>\2', mathml)
    # \infty is an ordinary symbol, not an operator with space around it ("[0, ∞ )")
    mathml = mathml.replace("<mo>&#x0221E;</mo>", "<mi>&#x0221E;</mi>")
    # alttext is MathML's; aria-label is what name computations (a label, a table header) read.
    name = html.escape(content.strip(), quote=True)
    return mathml.replace("<math", f'<math alttext="{name}" aria-label="{name}"', 1)


BREAK = re.compile(r",\s*\\quad\b\s*")


def display_pieces(content: str) -> list[str]:
    """Split a display formula at its top-level ``, \\quad`` separators.

    Top level: outside braces (and ``\\{ ... \\}``), environments and ``\\left ... \\right``.

    Browsers set MathML on one line, so ``$$x = ..., \\quad W = ..., \\quad b = ...$$`` overflows a
    phone and even a desktop card. Each piece keeps its comma and becomes its own formula; the pieces
    wrap as words do. A formula without such a separator is one piece.
    """
    pieces, start = [], 0
    for m in BREAK.finditer(content):
        head = content[:m.start()]
        if all(head.count(a) == head.count(b) for a, b in (("{", "}"), ("\\begin", "\\end"), ("\\left", "\\right"))):
            pieces.append(content[start:m.start()] + ",")
            start = m.end()
    pieces.append(content[start:])
    return [p.strip() for p in pieces if p.strip()]


def _math(content: str, opts: dict[str, Any]) -> str:
    if not opts.get("display_mode"):
        return _mathml(content, "inline")
    pieces = display_pieces(content)
    if len(pieces) == 1:
        return _mathml(content, "block")
    return '<span class="math-pieces">' + "".join(_mathml(p, "block") for p in pieces) + "</span>"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.use(dollarmath_plugin, renderer=_math, allow_digits=False, double_inline=True)
    return md


@lru_cache(maxsize=2048)
def markdown_to_html(text: str) -> str:
    """Render Markdown with math to sanitised HTML (no script, no event handlers, no raw HTML).

    Cached: the same text (a static prompt, a choice, a formula) renders once per process.
    """
    raw = _markdown().render(text)
    clean = nh3.clean(raw, tags=HTML_TAGS | MATHML_TAGS, attributes=ATTRIBUTES,
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")
    # A wide table scrolls inside its own box, never the page (static/style.css, static/boxes.js).
    return clean.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def markdown_to_text(text: str) -> str:
    """Markdown with math as one line of plain text: each formula as its LaTeX source (for labels)."""
    rendered = re.sub(r'<math[^>]*\balttext="([^"]*)"[^>]*>.*?</math>', r"\1", markdown_to_html(text), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())


def math_errors(text: str) -> list[str]:
    """Return the LaTeX snippets of ``text`` that do not convert to MathML."""
    bad = []
    for tok in _markdown().parse(text):
        children = tok.children or [tok]
        for t in children:
            if t.type.startswith("math"):
                why = _math_error(t.content)
                if why is not None:
                    bad.append(why)
    return bad


@lru_cache(maxsize=4096)
def _math_error(content: str) -> str | None:
    """Why ``content`` does not convert to MathML, or None; once per formula (the banks repeat many)."""
    try:
        latex_to_mathml(content)
    except Exception as e:  # noqa: BLE001 - report any converter failure
        return f"{content!r} ({type(e).__name__}: {e})"
    return None
