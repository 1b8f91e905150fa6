"""Who a service acts for: an id and a role, never an ORM object or a Flask user."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Role


@dataclass(frozen=True)
class Principal:
    """The user a request speaks for (a browser session, a bearer token)."""

    id: int
    role: Role | str
