"""A mock LMS (LTI 1.3 platform) for the tests, served by werkzeug on a loopback port in a thread.

It has its own RSA key and JWKS and signs id_tokens; its OIDC authorization endpoint answers the
tool's login redirect with an auto-posting form (as Canvas and Moodle do); its OAuth2
client-credentials endpoint verifies the tool's JWT assertion against the tool's JWKS; it records
the AGS scores posted to its line items, serves an NRPS membership, and takes deep-linking
responses (verified like the token assertions), creating a line item for each resource link.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

import jwt
import requests
from flask import Flask, Response, abort, jsonify, request
from jwcrypto.jwk import JWK
from werkzeug.serving import make_server

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
          "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
          "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
CONTEXT = "course-101"


def rsa_key() -> JWK:
    return JWK.generate(kty="RSA", size=2048)


@dataclass
class LineItem:
    id: str
    label: str
    score_maximum: float
    resource_id: str
    resource_link_id: str
    tag: str = ""


@dataclass
class Person:
    sub: str
    name: str
    email: str
    roles: list[str]
    sourcedid: str = ""


@dataclass
class Recorded:
    """What the platform saw: scores per line item, token requests, deep-linking answers."""

    scores: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (line item id, body, content type)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    deep_links: list[dict[str, Any]] = field(default_factory=list)


class MockPlatform:
    def __init__(self, tool_url: str = "", tool_jwks: Callable[[], dict[str, Any]] | None = None,
                 client_id: str = "quizengine-tool", deployment_id: str = "deployment-1"):
        self.tool_url = tool_url  # the tool's base URL (its JWKS is fetched there) ...
        self.tool_jwks = tool_jwks  # ... or a callable giving it (a tool in a Flask test client)
        self.client_id, self.deployment_id = client_id, deployment_id
        self.key = rsa_key()
        self.kid = self.key.thumbprint()
        self.people: dict[str, Person] = {
            "prof-1": Person("prof-1", "Pat Professor", "pat@example.edu", [INSTRUCTOR], "T-1"),
            "stud-1": Person("stud-1", "Sam Student", "sam@example.edu", [LEARNER], "S-1001"),
            "stud-2": Person("stud-2", "Robin Roe", "robin@example.edu", [LEARNER], "S-1002"),
        }
        self.line_items: dict[str, LineItem] = {}
        self.links: dict[str, dict[str, Any]] = {}  # resource link id -> {title, custom, line item}
        self.tokens: dict[str, list[str]] = {}
        self.recorded = Recorded()
        self.fail_scores = 0  # the next N score posts get a 503
        self._changed = threading.Condition()
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-lms", daemon=True)

    # -- lifecycle

    def __enter__(self) -> "MockPlatform":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    @property
    def issuer(self) -> str:
        return self.url

    def registration_args(self) -> list[str]:
        """`quizengine lti add-platform` arguments for this platform."""
        return ["--issuer", self.issuer, "--client-id", self.client_id, "--deployment-id", self.deployment_id,
                "--auth-url", self.url + "/auth", "--token-url", self.url + "/token", "--jwks-url", self.url + "/jwks"]

    def wait_for_scores(self, n: int, timeout: float = 30.0) -> list[tuple[str, dict[str, Any], str]]:
        """Block until at least n scores were posted (the tool posts from its own thread)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.recorded.scores) >= n, timeout=timeout)
            return list(self.recorded.scores)

    # -- launches

    def login_url(self, message_hint: str, login_hint: str, target: str | None = None) -> str:
        """Third-party initiated login: where the LMS sends the browser first (the tool's /lti/login)."""
        query = {"iss": self.issuer, "login_hint": login_hint, "target_link_uri": target or self.tool_url + "/lti/launch",
                 "lti_message_hint": message_hint, "client_id": self.client_id,
                 "lti_deployment_id": self.deployment_id}
        return self.tool_url + "/lti/login?" + urlencode(query)

    def claims(self, message_hint: str, login_hint: str, nonce: str) -> dict[str, Any]:
        """The id_token claims of a launch: message_hint 'deep-link' or 'link:<resource link id>'."""
        person = self.people[login_hint]
        now = int(time.time())
        base = {"iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "sub": person.sub,
                "exp": now + 300, "iat": now, "nonce": nonce, "name": person.name, "email": person.email,
                CLAIM + "deployment_id": self.deployment_id, CLAIM + "version": "1.3.0", CLAIM + "roles": person.roles,
                CLAIM + "lis": {"person_sourcedid": person.sourcedid},
                CLAIM + "context": {"id": CONTEXT, "label": "NN101", "title": "Neural Networks 101"},
                CLAIM + "tool_platform": {"guid": "mock-lms", "name": "Mock LMS"},
                NRPS: {"context_memberships_url": f"{self.url}/nrps/{CONTEXT}", "service_versions": ["2.0"]}}
        if message_hint == "deep-link":
            return {**base, CLAIM + "message_type": "LtiDeepLinkingRequest",
                    DL + "deep_linking_settings": {"deep_link_return_url": self.url + "/deep_link_return",
                                                   "accept_types": ["ltiResourceLink"],
                                                   "accept_presentation_document_targets": ["iframe", "window"],
                                                   "accept_multiple": False, "data": "dl-data-" + login_hint}}
        link_id = message_hint.removeprefix("link:")
        link = self.links[link_id]
        claims = {**base, CLAIM + "message_type": "LtiResourceLinkRequest",
                  CLAIM + "resource_link": {"id": link_id, "title": link["title"]},
                  CLAIM + "target_link_uri": self.tool_url + "/lti/launch"}
        if link.get("custom"):
            claims[CLAIM + "custom"] = link["custom"]
        if link.get("line_item"):
            claims[AGS] = {"scope": SCOPES, "lineitem": link["line_item"], "lineitems": self.url + "/lineitems"}
        return claims

    def sign(self, claims: dict[str, Any], key: JWK | None = None, kid: str | None = None) -> str:
        key = key or self.key
        return jwt.encode(claims, key.export_to_pem(private_key=True, password=None), algorithm="RS256",
                          headers={"kid": kid or self.kid})

    def authorize(self, params: dict[str, str], tamper: Callable[[dict[str, Any]], Any] | None = None,
                  key: JWK | None = None, kid: str | None = None) -> dict[str, str]:
        """The OIDC authorization response to the tool's login redirect: {id_token, state} and where to post it."""
        if params.get("client_id") != self.client_id or params.get("response_type") != "id_token" \
                or params.get("scope") != "openid" or not params.get("nonce"):
            raise ValueError(f"bad authorization request: {params}")
        claims = self.claims(params["lti_message_hint"], params["login_hint"], params["nonce"])
        if tamper is not None:
            tamper(claims)
        return {"id_token": self.sign(claims, key, kid), "state": params["state"], "action": params["redirect_uri"]}

    def add_link(self, link_id: str, title: str, custom: dict[str, str] | None = None,
                 line_item: str | None = None) -> None:
        self.links[link_id] = {"title": title, "custom": custom or {}, "line_item": line_item}

    # -- the tool's JWTs (token assertions, deep-linking responses)

    def _tool_keyset(self) -> dict[str, Any]:
        if self.tool_jwks is not None:
            return self.tool_jwks()
        return requests.get(self.tool_url + "/lti/jwks", timeout=10).json()

    def verify_tool_jwt(self, token: str, audience: str) -> dict[str, Any]:
        kid = jwt.get_unverified_header(token).get("kid")
        for k in self._tool_keyset()["keys"]:
            if k.get("kid") == kid:
                pem = JWK(**k).export_to_pem()
                return jwt.decode(token, pem, algorithms=["RS256"], audience=audience, issuer=self.client_id,
                                  options={"require": ["exp", "iat", "iss", "aud"]})
        raise jwt.InvalidTokenError(f"no tool key {kid!r}")

    # -- the platform's HTTP endpoints

    def _bearer(self, scope: str) -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if scope not in self.tokens.get(token, []):
            abort(401)

    def _build(self) -> Flask:
        app = Flask("mock-lms")

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [{**self.key.export_public(as_dict=True), "kid": self.kid, "alg": "RS256",
                                      "use": "sig"}]})

        @app.get("/course")
        def course():
            """A course page of the LMS that shows the tool in an iframe (src: a login initiation URL)."""
            return (f'<!doctype html><title>Mock LMS course</title><h1>Neural Networks 101</h1>'
                    f'<iframe name="tool" title="quizengine" src="{html.escape(request.args["url"])}" '
                    'width="1100" height="900"></iframe>')

        @app.get("/auth")
        def auth():
            answer = self.authorize(request.args.to_dict())
            return (f'<!doctype html><title>Mock LMS</title><form id="f" method="post" '
                    f'action="{html.escape(answer["action"])}">'
                    f'<input type="hidden" name="id_token" value="{answer["id_token"]}">'
                    f'<input type="hidden" name="state" value="{html.escape(answer["state"])}"></form>'
                    '<script>document.getElementById("f").submit()</script>')

        @app.post("/token")
        def token():
            form = request.form
            self.recorded.token_requests.append(form.to_dict())
            if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != \
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return jsonify({"error": "unsupported_grant_type"}), 400
            try:
                claims = self.verify_tool_jwt(form.get("client_assertion", ""), self.url + "/token")
            except jwt.InvalidTokenError as e:
                return jsonify({"error": "invalid_client", "error_description": str(e)}), 401
            if claims.get("sub") != self.client_id:
                return jsonify({"error": "invalid_client"}), 401
            access = secrets.token_urlsafe(16)
            self.tokens[access] = form.get("scope", "").split()
            return jsonify({"access_token": access, "token_type": "bearer", "expires_in": 3600,
                            "scope": form.get("scope", "")})

        @app.get("/lineitems/<item_id>")
        def line_item(item_id: str):
            self._bearer(SCOPES[0])
            li = self.line_items.get(f"{self.url}/lineitems/{item_id}") or abort(404)
            return jsonify({"id": li.id, "label": li.label, "scoreMaximum": li.score_maximum,
                            "resourceId": li.resource_id, "resourceLinkId": li.resource_link_id, "tag": li.tag})

        @app.post("/lineitems/<item_id>/scores")
        def scores(item_id: str):
            self._bearer(SCOPES[2])
            if f"{self.url}/lineitems/{item_id}" not in self.line_items:
                abort(404)
            if self.fail_scores > 0:
                self.fail_scores -= 1
                return "the gradebook is down for maintenance", 503
            body = json.loads(request.get_data(as_text=True))
            with self._changed:
                self.recorded.scores.append((f"{self.url}/lineitems/{item_id}", body, request.content_type or ""))
                self._changed.notify_all()
            return "", 204

        @app.get("/nrps/<context>")
        def members(context: str):
            self._bearer(NRPS_SCOPE)
            if request.headers.get("Accept") != "application/vnd.ims.lti-nrps.v2.membershipcontainer+json":
                abort(406)
            return Response(json.dumps({"id": request.url, "context": {"id": context, "title": "Neural Networks 101"},
                                        "members": [{"status": "Active", "user_id": p.sub, "name": p.name,
                                                     "email": p.email, "roles": p.roles,
                                                     "lis_person_sourcedid": p.sourcedid}
                                                    for p in self.people.values()]}),
                            content_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")

        @app.post("/deep_link_return")
        def deep_link_return():
            claims = self.verify_tool_jwt(request.form.get("JWT", ""), self.issuer)
            if claims.get(CLAIM + "message_type") != "LtiDeepLinkingResponse" or \
                    claims.get(CLAIM + "deployment_id") != self.deployment_id:
                abort(400)
            self.recorded.deep_links.append(claims)
            for item in claims.get(DL + "content_items", []):
                link_id = "link-" + uuid.uuid4().hex[:8]
                li = item.get("lineItem")
                url = None
                if li:
                    url = f"{self.url}/lineitems/{len(self.line_items) + 1}"
                    self.line_items[url] = LineItem(url, li.get("label", ""), float(li["scoreMaximum"]),
                                                    li.get("resourceId", ""), link_id, li.get("tag", ""))
                self.add_link(link_id, item.get("title", ""), item.get("custom"), url)
            return "<!doctype html><title>Mock LMS</title><p id='done'>Content added.</p>"

        return app

    def line_item_of(self, url: str) -> LineItem:
        return self.line_items[url]

    @property
    def newest_link(self) -> str:
        return list(self.links)[-1]
