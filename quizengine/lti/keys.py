"""The tool's RSA signing keys: a current key signs, the previous one stays in the JWKS after a rotation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import LtiKey

KEY_BITS = 2048


def new_key(t: datetime) -> LtiKey:
    """A fresh RSA key; its kid is the RFC 7638 thumbprint (as pylti1p3 derives it from the PEM)."""
    from jwcrypto.jwk import JWK  # (here: the pages that never sign anything keep jwcrypto out of the worker)

    jwk = JWK.generate(kty="RSA", size=KEY_BITS)
    public = {**jwk.export_public(as_dict=True), "kid": jwk.thumbprint(), "alg": "RS256", "use": "sig"}
    return LtiKey(kid=jwk.thumbprint(), role="current", private_pem=jwk.export_to_pem(private_key=True,
                  password=None).decode(), public_jwk=public, created_at=t)


def aware(d: datetime) -> datetime:
    """A stored time with its zone (SQLite gives times back without one; they are UTC)."""
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def current_key(s: Session, t: datetime) -> LtiKey:
    """The signing key, made on first use."""
    key = s.scalar(select(LtiKey).where(LtiKey.role == "current"))
    if key is None:
        key = new_key(t)
        s.add(key)
        s.flush()
    return key


def rotate(s: Session, t: datetime) -> LtiKey:
    """Make a new current key; the current one becomes previous (still published), the previous goes."""
    s.execute(delete(LtiKey).where(LtiKey.role == "previous"))
    for old in s.scalars(select(LtiKey).where(LtiKey.role == "current")):
        old.role = "previous"
    s.flush()
    key = new_key(t)
    s.add(key)
    s.flush()
    return key


def rotate_if_older(s: Session, t: datetime, days: float) -> LtiKey | None:
    """Rotate when the current key is older than ``days`` (0: never); the new key, or None."""
    if days <= 0:
        return None
    # Locked (PostgreSQL): of two hosts' sweepers due at once, the second reads the rotated key and stops.
    key = s.scalar(select(LtiKey).where(LtiKey.role == "current").with_for_update())
    if key is None:
        return None
    return rotate(s, t) if t - aware(key.created_at) > timedelta(days=days) else None


def listed(s: Session) -> list[LtiKey]:
    """Every key, current first."""
    return list(s.scalars(select(LtiKey).order_by(LtiKey.role)))  # "current" sorts before "previous"


def jwks(s: Session) -> dict[str, Any]:
    """The public keys as a JWKS (current first); never a private part."""
    return {"keys": [{k: v for k, v in key.public_jwk.items() if k in PUBLIC_FIELDS} for key in listed(s)]}


PUBLIC_FIELDS = ("kty", "n", "e", "kid", "alg", "use")


def public_pem(key: LtiKey) -> str:
    from jwcrypto.jwk import JWK

    return JWK(**{k: v for k, v in key.public_jwk.items() if k in ("kty", "n", "e")}).export_to_pem().decode()


def describe(key: LtiKey) -> dict[str, Any]:
    """What `lti list` shows of a key: no private part."""
    return {"kid": key.kid, "role": key.role, "created_at": aware(key.created_at).isoformat(),
            "public_jwk": {k: key.public_jwk[k] for k in PUBLIC_FIELDS if k in key.public_jwk}}
