"""Errors: JSON under /api/v1 (never an HTML page, never a 500 for bad input), pages elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..services.attempts import ServiceError, StaleSave

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str, fields: dict | None = None):
    if wants_json():
        return jsonify({"error": message, **(fields or {})}), status
    return render_template("error.html", status=status, message=message), status


def init_errors(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(e: ServiceError):
        return error_response(e.status, e.message, e.fields() if isinstance(e, StaleSave) else None)

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError):
        return error_response(400, f"the form has expired or was not sent by this site ({e.description}); "
                                   "reload the page and try again")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        messages = {413: "the request is too large", 405: "method not allowed here", 404: "not found"}
        body, status = error_response(e.code or 500, messages.get(e.code, e.description or e.name))
        headers = {k: v for k, v in e.get_headers() if k.lower() == "allow"}  # a 405 names the methods
        return body, status, headers

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, InternalServerError.description)
