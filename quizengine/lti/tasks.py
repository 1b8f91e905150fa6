"""LTI work of the sweeper thread: post waiting scores, rotate the signing key when it is due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ..models import LtiKey
from . import keys, outbox


def sweep(db: Any, key_days: float, budget_s: float = 10.0) -> int:
    """Rotate the tool's key if older than ``key_days`` (0: never), then post due scores; how many posted."""
    t = outbox.now()
    if key_days > 0:
        with db.read() as s:
            created = s.scalar(select(LtiKey.created_at).where(LtiKey.role == "current"))
        if created is not None and t - outbox._aware(created) > timedelta(days=key_days):
            with db.write() as s:  # checked again under the lock: one worker rotates
                keys.rotate_if_older(s, t, key_days)
    return outbox.deliver_due(db, budget_s=budget_s)
