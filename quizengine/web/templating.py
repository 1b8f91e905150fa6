"""Template helpers, registered on the app: times in the course's time zone, scores without noise,
responses as text, the CSP nonce."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from ..bank.params import fmt
from .forms import describe, fitted, review_template, widget
from .headers import csp_nonce


def local_time(iso_time: str | None) -> str:
    """An ISO time shown in the course's time zone."""
    if not iso_time:
        return ""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return datetime.fromisoformat(iso_time).astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def num(x: float | None) -> str:
    """A score or point count without noise: 1, 0.5, 2.25."""
    return "" if x is None else fmt(round(float(x), 4))


def init_templating(app: Flask) -> None:
    app.jinja_env.globals.update(local_time=local_time, describe=describe, fitted=fitted, widget=widget,
                                  review_template=review_template, csp_nonce=csp_nonce)
    app.jinja_env.filters["num"] = num
