"""Names and Role Provisioning Services: a course's members become (or update) LMS-linked accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..models import LtiContext, LtiKey
from . import keys, registry

MAX_MEMBERS = 5000  # pages are followed up to this many members


class RosterError(RuntimeError):
    """The platform could not be asked; the message says why."""


@dataclass
class Synced:
    members: int
    created: int
    updated: int
    skipped: int  # inactive or deleted members, and those without a user_id


def fetch_members(ctx: LtiContext, key: LtiKey) -> list[dict[str, Any]]:
    """Every member of the course, following the platform's pages (no transaction open: network)."""
    from pylti1p3.names_roles import NamesRolesProvisioningService  # (here: pylti1p3 loads for LMS calls only)

    from .connector import Connector
    from .toolconf import registration

    if not ctx.memberships_url:
        raise RosterError("this course's launches carried no Names and Role Provisioning Services URL")
    nrps = NamesRolesProvisioningService(Connector(registration(ctx.platform, key)),
                                         {"context_memberships_url": ctx.memberships_url})
    members: list[dict[str, Any]] = []
    url: str | None = ctx.memberships_url
    while url and len(members) < MAX_MEMBERS:
        page, url = nrps.get_members_page(url)
        members.extend(m for m in page if isinstance(m, dict))
    return members[:MAX_MEMBERS]


def sync(db: Any, context_id: int, t: datetime) -> Synced:
    """Fetch the course's members, then create or update their accounts in one short transaction."""
    with db.read() as s:
        ctx = s.scalar(select(LtiContext).where(LtiContext.id == context_id).options(selectinload(LtiContext.platform)))
        key = s.scalar(select(LtiKey).where(LtiKey.role == "current"))
    if ctx is None:
        raise RosterError(f"no LMS course {context_id}")
    if key is None:
        with db.write() as s:
            key = keys.current_key(s, t)
    try:
        members = fetch_members(ctx, key)
    except RosterError:
        raise
    except Exception as e:  # noqa: BLE001 - the platform's failure, shown to the instructor
        from .connector import failure

        raise RosterError(f"the platform did not give the roster: {failure(e)}") from e
    created = updated = skipped = 0
    with db.write() as s:
        for m in members:
            if not m.get("user_id") or m.get("status", "Active") != "Active":
                skipped += 1
                continue
            member = registry.Member.of(m["user_id"], m.get("roles"), m, m.get("lis_person_sourcedid"))
            _, new = registry.link_user(s, ctx.platform.issuer, member, t)
            created += new
            updated += not new
        row = s.get(LtiContext, context_id)
        if row is not None:
            row.synced_at = t
    return Synced(len(members), created, updated, skipped)


def contexts(s: Any) -> list[LtiContext]:
    return list(s.scalars(select(LtiContext).options(selectinload(LtiContext.platform)).order_by(LtiContext.id)))
