"""LTI 1.3 pages (README, "LTI 1.3"): OIDC login, launch, JWKS, the deep-linking picker, roster sync.

A launch logs the LMS user in with the app's usual server-side session; such a session may be
framed by its platform's origins only (CSP frame-ancestors) and, over HTTPS, its cookie is
SameSite=None; Secure; Partitioned so that it works inside the LMS's iframe.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, current_app, flash, g, jsonify, redirect, render_template, request, session,
                   url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_user

from ..lti import keys, outbox, registry, roster
from ..lti.registry import DEEP_LINKING, MESSAGE_TYPE, RESOURCE_LINK
from ..models import GRADED, Role
from ..services import sessions
from ..services.clock import now
from ..services.draw import quiz_points
from ..services.errors import ServiceError
from ..services.principal import Principal
from ..services.quizzes import all_quizzes, dashboard_rows, find_quiz, user_attempts
from . import db, reading, writing
from .auth import LoggedIn, instructor_required, principal, student_required
from .headers import content_security_policy, csp_nonce

if TYPE_CHECKING:
    from .lti_flow import Launch

# pylti1p3 (with jwt, cryptography, requests) is imported by the LTI views that use it (.lti_flow),
# not with this blueprint: a worker serving only the app's own pages never loads it.

log = logging.getLogger(__name__)

bp = Blueprint("lti", __name__, url_prefix="/lti")
FRAME = "lti_frame"  # session key: the origins that may frame this LTI-launched session
CUSTOM = registry.CLAIM + "custom"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def https() -> bool:
    return bool(current_app.config.get("HTTPS"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """OIDC login initiation: redirect to the platform with a one-time state and nonce."""
    from .lti_flow import Login

    target = request.values.get("target_link_uri", "")
    return Login.of(db(), now(), https()).start(url_for("lti.launch", _external=True), target)


@bp.get("/jwks")
def jwks():
    with reading() as s:
        found = keys.jwks(s)
    if not found["keys"]:
        with writing() as s:
            keys.current_key(s, now())
            found = keys.jwks(s)
    return jsonify(found)


def _quiz_of(claims: dict[str, Any]) -> str | None:
    """The quiz a resource link names: its custom parameter quiz=ID."""
    custom = claims.get(CUSTOM)
    quiz = custom.get("quiz") if isinstance(custom, dict) else None
    return quiz.strip() if isinstance(quiz, str) and quiz.strip() else None


def _quiz_from_line_item(ml: Launch, ags: dict[str, Any] | None) -> str | None:
    """The quiz of a deep-linked line item (its resourceId), asked of the platform when the link has no custom quiz."""
    scopes = (ags or {}).get("scope") or []
    if not ags or not any(s.endswith(("/lineitem", "/lineitem.readonly")) for s in scopes):
        return None
    try:
        from pylti1p3.assignments_grades import AssignmentsGradesService

        item = AssignmentsGradesService(ml.get_service_connector(), ags).get_lineitem(ags["lineitem"])
    except Exception:  # noqa: BLE001 - the launch goes on; it names no quiz then
        current_app.logger.warning("lti: line item %s could not be read", ags.get("lineitem"))
        return None
    rid = item.get_resource_id()
    return rid if isinstance(rid, str) and rid else None


@bp.post("/launch")
def launch():
    """A resource-link launch opens its quiz; a deep-linking launch lets an instructor pick one."""
    from .lti_flow import Launch

    t = now()
    ml = Launch.of(db(), t, https())
    claims = ml.launch()
    kind = claims[MESSAGE_TYPE]
    member = registry.Member.of_claims(claims)
    ags = registry.ags_endpoint(claims)
    quiz_id = None
    if kind == DEEP_LINKING and member.role != Role.INSTRUCTOR:
        raise ServiceError(403, "only an instructor of the course can add a quiz to it")
    if kind == RESOURCE_LINK:
        quiz_id = _quiz_of(claims) or _quiz_from_line_item(ml, claims.get(registry.AGS_CLAIM))
        with reading() as s:
            if quiz_id is None or find_quiz(s, quiz_id) is None:
                raise ServiceError(404, f"this LMS link names no quiz of this tool ({quiz_id or 'no custom quiz='});"
                                            " ask the instructor to pick the quiz again (deep linking)")
    with writing() as s:
        platform = registry.find_platform(s, claims["iss"], ml.get_client_id())
        user, _ = registry.link_user(s, platform.issuer, member, t)
        registry.record_context(s, platform, claims)
        if quiz_id is not None and ags is not None and user.role == Role.STUDENT:
            item, new = registry.record_line_item(s, user, quiz_id, platform, member.sub, ags)
            earlier = user_attempts(s, Principal(user.id, user.role), quiz_id)
            if new and any(a.state in GRADED for a in earlier):
                outbox.enqueue_items(s, [item.id])  # a score earned before this link: the LMS gets it too
        sid = sessions.open_session(s, user.id, t)
        who, origins = LoggedIn.of(user, sid), list(platform.frame_origins)
    session.clear()  # a new session: nothing from before survives (session fixation)
    session.permanent = True
    session["login_at"] = time.time()
    session[FRAME] = origins
    login_user(who)
    g.frame_ancestors = origins
    if kind == DEEP_LINKING:
        with reading() as s:
            quizzes = all_quizzes(s)
        return render_template("lti/deep_link.html", quizzes=quizzes, launch_id=ml.get_launch_id(),
                               settings=claims.get(DL_SETTINGS) or {})
    if who.is_instructor:
        return redirect(url_for("instructor.gradebook", quiz_id=quiz_id))
    return redirect(url_for("lti.quiz", quiz_id=quiz_id))


@bp.post("/deep-link")
@instructor_required
def deep_link():
    """Answer the platform's deep-linking request with the chosen quiz as an ltiResourceLink with a line item."""
    from pylti1p3.deep_link_resource import DeepLinkResource
    from pylti1p3.lineitem import LineItem

    from .lti_flow import Launch

    t = now()
    ml = Launch.resumed(db(), t, https(), request.form.get("launch_id", "")[:100])
    claims = ml.get_launch_data()
    with reading() as s:
        linked = registry.linked_user_id(s, claims.get("iss"), claims.get("sub"))
        quiz = find_quiz(s, request.form.get("quiz_id", ""))
        points = quiz_points(s, quiz) if quiz is not None else 0.0
    if linked != current_user.id:
        raise ServiceError(403, "this deep-linking launch belongs to another user")
    if quiz is None:
        raise ServiceError(404, f"no quiz {request.form.get('quiz_id', '')!r}")
    resource = (DeepLinkResource().set_url(url_for("lti.launch", _external=True)).set_title(quiz.title)
                .set_custom_params({"quiz": quiz.id})
                .set_lineitem(LineItem().set_score_maximum(points).set_label(quiz.title).set_resource_id(quiz.id)
                              .set_tag("quizengine")))
    settings = claims.get(DL_SETTINGS) or {}
    token = ml.get_deep_link().get_response_jwt([resource])
    return_url = settings.get("deep_link_return_url", "")
    if not str(return_url).startswith(("https://", "http://")):
        raise ServiceError(400, "the deep-linking request has no return URL")
    page = render_template("lti/deep_link_return.html", return_url=return_url, jwt=token, quiz=quiz)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(return_url))
    csp = content_security_policy(csp_nonce(), g.get("frame_ancestors")).replace(
        "form-action 'self'", f"form-action 'self' {origin}")
    return page, 200, {"Content-Security-Policy": csp}


