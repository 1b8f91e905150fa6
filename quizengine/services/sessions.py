"""Browser sessions as rows: one per login, named by the signed cookie; deleting the row ends it."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Row, bindparam, delete, select
from sqlalchemy.orm import Session

from ..constants import SESSION_LIFETIME
from ..models import User, UserSession

SESSION_KEEP = SESSION_LIFETIME  # rows older than a session's absolute lifetime are tidied away


def open_session(s: Session, user_id: int, t: datetime) -> str:
    """Record a new browser session of a user; return its id (kept in the signed cookie)."""
    s.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.created_at < t - SESSION_KEEP))
    sid = secrets.token_urlsafe(32)
    s.add(UserSession(id=sid, user_id=user_id, created_at=t))
    return sid


def close_session(s: Session, session_id: str) -> None:
    s.execute(delete(UserSession).where(UserSession.id == session_id))


def end_sessions(s: Session, user_id: int) -> None:
    """End every browser session of a user (a password change or reset)."""
    s.execute(delete(UserSession).where(UserSession.user_id == user_id))


# Built once: every request of a logged-in browser runs it (autosaves included).
SESSION_USER = (select(User.id, User.username, User.full_name, User.role, User.session_version)
                .join(UserSession, UserSession.user_id == User.id)
                .where(User.id == bindparam("uid"), UserSession.id == bindparam("sid")))


def session_user(s: Session, user_id: int, session_id: str) -> Row | None:
    """The user of a live session (id, username, full_name, role, session_version), or None: one
    indexed lookup, the user joined to the session's row."""
    return s.execute(SESSION_USER, {"uid": user_id, "sid": session_id}).first()
