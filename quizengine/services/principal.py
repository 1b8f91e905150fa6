"""Who a service acts for: an id and a role, never an ORM object or a Flask user."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Role


@dataclass(frozen=True)
class Principal:
    """The user a request speaks for (a browser session, a bearer token, the CLI)."""

    id: int
    role: Role | str

    @property
    def is_instructor(self) -> bool:
        return self.role == Role.INSTRUCTOR

    @classmethod
    def of(cls, user: object) -> "Principal":
        """The principal of anything with ``id`` and ``role`` (a User row, a session's user)."""
        return cls(user.id, user.role)  # type: ignore[attr-defined]
