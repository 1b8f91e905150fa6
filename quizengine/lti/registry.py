"""Platforms and deployments, LMS users and courses (pylti1p3's view of them: toolconf.py)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import LtiContext, LtiDeployment, LtiLineItem, LtiPlatform, LtiUser, User
from . import keys

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
MESSAGE_TYPE = CLAIM + "message_type"
RESOURCE_LINK, DEEP_LINKING = "LtiResourceLinkRequest", "LtiDeepLinkingRequest"
INSTRUCTOR_ROLES = ("Instructor", "Administrator")  # the principal role names that make an instructor


class RegistryError(ValueError):
    """Bad registration data; the message names the option and the fix."""


# ---------------------------------------------------------------- registration

LOOPBACK = ("localhost",)
ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host in LOOPBACK


def check_url(option: str, url: str) -> str:
    """An https URL (http only on the loopback interface, for a test platform)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url):
        raise RegistryError(f"{option} {url!r}: give an absolute https:// URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise RegistryError(f"{option} {url!r}: use https (plain http only for a platform on this machine)")
    if len(url) > 500:
        raise RegistryError(f"{option}: at most 500 characters")
    return url


def origin_of(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def check_origin(origin: str) -> str:
    """An origin for CSP frame-ancestors: scheme://host[:port], optionally *.domain; nothing else."""
    origin = origin.rstrip("/")
    if not ORIGIN.match(origin):
        raise RegistryError(f"--frame-origin {origin!r}: give an origin like https://canvas.example.edu "
                            "(scheme, host, optional port; *.example.edu for every subdomain)")
    return origin


def add_platform(s: Session, issuer: str, client_id: str, deployment_ids: list[str], auth_url: str,
                 token_url: str, jwks_url: str, frame_origins: list[str], t: datetime) -> LtiPlatform:
    """Register a platform (or add deployments to a registered one); the tool's key is made on first use."""
    issuer = issuer.strip()
    if not issuer or len(issuer) > 300 or any(c.isspace() for c in issuer):
        raise RegistryError(f"--issuer {issuer!r}: the platform's issuer URL (up to 300 characters, no spaces)")
    if not client_id or len(client_id) > 200 or not client_id.isprintable():
        raise RegistryError("--client-id: up to 200 printable characters")
    if not deployment_ids or any(not d or len(d) > 200 or not d.isprintable() for d in deployment_ids):
        raise RegistryError("--deployment-id: at least one, each up to 200 printable characters")
    urls = {o: check_url(o, u) for o, u in (("--auth-url", auth_url), ("--token-url", token_url),
                                             ("--jwks-url", jwks_url))}
    origins = [check_origin(o) for o in frame_origins] or \
        list(dict.fromkeys(o for o in (origin_of(issuer), origin_of(auth_url)) if ORIGIN.match(o)))
    p = s.scalar(select(LtiPlatform).where(LtiPlatform.issuer == issuer, LtiPlatform.client_id == client_id)
                 .options(selectinload(LtiPlatform.deployments)))
    if p is None:
        p = LtiPlatform(issuer=issuer, client_id=client_id, created_at=t, frame_origins=origins)
        s.add(p)
    p.auth_url, p.token_url, p.jwks_url = urls["--auth-url"], urls["--token-url"], urls["--jwks-url"]
    if frame_origins:
        p.frame_origins = origins
    known = {d.deployment_id for d in p.deployments}
    p.deployments.extend(LtiDeployment(deployment_id=d) for d in dict.fromkeys(deployment_ids) if d not in known)
    keys.current_key(s, t)
    s.flush()
    return p


def platforms(s: Session) -> list[LtiPlatform]:
    return list(s.scalars(select(LtiPlatform).options(selectinload(LtiPlatform.deployments)).order_by(LtiPlatform.id)))


def describe(p: LtiPlatform) -> dict[str, Any]:
    return {"id": p.id, "issuer": p.issuer, "client_id": p.client_id,
            "deployment_ids": [d.deployment_id for d in p.deployments], "auth_url": p.auth_url,
            "token_url": p.token_url, "jwks_url": p.jwks_url, "frame_origins": p.frame_origins,
            "created_at": keys.aware(p.created_at).isoformat()}


def find_platform(s: Session, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The platform of (issuer, client id); with no client id, the issuer's only registration."""
    stmt = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
    if client_id:
        return s.scalar(stmt.where(LtiPlatform.client_id == client_id))
    found = list(s.scalars(stmt.limit(2)))
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------- LMS users and courses

def role_of(roles: Any) -> str:
    """instructor for an Instructor or Administrator role (membership, institution or system), else student."""
    for r in roles if isinstance(roles, list) else []:
        name = str(r).rsplit("#", 1)[-1] if "#" in str(r) else str(r).rsplit("/", 1)[-1]
        if name in INSTRUCTOR_ROLES:
            return "instructor"
    return "student"


def _text(value: Any, limit: int) -> str:
    """A claim as a one-line string that fits its column (no control characters: PostgreSQL refuses NUL)."""
    return "".join(c for c in str(value or "") if c.isprintable())[:limit]


def username_for(issuer: str, sub: str) -> str:
    return "lti-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:16]


@dataclass
class Member:
    """What an id_token or an NRPS membership says about a person."""

    sub: str
    role: str
    full_name: str
    email: str
    student_id: str

    @classmethod
    def of_claims(cls, claims: dict[str, Any]) -> "Member":
        lis = claims.get(CLAIM + "lis") if isinstance(claims.get(CLAIM + "lis"), dict) else {}
        return cls.of(claims.get("sub"), claims.get(CLAIM + "roles"), claims, lis.get("person_sourcedid"))

    @classmethod
    def of(cls, sub: Any, roles: Any, person: dict[str, Any], sourcedid: Any) -> "Member":
        name = person.get("name") or " ".join(str(person.get(k) or "") for k in ("given_name", "family_name")).strip()
        return cls(str(sub), role_of(roles), _text(name, 200), _text(person.get("email"), 200), _text(sourcedid, 100))


def linked_user_id(s: Session, issuer: Any, sub: Any) -> int | None:
    """The account linked to an LMS user (issuer, sub), if any."""
    return s.scalar(select(LtiUser.user_id).where(LtiUser.issuer == issuer, LtiUser.sub == str(sub)))


def link_user(s: Session, issuer: str, m: Member, t: datetime) -> tuple[User, bool]:
    """The account of an LMS user (made on first sight), its role and details as the LMS says; (user, created)."""
    user = s.scalar(select(User).join(LtiUser, LtiUser.user_id == User.id)
                    .where(LtiUser.issuer == issuer, LtiUser.sub == m.sub))
    created = user is None
    if user is None:
        # No password: "!lti" is no hash werkzeug can match, so the account logs in through the LMS only.
        user = User(username=username_for(issuer, m.sub), role=m.role, password_hash="!lti", created_at=t,
                    full_name=m.full_name, email=m.email, student_id=m.student_id)
        s.add(user)
        s.flush()
        s.add(LtiUser(issuer=issuer, sub=m.sub, user_id=user.id))
    user.role = m.role
    for field in ("full_name", "email", "student_id"):
        if getattr(m, field):
            setattr(user, field, getattr(m, field))
    s.flush()
    return user, created


def record_context(s: Session, p: LtiPlatform, claims: dict[str, Any]) -> LtiContext | None:
    """Remember the launch's course and its NRPS URL (for roster sync)."""
    ctx = claims.get(CLAIM + "context")
    if not isinstance(ctx, dict) or not ctx.get("id"):
        return None
    row = s.scalar(select(LtiContext).where(LtiContext.platform_id == p.id, LtiContext.context_id == str(ctx["id"])[:255]))
    if row is None:
        row = LtiContext(platform_id=p.id, context_id=str(ctx["id"])[:255])
        s.add(row)
    row.title = _text(ctx.get("title") or ctx.get("label"), 300)
    nrps = claims.get(NRPS_CLAIM)
    if isinstance(nrps, dict) and isinstance(nrps.get("context_memberships_url"), str):
        row.memberships_url = nrps["context_memberships_url"][:1000]
    s.flush()
    return row


def ags_endpoint(claims: dict[str, Any]) -> dict[str, Any] | None:
    """The launch's AGS claim when it names a line item the tool may post scores to."""
    ags = claims.get(AGS_CLAIM)
    if not isinstance(ags, dict) or not isinstance(ags.get("lineitem"), str) or len(ags["lineitem"]) > 1000:
        return None
    scopes = ags.get("scope") if isinstance(ags.get("scope"), list) else []
    return ags if SCORE_SCOPE in scopes else None


def record_line_item(s: Session, user: User, quiz_id: str, p: LtiPlatform, sub: str,
                     ags: dict[str, Any]) -> tuple[LtiLineItem, bool]:
    """Where this student's score for the quiz goes; (row, new)."""
    row = s.scalar(select(LtiLineItem).where(LtiLineItem.user_id == user.id, LtiLineItem.quiz_id == quiz_id,
                                             LtiLineItem.platform_id == p.id, LtiLineItem.lineitem == ags["lineitem"]))
    new = row is None
    if row is None:
        row = LtiLineItem(user_id=user.id, quiz_id=quiz_id, platform_id=p.id, lineitem=ags["lineitem"], lti_sub=sub,
                          scopes=[x for x in ags["scope"] if isinstance(x, str)])
        s.add(row)
        s.flush()
    return row, new
