"""Make an SVG safe to inline in a page under the CSP: an allowlist of elements and attributes, and
presentation attributes (``fill=``) in place of ``style=`` and ``<style>``.

The page's policy is ``style-src 'self'``: a browser drops the ``style`` attributes and the
``<style>`` element of an SVG inlined in the page, which matplotlib's SVG uses for every colour and
font. Presentation attributes are not styles, so the policy keeps them. Nothing that runs survives
(no script, no event attribute, no foreignObject, no link but to an id of the same SVG).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

ELEMENTS = {"svg", "g", "defs", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan",
            "title", "desc", "use", "clipPath"}
PRESENTATION = {"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
                "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "opacity",
                "font-size", "font-family", "font-weight", "font-style", "text-anchor", "dominant-baseline",
                "clip-path", "clip-rule", "paint-order"}
GEOMETRY = {"id", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width", "height", "d", "points",
            "transform", "viewBox", "clipPathUnits", "dx", "dy", "class", "role", "aria-hidden", "aria-label",
            "focusable", "preserveAspectRatio"}
URL = re.compile(r"^url\(#[A-Za-z0-9_.:-]+\)$")
REF = re.compile(r"url\(#([A-Za-z0-9_.:-]+)\)")
FONT = re.compile(r"^(?:(italic|oblique|normal)\s+)?(?:(bold|normal|\d{3})\s+)?([\d.]+px)\s+(.+)$")
# what matplotlib's <style> says of every element: given to the root instead, so elements inherit it
ROOT_DEFAULTS = {"stroke-linejoin": "round", "stroke-linecap": "butt"}


def _declarations(style: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in style.split(";"):
        name, sep, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not sep or not value:
            continue
        if name == "font":  # the shorthand: [style] [weight] size family
            m = FONT.match(value)
            if m:
                style_, weight, size, family = m.groups()
                out.update({k: v for k, v in (("font-style", style_), ("font-weight", weight), ("font-size", size),
                                              ("font-family", family)) if v})
            continue
        out[name] = value
    return out


def _safe_value(name: str, value: str) -> bool:
    if "url(" in value or name == "clip-path":
        return bool(URL.match(value))
    return not any(bad in value.lower() for bad in ("javascript:", "expression(", "<", "&"))


def _referenced(root: ET.Element) -> set[str]:
    """The ids something in the SVG points at (clip paths, markers reused by <use>)."""
    out = set()
    for el in root.iter():
        for name, value in el.attrib.items():
            if name in (XLINK_HREF, "href") and value.startswith("#"):
                out.add(value[1:])
            out.update(REF.findall(value) if name in ("clip-path", "style") else [])
    return out


def _attributes(el: ET.Element, keep_ids: set[str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, value in el.attrib.items():
        if name == "id" and value not in keep_ids:
            continue  # matplotlib's "figure_1", "axes_1"...: the same in every figure, so never unique on a page
        if name == XLINK_HREF or name == "href":
            if value.startswith("#"):
                attrs["href"] = value
        elif name == "style":
            for k, v in _declarations(value).items():
                if k in PRESENTATION and _safe_value(k, v):
                    attrs[k] = v
        elif (name in PRESENTATION or name in GEOMETRY) and _safe_value(name, value):
            attrs.setdefault(name, value)
    return attrs


def _write(el: ET.Element, out: list[str], keep_ids: set[str], root: bool = False) -> None:
    tag = el.tag.removeprefix(SVG_NS)
    if tag not in ELEMENTS:
        return  # metadata, style, script, foreignObject, anything unknown: dropped with what it holds
    attrs = _attributes(el, keep_ids)
    if root:
        attrs = {k: v for k, v in attrs.items() if k not in ("width", "height")}  # the page's CSS sizes it
        attrs = {"xmlns": "http://www.w3.org/2000/svg", **ROOT_DEFAULTS, **attrs}
    out.append("<" + tag + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items()) + ">")
    if el.text and el.text.strip() and tag in ("text", "tspan", "title", "desc"):
        out.append(escape(el.text))
    for child in el:
        _write(child, out, keep_ids)
        if child.tail and child.tail.strip() and tag in ("text", "tspan"):
            out.append(escape(child.tail))
    out.append(f"</{tag}>")


def clean(svg: str) -> str:
    """The SVG with only the allowed elements and attributes, styles turned into attributes."""
    root = ET.fromstring(svg)
    if root.tag.removeprefix(SVG_NS) != "svg":
        raise ValueError("not an SVG document")
    out: list[str] = []
    _write(root, out, _referenced(root), root=True)
    return "".join(out)
