"""Security headers on every response: CSP (with a per-request script nonce), no framing (but by an LTI
session's platform), no caching."""

from __future__ import annotations

import secrets

from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the domain are not ours


def csp_nonce() -> str:
    """This request's script nonce (templates: <script nonce="{{ csp_nonce() }}">)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy(nonce: str | None, frame_ancestors: list[str] | None = None) -> str:
    """The policy; ``frame_ancestors``: the origins that may frame the page (an LTI platform's), else none."""
    scripts = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    # Pages carry no inline style (the answer grid's width is a class) and sanitised bank HTML and
    # MathML keep no style attributes, so styles come from static files only. Charts are inline SVG.
    return ("default-src 'self'; "
            f"script-src {scripts}; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors " + (" ".join(frame_ancestors or []) or "'none'"))


def api_headers(cfg: Any) -> list[tuple[str, str]]:
    """The headers ``add_headers`` gives every API response of a request without a session (for the
    fast lanes that answer without Flask: web/quickstart.py, web/quicksave.py)."""
    out = [("Content-Security-Policy", content_security_policy(None)), ("X-Frame-Options", "DENY"),
           ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store")]
    if cfg.get("HTTPS"):
        out.append(("Strict-Transport-Security", HSTS))
    return out


def add_headers(response: Response) -> Response:
    h = response.headers
    framers = g.get("frame_ancestors")  # an LTI-launched session: its platform's origins (web/lti.py)
    h.setdefault("Content-Security-Policy", content_security_policy(g.get("csp_nonce"), framers))
    if not framers:
        h.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for browsers that predate it
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        # Pages, downloads and API bodies hold answers, keys, grades and CSRF tokens: never stored
        # by a browser or a shared cache. Static files keep their default caching.
        h["Cache-Control"] = "no-store"
        h.pop("Expires", None)
    if current_app.config.get("HTTPS"):
        h.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_headers(app: Flask) -> None:
    app.after_request(add_headers)
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # X-Forwarded-For/-Proto as set by that many proxies in front: real client addresses for the
        # login throttle and the scheme for secure cookies; headers from further out are ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
