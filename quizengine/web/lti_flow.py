"""pylti1p3's Flask login and launch, with the checks this tool adds.

State and nonce are one-time values in the database (store.py) with an expiry; the state must also
come back in the browser's cookie. The id_token's signature, ``iss``, ``aud`` (and ``azp`` when
there are several audiences), ``exp`` and ``iat`` (one minute of clock skew), the deployment and
the message type are checked. Every refusal is a ServiceError with a 4xx status and a message.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import jwt
from pylti1p3.contrib.flask import FlaskCookieService, FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException, LtiInvalidNonceException, LtiKeyException, OIDCException
from pylti1p3.session import SessionService

from ..lti import store
from ..lti.registry import DEEP_LINKING, MESSAGE_TYPE, RESOURCE_LINK
from ..lti.toolconf import ToolConf
from ..lti.connector import Connector, TimeoutSession
from ..services.errors import ServiceError

LEEWAY_S = 60  # clock skew allowed between the platform and this server
MAX_AGE = timedelta(hours=1)  # an id_token issued longer ago is refused, whatever its exp says
JWKS_TTL_S = 300.0  # the platform's keys are fetched again after this (and at once for an unknown kid)
ALGORITHMS = ("RS256", "RS384", "RS512")


class Sessions(SessionService):
    """pylti1p3's session service with its values in the database, each usable once."""

    def __init__(self, request: Any, db: Any, t: datetime):
        super().__init__(request)
        self.db, self.t = db, t

    def _put(self, value: str, ttl: timedelta, data: Any = None) -> None:
        with self.db.write() as s:
            store.put(s, value, self.t, ttl, data)

    def _take(self, value: str) -> tuple[bool, Any]:
        with self.db.write() as s:
            return store.take(s, value, self.t)

    def save_nonce(self, nonce: str) -> None:
        self._put("nonce-" + nonce, store.STATE_TTL)

    def check_nonce(self, nonce: str) -> bool:
        return self._take("nonce-" + str(nonce))[0]

    def save_state_params(self, state: str, params: dict[str, object]) -> None:
        self._put("state-" + state, store.STATE_TTL, params)

    def take_state(self, state: str) -> bool:
        return self._take("state-" + state)[0]

    def save_launch_data(self, key: str, jwt_body: Any) -> None:
        self._put("launch-" + key, store.LAUNCH_TTL, jwt_body)

    def get_launch_data(self, key: str) -> Any:
        return self._take("launch-" + key)[1]

    def set_state_valid(self, state: str, id_token_hash: str) -> None:
        return None  # a state is good for one launch only: no re-use of an id_token

    def check_state_is_valid(self, state: str, id_token_hash: str) -> bool:
        return False


class StateCookie(FlaskCookieService):
    """The OIDC state cookie, sent back on the platform's cross-site POST: SameSite=None; Secure over HTTPS."""

    def __init__(self, request: Any, https: bool):
        super().__init__(request)
        self.https = https

    def update_response(self, response: Any) -> None:
        for key, data in self._cookie_data_to_set.items():
            extra = {"secure": True, "samesite": "None", "partitioned": True} if self.https else {}
            response.set_cookie(key, data["value"], max_age=data["exp"], path="/lti/", httponly=True, **extra)


def _parts(db: Any, t: datetime, https: bool) -> dict[str, Any]:
    request = FlaskRequest()
    return {"request": request, "tool_config": ToolConf(db, t),
            "session_service": Sessions(request, db, t), "cookie_service": StateCookie(request, https)}


class Login(FlaskOIDCLogin):
    @classmethod
    def of(cls, db: Any, t: datetime, https: bool) -> "Login":
        p = _parts(db, t, https)
        return cls(p.pop("request"), p.pop("tool_config"), **p)

    def start(self, launch_url: str, target: str) -> Any:
        """The redirect to the platform's authorization URL (state in a cookie and the database)."""
        try:
            return self.pass_params_to_launch({"target_link_uri": target[:1000]}).redirect(launch_url)
        except OIDCException as e:
            raise ServiceError(400, f"LTI login refused: {e} (the issuer and client id must be registered "
                                    "with `quizengine lti add-platform`)") from e


