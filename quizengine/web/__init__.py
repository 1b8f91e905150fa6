"""The web layer: one blueprint per area; views read the request, call one service, render."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import current_app
from sqlalchemy.orm import Session

from ..db import Database


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
