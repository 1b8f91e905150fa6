"""Template helpers, registered on the app: times in the course's time zone, scores without noise,
responses as text, the CSP nonce."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from ..bank.params import fmt
from ..bank.render import markdown_to_text
from ..services.clock import iso, now
from .forms import describe, describe_html, fitted, inline, review_template, widget
from .headers import csp_nonce


def local_time(iso_time: str | None) -> str:
    """An ISO time shown in the course's time zone."""
    if not iso_time:
        return ""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return datetime.fromisoformat(iso_time).astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def clock(iso_time: str | None) -> str:
    """An ISO time as the attempt page shows every time: hours and minutes in the course's time zone."""
    if not iso_time:
        return ""
    return datetime.fromisoformat(iso_time).astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%H:%M")


def timezone_id() -> str:
    return current_app.config["TIMEZONE"]


def timezone_name() -> str:
    """The course's time zone as a reader knows it: its abbreviation now and its IANA name."""
    tz = current_app.config["TIMEZONE"]
    abbr = datetime.now(ZoneInfo(tz)).strftime("%Z")
    return tz if abbr == tz else f"{abbr} ({tz})"


# The question navigator's states (static/attempt.js sets the same classes and texts).
NAV_TEXT = {"answered": "answered", "unanswered": "not answered", "unreadable": "answer can't be read"}


def nav_state(q: dict) -> str:
    if q.get("response") is None:
        return "unanswered"
    return "unreadable" if q.get("format_error") else "answered"


def format_message(note: str) -> str:
    """The message beside an answer that can't be read (static/attempt.js writes the same)."""
    return f"This answer can't be read: {note}. It scores 0 as it stands; correct it."


def outcome(q: dict) -> str:
    """A graded question's result in words."""
    if q.get("format_error") and not q.get("override"):
        return "answer could not be read"
    got, out_of = float(q.get("score") or 0), float(q.get("max_score") or 0)
    word = "correct" if out_of and got >= out_of - 1e-9 else "wrong" if got <= 1e-9 else "partly right"
    return word + (", changed by your instructor" if q.get("override") else "")


def outcome_class(q: dict) -> str:
    got, out_of = float(q.get("score") or 0), float(q.get("max_score") or 0)
    return "right" if out_of and got >= out_of - 1e-9 else "wrong" if got <= 1e-9 else "partial"


def score(x: float | None) -> str:
    """A score as people read it: at most 2 decimals (2.33, 0.5, 3)."""
    return "" if x is None else fmt(round(float(x), 2))


def num(x: float | None) -> str:
    """A score or point count without noise: 1, 0.5, 2.25."""
    return "" if x is None else fmt(round(float(x), 4))


def init_templating(app: Flask) -> None:
    app.jinja_env.globals.update(local_time=local_time, describe=describe, fitted=fitted, widget=widget,
                                  review_template=review_template, csp_nonce=csp_nonce, clock=clock, timezone_id=timezone_id,
                                  timezone_name=timezone_name, now_iso=lambda: iso(now()), nav_state=nav_state,
                                  NAV_TEXT=NAV_TEXT, format_message=format_message,
                                  describe_html=describe_html, outcome=outcome, outcome_class=outcome_class)
    app.jinja_env.filters["num"] = num
    app.jinja_env.filters["score"] = score
    app.jinja_env.filters["inline"] = inline
    app.jinja_env.filters["plaintext"] = markdown_to_text
