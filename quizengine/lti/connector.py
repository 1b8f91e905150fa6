"""HTTP to the platform through pylti1p3's ServiceConnector: timeouts, and access tokens cached per process."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import requests
from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector

TIMEOUT = (5.0, 15.0)  # connect, read: a slow platform never holds a worker (or the sweeper) for long
USER_AGENT = "quizengine-lti"


class TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout (pylti1p3 passes none)."""

    def __init__(self, timeout: tuple[float, float] = TIMEOUT):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


class Connector(ServiceConnector):
    """Access tokens cached in this process until a minute before they expire, per client and scopes."""

    _tokens: dict[str, tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, registration: Any, requests_session: requests.Session | None = None):
        super().__init__(registration, requests_session=requests_session or TimeoutSession())

    def _scope_key(self, scopes: Any) -> str:
        r = self._registration
        return hashlib.sha256("\n".join([r.get_issuer() or "", r.get_client_id() or "", r.get_auth_token_url() or "",
                                         *sorted(scopes)]).encode()).hexdigest()

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        with self._lock:
            token, until = self._tokens.get(scope_key, ("", 0.0))
        return token if token and time.monotonic() < until else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        try:
            life = float(expires_in or 0)
        except (TypeError, ValueError):
            life = 0.0
        with self._lock:
            self._tokens[scope_key] = (access_token, time.monotonic() + max(0.0, life - 60))

    @classmethod
    def forget_tokens(cls) -> None:
        with cls._lock:
            cls._tokens.clear()


def failure(e: Exception) -> str:
    """A platform call's failure in one line, with the platform's answer when there is one."""
    if isinstance(e, LtiServiceException):
        body = (e.response.text or "")[:300].replace("\n", " ")
        return f"{e} {body}".strip()
    return f"{type(e).__name__}: {e}"[:500]
