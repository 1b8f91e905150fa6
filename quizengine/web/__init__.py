"""The web layer: one blueprint per area; views read the request, call one service, render."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from flask import current_app, request
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from ..constants import ID_MAX
from ..db import Database
from ..services.errors import ServiceError


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: 0 to ID_MAX (at most 10 ASCII digits); anything else is 404."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


def db() -> Database:
    return current_app.extensions["quizengine.db"]


@contextmanager
def reading() -> Iterator[Session]:
    with db().read() as s:
        yield s


@contextmanager
def writing() -> Iterator[Session]:
    with db().write() as s:
        yield s


def int_arg(name: str, lo: int = 0, hi: int = ID_MAX) -> int | None:
    """An optional integer query or form field from lo to hi; 400 naming the field otherwise."""
    raw = request.values.get(name, "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"-?[0-9]{1,10}", raw) or not lo <= int(raw) <= hi:
        raise ServiceError(400, f"{name} must be a whole number from {lo} to {hi}")
    return int(raw)
