"""The errors services raise for the web layer and the CLI to translate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .clock import aware, iso


class ServiceError(Exception):
    """A request the rules refuse; ``status`` is the HTTP status a view should answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class StaleSave(ServiceError):
    """409: the stored answer is newer than the save (changed in another tab or device); carries it."""

    def __init__(self, seq: int | None, stored_seq: int, value: Any, saved_at: datetime):
        super().__init__(409, f"this answer (seq {seq}) is stale: the saved answer, changed in another tab or "
                              f"device, has seq {stored_seq}; send seq {stored_seq + 1} to replace it")
        self.seq, self.value, self.saved_at = stored_seq, value, aware(saved_at)

    def fields(self) -> dict[str, Any]:
        """What a client needs to show the newer answer and carry on: its value, seq and time."""
        return {"seq": self.seq, "response": self.value, "saved_at": iso(self.saved_at)}