_JWKS: dict[str, tuple[Any, float]] = {}
_JWKS_LOCK = threading.Lock()


class Launch(FlaskMessageLaunch):
    """A launch validated with the checks above; ``launch()`` returns its claims or raises ServiceError."""

    _client_id: str | None = None

    @classmethod
    def of(cls, db: Any, t: datetime, https: bool) -> "Launch":
        p = _parts(db, t, https)
        return cls(p.pop("request"), p.pop("tool_config"), requests_session=TimeoutSession(),
                   service_connector_cls=Connector, **p)

    @classmethod
    def resumed(cls, db: Any, t: datetime, https: bool, launch_id: str) -> "Launch":
        """A deep-linking launch kept in the database (usable once)."""
        p = _parts(db, t, https)
        try:
            return cls.from_cache(launch_id, p.pop("request"), p.pop("tool_config"), requests_session=TimeoutSession(),
                                  service_connector_cls=Connector, **p)
        except LtiException as e:
            raise ServiceError(400, "this deep-linking launch was used or has expired (an hour): "
                                    "start it again from the LMS") from e

    def launch(self) -> dict[str, Any]:
        try:
            self.validate()
        except ServiceError:
            raise
        except LtiInvalidNonceException as e:
            raise ServiceError(401, "LTI launch refused: the nonce was used before or has expired "
                                    "(a replayed launch); start it again from the LMS") from e
        except LtiKeyException as e:
            raise ServiceError(401, f"LTI launch refused: {e} (the id_token's key is not among the platform's keys)") \
                from e
        except LtiException as e:
            raise ServiceError(400, f"LTI launch refused: {e}") from e
        return self._get_jwt_body()

    # -- the checks

    def validate_state(self) -> "Launch":
        state = self._get_request_param("state")
        if not state:
            raise ServiceError(400, "LTI launch refused: no state parameter; start the launch from the LMS")
        if not self._session_service.take_state(state):
            raise ServiceError(401, "LTI launch refused: the state is unknown, used before or expired "
                                    f"({store.STATE_TTL.seconds // 60} minutes); start it again from the LMS")
        if self._cookie_service.get_cookie(state) != state:
            raise ServiceError(401, "LTI launch refused: the browser did not send back the login cookie; "
                                    "allow cookies for this site or open the tool in a new window")
        return self

    def get_client_id(self) -> str:
        return self._client_id or super().get_client_id()

    def validate_registration(self) -> "Launch":
        body = self._get_jwt_body()
        iss, aud, azp = body.get("iss"), body.get("aud"), body.get("azp")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not isinstance(iss, str) or not iss or not audiences:
            raise ServiceError(400, "LTI launch refused: the id_token lacks its iss or aud claim")
        if len(audiences) > 1 and not azp:
            raise ServiceError(401, "LTI launch refused: the id_token has several audiences and no azp claim")
        client_id = azp if azp else audiences[0]
        if client_id not in audiences:
            raise ServiceError(401, f"LTI launch refused: azp {azp!r} is not among the audiences {audiences}")
        self._client_id = str(client_id)
        self._registration = self._tool_config.find_registration_by_params(iss, self._client_id)
        if self._registration is None:
            raise ServiceError(401, f"LTI launch refused: no platform is registered for issuer {iss!r} with client "
                                    f"id (audience) {client_id!r}")
        return self

    def fetch_public_key(self, key_set_url: str) -> Any:
        with _JWKS_LOCK:
            keyset, until = _JWKS.get(key_set_url, (None, 0.0))
        if keyset is not None and time.monotonic() < until:
            return keyset
        try:
            r = self._requests_session.get(key_set_url)
            r.raise_for_status()
            keyset = r.json()
        except Exception as e:  # noqa: BLE001 - the platform's fault, said as such
            raise ServiceError(502, f"LTI launch: the platform's keys could not be fetched from {key_set_url}: "
                                    f"{type(e).__name__}") from e
        if not isinstance(keyset, dict) or not isinstance(keyset.get("keys"), list):
            raise ServiceError(502, f"LTI launch: {key_set_url} did not return a JWKS")
        with _JWKS_LOCK:
            _JWKS[key_set_url] = (keyset, time.monotonic() + JWKS_TTL_S)
        return keyset

    def get_public_key(self) -> tuple[str, str]:
        try:
            return super().get_public_key()
        except LtiKeyException:  # a key the cached set lacks: the platform may have rotated; fetch once more
            with _JWKS_LOCK:
                _JWKS.pop(self._registration.get_key_set_url(), None)
            self._registration.set_key_set(None)
            return super().get_public_key()

    def validate_jwt_signature(self) -> "Launch":
        public_key, alg = self.get_public_key()
        if alg not in ALGORITHMS:
            raise ServiceError(401, f"LTI launch refused: algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")
        body = self._get_jwt_body()
        try:
            claims = jwt.decode(self._get_id_token(), public_key, algorithms=[alg], audience=self._client_id,
                                issuer=body.get("iss"), leeway=LEEWAY_S,
                                options={"require": ["exp", "iat", "iss", "aud", "nonce"]})
        except jwt.MissingRequiredClaimError as e:
            raise ServiceError(400, f"LTI launch refused: the id_token lacks the {e.claim!r} claim") from e
        except jwt.ExpiredSignatureError as e:
            raise ServiceError(401, "LTI launch refused: the id_token has expired (exp); start it again") from e
        except jwt.ImmatureSignatureError as e:
            raise ServiceError(401, "LTI launch refused: the id_token is issued in the future (iat); "
                                    "check the clocks") from e
        except jwt.InvalidAudienceError as e:
            raise ServiceError(401, f"LTI launch refused: wrong audience: {e}") from e
        except jwt.InvalidIssuerError as e:
            raise ServiceError(401, f"LTI launch refused: wrong issuer: {e}") from e
        except jwt.InvalidSignatureError as e:
            raise ServiceError(401, "LTI launch refused: the id_token's signature does not verify with the "
                                    "platform's key") from e
        except jwt.InvalidTokenError as e:
            raise ServiceError(400, f"LTI launch refused: the id_token is not valid: {e}") from e
        if not isinstance(claims.get("iat"), (int, float)) or \
                claims["iat"] < time.time() - MAX_AGE.total_seconds() - LEEWAY_S:
            raise ServiceError(401, f"LTI launch refused: the id_token was issued more than {MAX_AGE} ago (iat)")
        return self

    def validate_deployment(self) -> "Launch":
        iss, deployment_id = self.get_iss(), self._get_deployment_id()
        if not self._tool_config.find_deployment_by_params(iss, deployment_id, self.get_client_id()):
            raise ServiceError(403, f"LTI launch refused: deployment {deployment_id!r} of {iss} is not registered; "
                                    "add it with `quizengine lti add-platform ... --deployment-id ID`")
        return self

    def validate_message(self) -> "Launch":
        kind = self._get_jwt_body().get(MESSAGE_TYPE)
        if kind not in (RESOURCE_LINK, DEEP_LINKING):
            raise ServiceError(400, f"LTI launch refused: message type {kind!r} is not supported; this tool "
                                    f"takes {RESOURCE_LINK} and {DEEP_LINKING}")
        return super().validate_message()

    def save_launch_data(self) -> "Launch":
        if self._get_jwt_body().get(MESSAGE_TYPE) == DEEP_LINKING:  # kept for the quiz picker's answer
            self._session_service.save_launch_data(self._launch_id, self._get_jwt_body())
        return self

