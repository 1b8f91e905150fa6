"""Settings from QUIZENGINE_* environment variables, with defaults.

Reading the settings writes nothing: the secret key kept in the instance folder is created by
``ensure_secret_key``, which create_app calls when no key was given.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from .constants import EXPIRY_SWEEP_S, LOGINS_PER_SECOND, PASSWORD_METHOD, SESSION_LIFETIME

ROOT = Path(__file__).resolve().parents[1]


def banks_path() -> Path:
    """The banks folder: QUIZENGINE_BANKS, or banks/ in the working directory."""
    return Path(os.environ.get("QUIZENGINE_BANKS", "banks"))


def instance_path() -> Path:
    return Path(os.environ.get("QUIZENGINE_INSTANCE", str(ROOT / "instance"))).resolve()


def secret_key(instance: Path) -> str | None:
    """QUIZENGINE_SECRET_KEY, or the key kept in the instance folder; None when there is neither yet."""
    key = os.environ.get("QUIZENGINE_SECRET_KEY")
    if key:
        return key
    path = instance / "secret_key"
    return path.read_text().strip() if path.is_file() else None


def ensure_secret_key(instance: Path) -> str:
    """The instance folder's secret key, created at random (0600) on first use; kept across restarts."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=instance, prefix=".secret_key.")  # 0600 from the start
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip()




def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ValueError(f"{name}={raw!r}: give a number of seconds from 0 to 86400")
    return value


def _count(name: str, default: int) -> int:
    """A non-negative integer from the environment; a bad value stops the start with its name."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise SystemExit(f"{name}={raw!r}: give a whole number from 0 to 999999")
    return int(raw)


def from_env() -> dict:
    """Return the app's settings; every key can be overridden by create_app(config)."""
    instance = instance_path()
    https = os.environ.get("QUIZENGINE_HTTPS", "") not in ("", "0", "false")
    return {
        "INSTANCE": str(instance),
        "DATABASE_URL": os.environ.get("QUIZENGINE_DATABASE_URL") or f"sqlite:///{instance / 'quizengine.sqlite3'}",
        "SECRET_KEY": secret_key(instance),
        "BANKS": str(banks_path()),
        "TIMEZONE": os.environ.get("QUIZENGINE_TIMEZONE", "UTC"),
        "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        # A CSRF token lives as long as the session, far longer than any quiz, so that autosave
        # keeps working on a page left open (Flask-WTF's default of one hour would not).
        "WTF_CSRF_TIME_LIMIT": int(SESSION_LIFETIME.total_seconds()),
        "WTF_CSRF_SSL_STRICT": https,
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "API_TOKEN_MAX_AGE": int(SESSION_LIFETIME.total_seconds()),
        "HTTPS": https,  # adds Strict-Transport-Security
        "TRUSTED_PROXIES": _count("QUIZENGINE_TRUSTED_PROXIES", 0),  # proxies whose X-Forwarded-For is believed
        # Login throttle (services/logins.py): free failures per (username, address), then the pair
        # waits 2, 4, 8, ... s (capped); failures are forgotten after LOGIN_FORGET without one.
        "LOGIN_FREE_FAILURES": 3,
        "LOGIN_MAX_DELAY": timedelta(minutes=15),
        "LOGIN_FORGET": timedelta(hours=1),
        # An address with more failures than this within LOGIN_WINDOW gets the longest delay at once
        # for every pair that fails (its free failures are spent); pairs without failures still log in.
        "LOGIN_LIMIT_ADDRESS": 30,
        "LOGIN_WINDOW": timedelta(minutes=15),
        # Password checks (right or wrong) per address per minute, and per server worker per second
        # (with a burst of one second's worth; the default is one core's worth of Argon2id hashes):
        # a flood of logins, valid or not, can't take the CPU that autosaves need.
        "LOGINS_PER_ADDRESS": _count("QUIZENGINE_LOGINS_PER_ADDRESS", 60),
        "LOGINS_PER_SECOND": _count("QUIZENGINE_LOGINS_PER_SECOND", LOGINS_PER_SECOND),
        "LOGIN_BURST": max(10, _count("QUIZENGINE_LOGINS_PER_SECOND", LOGINS_PER_SECOND)),
        "PASSWORD_METHOD": PASSWORD_METHOD,  # OWASP: Argon2id, 19 MiB, 2 passes, 1 lane (passwords.py)
        # `quizengine serve` submits attempts whose time is up every N seconds (0: only when read).
        "EXPIRY_SWEEP_SECONDS": _seconds("QUIZENGINE_EXPIRY_SWEEP_SECONDS", EXPIRY_SWEEP_S),
        # `quizengine serve` renders a student's upcoming attempts into the shared cache after they log
        # in or submit (services/warming.py), so their start needs no rendering (0: off).
        "WARM_AHEAD": _count("QUIZENGINE_WARM_AHEAD", 1),
        # LTI (quizengine/lti/): the sweeper rotates the tool's signing key when older than this many days
        # (0: only `quizengine lti rotate-key`); scores are posted by a thread of each worker ("thread"),
        # at once in the request ("inline", for tests) or only by the sweeper ("off").
        "LTI_KEY_DAYS": _count("QUIZENGINE_LTI_KEY_DAYS", 90),
        "LTI_SEND": "thread",
    }
