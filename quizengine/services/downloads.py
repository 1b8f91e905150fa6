"""One-time downloads of secrets (a roster's generated passwords): kept briefly in a folder of the
instance, never in a cookie; only the browser session that made one can take it, and taking it
deletes it."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path

KEEP_S = 15 * 60  # then the file is gone, taken or not
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _owner(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]  # the session id itself is never written


def _tidy(folder: Path) -> None:
    """Delete what is older than KEEP_S."""
    cutoff = time.time() - KEEP_S
    for f in folder.glob("*.once"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
        except FileNotFoundError:
            pass  # another worker took or tidied it


def put(folder: Path, session_id: str, data: bytes) -> str:
    """Keep ``data`` for the session ``session_id``; return the token that takes it (once)."""
    if not session_id:
        raise ValueError("a one-time download belongs to a browser session")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tidy(folder)
    token = secrets.token_urlsafe(24)
    fd = os.open(folder / f"{_owner(session_id)}-{token}.once", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return token


def take(folder: Path, session_id: str, token: str) -> bytes | None:
    """The data kept under ``token`` for this session, deleted as it is read; None if there is none
    (taken already, expired, another session's, or never made)."""
    if not session_id or not TOKEN.match(token or "") or not folder.is_dir():
        return None
    _tidy(folder)
    path = folder / f"{_owner(session_id)}-{token}.once"
    claimed = path.with_suffix(f".taken-{secrets.token_hex(8)}")
    try:
        os.rename(path, claimed)  # atomic: of two requests at once, one gets the file
    except FileNotFoundError:
        return None
    try:
        return claimed.read_bytes()
    finally:
        claimed.unlink(missing_ok=True)
