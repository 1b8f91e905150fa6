"""Accommodations as CSV: the import (every row checked first, every problem with its line number,
then all rows or none) and the export in the same format."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Role, User
from .accommodations import (SETTING_FIELDS, USERNAME, AccommodationError, Settings, check_group, entries,
                             parse_settings, set_row)
from .clock import now
from .principal import Principal
from .quizzes import get_quiz

CSV_COLUMNS = ("username", "group") + SETTING_FIELDS
PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class CsvRow:
    line: int
    username: str
    group: str | None  # a student row: their group (None: none); a group row: the group
    has_group: bool  # the file has a group column
    settings: Settings


def parse_csv(text: str, timezone: str) -> list[CsvRow]:
    """Check every row of an accommodations CSV; AccommodationError listing every problem by line.

    A row with a username sets that student's own accommodation (and, with a group column, their
    group: empty for none); a row with only a group sets that group's. Empty settings remove one.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as e:
        raise AccommodationError(f"line 1: not a CSV header ({e})") from None
    if "username" not in header and "group" not in header:
        raise AccommodationError(f"line 1: the header needs a username or a group column, and any of "
                                 f"{', '.join(SETTING_FIELDS)}")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise AccommodationError(f"line 1: unknown columns: {', '.join(unknown)[:200]} (use {', '.join(CSV_COLUMNS)})")
    rows, problems, seen = [], [], {}
    try:
        for raw in reader:
            n = reader.line_num
            if None in raw:
                problems.append(f"line {n}: more fields than columns")
                continue
            cells = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            name, group = cells.get("username", ""), cells.get("group", "")
            if not name and not group:
                problems.append(f"line {n}: give a username (a student's accommodation) or a group (a group's)")
                continue
            key = f"username {name!r}" if name else f"group {group!r}"
            if key in seen:
                problems.append(f"line {n}: {key} repeats line {seen[key]}")
            seen.setdefault(key, n)
            try:
                if group:
                    check_group(group)
                if name and not USERNAME.match(name):
                    raise AccommodationError(f"username {name[:100]!r} is not a username")
                settings = parse_settings(cells, timezone)
            except AccommodationError as e:
                problems.append(f"line {n}: {e}")
                continue
            rows.append(CsvRow(n, name, group or None, "group" in header, settings))
    except csv.Error as e:
        problems.append(f"line {reader.line_num}: not valid CSV ({e})")
    if not rows and not problems:
        problems.append("line 2: the file has no rows")
    _raise(problems)
    return rows


def _raise(problems: list[str]) -> None:
    if problems:
        more = len(problems) - PROBLEMS_SHOWN
        raise AccommodationError("\n".join(problems[:PROBLEMS_SHOWN] + ([f"... and {more} more problems"] if more > 0 else [])))


def import_rows(s: Session, quiz_id: str, rows: list[CsvRow], actor: Principal) -> int:
    """Apply checked CSV rows inside the caller's write transaction: every one or none (an unknown
    student is an AccommodationError naming every such line, before anything is written)."""
    get_quiz(s, quiz_id)
    names = [r.username for r in rows if r.username]
    found = {u.username: u for u in s.scalars(select(User).where(User.username.in_(names)))} if names else {}
    _raise([f"line {r.line}: no student {r.username!r} (import the roster first)" for r in rows
            if r.username and (r.username not in found or found[r.username].role != Role.STUDENT)])
    t = now()
    for r in rows:
        set_row(s, quiz_id, r.username, r.group or "", r.settings, actor, "csv", t, r.has_group)
    return len(rows)


def export_csv(s: Session, quiz_id: str, timezone: str) -> str:
    """The quiz's accommodations in the import's format (a file to edit and import again)."""
    tz = ZoneInfo(timezone)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in entries(s, quiz_id):
        st = e.settings
        w.writerow([e.username or "", e.group or "", "" if st.time_multiplier is None else f"{st.time_multiplier:g}",
                    "" if st.extra_minutes is None else f"{st.extra_minutes:g}",
                    "" if st.extra_attempts is None else st.extra_attempts,
                    st.closes_at.astimezone(tz).isoformat(timespec="minutes") if st.closes_at else "",
                    "yes" if st.untimed else ""])
    return out.getvalue()
