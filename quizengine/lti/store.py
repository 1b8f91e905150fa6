"""One-time values of the launch flow (OIDC state, nonce, a deep-linking launch), each with an expiry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from ..models import LtiNonce

STATE_TTL = timedelta(minutes=10)  # from the login redirect to the launch: the platform's login page in between
LAUNCH_TTL = timedelta(hours=1)  # a deep-linking launch, until the instructor picks a quiz
MAX_VALUE = 200


def put(s: Session, value: str, t: datetime, ttl: timedelta, data: Any = None) -> None:
    """Keep ``value`` until ``t + ttl``; expired values are tidied away on the way."""
    s.execute(delete(LtiNonce).where(LtiNonce.expires_at < t))
    s.execute(insert(LtiNonce).values(value=value[:MAX_VALUE], data=data, expires_at=t + ttl))


def take(s: Session, value: str, t: datetime) -> tuple[bool, Any]:
    """Use ``value`` up: (True, its data) the first time before it expires, (False, None) ever after."""
    if not value or len(value) > MAX_VALUE:
        return False, None
    row = s.execute(delete(LtiNonce).where(LtiNonce.value == value).returning(LtiNonce.data, LtiNonce.expires_at)).first()
    if row is None:
        return False, None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=t.tzinfo)
    return (expires >= t), (row.data if expires >= t else None)