@bp.get("/quiz/<quiz_id>")
@student_required
def quiz(quiz_id: str):
    """The quiz a resource link opened: its facts, the start (or continue) button, earlier attempts."""
    with reading() as s:
        row = next((q for q in dashboard_rows(s, principal(), now()) if q["id"] == quiz_id), None)
        if row is None:
            raise ServiceError(404, f"no quiz {quiz_id!r}")
        history = user_attempts(s, principal(), quiz_id)
    return render_template("lti/quiz.html", q=row, history=history)


@bp.post("/roster/<int:context_id>/sync")
@instructor_required
def sync_roster(context_id: int):
    try:
        done = roster.sync(db(), context_id, now())
    except roster.RosterError as e:
        raise ServiceError(502, str(e)) from e
    flash(f"Roster synced from the LMS: {done.members} members, {done.created} new accounts, {done.updated} "
          f"updated, {done.skipped} inactive or without an id skipped.")
    return redirect(url_for("instructor.roster"))


@bp.post("/quizzes/<quiz_id>/retry")
@instructor_required
def retry_scores(quiz_id: str):
    with writing() as s:
        n = outbox.retry_now(s, quiz_id)
    outbox.wake(db().engine.url.render_as_string(hide_password=False))
    flash(f"{n} waiting scores will be posted to the LMS now.")
    return redirect(url_for("instructor.gradebook", quiz_id=quiz_id))


