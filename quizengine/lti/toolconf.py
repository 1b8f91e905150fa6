"""pylti1p3's view of the registry: a platform's Registration, and the tool configuration it asks.

Imported only where a launch, a login or a call to a platform happens (web/lti_flow.py, outbox
and roster when they post): pylti1p3 brings jwt, cryptography and requests, which the student
and instructor pages of a worker never need (README, "Performance").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select

from ..models import LtiDeployment, LtiKey, LtiPlatform
from . import keys
from .registry import find_platform


def registration(p: LtiPlatform, key: LtiKey) -> Registration:
    """pylti1p3's view of a platform, signing with the tool's current key."""
    return (Registration().set_issuer(p.issuer).set_client_id(p.client_id).set_auth_login_url(p.auth_url)
            .set_auth_token_url(p.token_url).set_key_set_url(p.jwks_url).set_tool_private_key(key.private_pem)
            .set_tool_public_key(keys.public_pem(key)))


class ToolConf(ToolConfAbstract):
    """Registrations and deployments from the database (every issuer may have several client ids)."""

    def __init__(self, db: Any, t: datetime):
        self.db, self.t = db, t

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration | None:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(self, iss: str, client_id: str | None, *args: Any, **kwargs: Any) \
            -> Registration | None:
        with self.db.read() as s:
            p = find_platform(s, iss, client_id)
            key = s.scalar(select(LtiKey).where(LtiKey.role == "current"))
        if p is None:
            return None
        if key is None:
            with self.db.write() as s:
                key = keys.current_key(s, self.t)
        return registration(p, key)

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str | None, *args: Any,
                                  **kwargs: Any) -> Deployment | None:
        with self.db.read() as s:
            p = find_platform(s, iss, client_id)
            found = p is not None and s.scalar(select(LtiDeployment.id).where(
                LtiDeployment.platform_id == p.id, LtiDeployment.deployment_id == deployment_id)) is not None
        return Deployment().set_deployment_id(deployment_id) if found else None

    def get_jwks(self, iss: str | None = None, client_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        with self.db.read() as s:
            return keys.jwks(s)