@bp.post("/quizzes/<quiz_id>/dismiss")
@instructor_required
def dismiss_failed_scores(quiz_id: str):
    with writing() as s:
        n = outbox.dismiss_failed(s, quiz_id)
    log.warning("lti: %d failed scores of %s no longer retried (by %s)", n, quiz_id, current_user.get_id())
    flash(f"{n} failed scores will no longer be sent; a later change of those scores is sent again.")
    return redirect(url_for("instructor.gradebook", quiz_id=quiz_id))


# ---------------------------------------------------------------- wiring

class LtiSessionInterface(SecureCookieSessionInterface):
    """An LTI-launched session's cookie works inside the LMS's iframe over HTTPS (SameSite=None; Partitioned)."""

    def get_cookie_samesite(self, app: Flask) -> str | None:
        if app.config.get("HTTPS") and session.get(FRAME):
            return "None"
        return super().get_cookie_samesite(app)

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return bool(app.config.get("HTTPS") and session.get(FRAME)) or super().get_cookie_partitioned(app)


KICK_EVERY_S = 30.0


def init_lti(app: Flask, csrf: Any) -> None:
    app.register_blueprint(bp)
    csrf.exempt(login)  # the platform posts these; state, nonce and the signed id_token stand in for a CSRF token
    csrf.exempt(launch)
    app.session_interface = LtiSessionInterface()
    sender = outbox.register(app.extensions["quizengine.db"], app.config.get("LTI_SEND", "thread"))
    last_kick = [0.0]

    @app.before_request
    def frame_origins() -> None:
        if session.get(FRAME):
            g.frame_ancestors = session[FRAME]

    @app.after_request
    def post_waiting_scores(response):  # type: ignore[no-untyped-def]
        """Now and then a request wakes the sender if scores wait (retries also run in the sweeper)."""
        if sender.mode == "thread" and time.monotonic() - last_kick[0] > KICK_EVERY_S:
            last_kick[0] = time.monotonic()
            try:
                with reading() as s:
                    due = outbox.scores_due(s, now())
                if due:
                    sender.kick()  # wakes the thread: no network in this request
            except Exception:  # noqa: BLE001 - the response goes out whatever; the sweeper retries
                current_app.logger.exception("lti: could not look for waiting scores")
        return response

    @app.context_processor
    def lti_helpers() -> dict[str, Any]:
        return {"lti_scores": _scores_status, "lti_courses": _courses}


def _scores_status(quiz_id: str) -> dict[str, Any] | None:
    """The gradebook's LMS line: scores waiting or failing for this quiz (None when no student came from an LMS)."""
    with reading() as s:
        return outbox.quiz_status(s, quiz_id)


def _courses() -> list[dict[str, Any]]:
    with reading() as s:
        return [{"id": c.id, "title": c.title or c.context_id, "platform": c.platform.issuer,
                 "nrps": bool(c.memberships_url), "synced_at": c.synced_at} for c in roster.contexts(s)]

