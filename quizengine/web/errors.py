"""Errors: JSON under /api/v1 (never an HTML page, never a 500 for bad input), pages elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from ..services.errors import ServiceError, StaleSave

log = logging.getLogger(__name__)

BUSY_RETRY_S = 2  # Retry-After of a 503 when the database stayed busy past its timeout
# PostgreSQL's SQLSTATEs of a transient overload: lock_not_available, query_canceled (a statement or
# lock timeout), serialization_failure, deadlock_detected, too_many_connections.
BUSY_SQLSTATES = {"55P03", "57014", "40001", "40P01", "53300"}


def database_busy(e: Exception) -> bool:
    """The database stayed locked or busy past its timeout (overload), as opposed to broken."""
    if isinstance(e, PoolTimeout):  # every pooled connection stayed in use
        return True
    orig = getattr(e, "orig", None)
    if getattr(orig, "sqlstate", None) in BUSY_SQLSTATES:
        return True
    text = str(orig).lower()
    return type(orig).__module__ == "sqlite3" and ("database is locked" in text or "database is busy" in text)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json or request.accept_mimetypes.best == "application/json"


def error_response(status: int, message: str, fields: dict | None = None):
    if wants_json():
        return jsonify({"error": message, **(fields or {})}), status
    return render_template("error.html", status=status, message=message), status


class TextSafeResponse(Response):
    """A response whose text body never fails to encode: a lone surrogate becomes "?", not a 500."""

    def set_data(self, value: bytes | str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8", "replace")
        super().set_data(value)


def init_errors(app: Flask) -> None:
    app.response_class = TextSafeResponse

    @app.url_value_preprocessor
    def no_nul_in_paths(endpoint: str | None, values: dict | None) -> None:
        """No id holds a NUL character, and PostgreSQL refuses to compare text with one: 404 here."""
        if values and any("\x00" in v for v in values.values() if isinstance(v, str)):
            raise ServiceError(404, "not found")

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

    # Bad input that got past the checks must still be a clear 4xx, never a 500 (issue 9).
    @app.errorhandler(OverflowError)
    def overflow(e: OverflowError):
        log.warning("overflow on %s %s: %s", request.method, request.path, e)
        return error_response(400, "a number in the request is too large (ids and counts are at most "
                                   "2147483647, other numbers at most 1.8e308)")

    @app.errorhandler(RecursionError)
    def recursion(e: RecursionError):
        log.warning("recursion limit on %s %s", request.method, request.path)
        return error_response(400, "the request is nested too deeply to read")

    @app.errorhandler(DataError)
    def data_error(e: DataError):
        log.warning("database refused a value on %s %s: %s", request.method, request.path, e.orig)
        return error_response(400, "the database refused a value of the request (too long, out of range or "
                                   "not valid text, such as a NUL character): check the fields and try again")

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_error(e: Exception):
        """Overload (SQLite's write lock, a pool, a PostgreSQL lock held past the timeout): 503, try again."""
        if not database_busy(e):
            return unexpected(e)
        log.warning("database busy on %s %s: %s", request.method, request.path, getattr(e, "orig", e))
        message = f"the server is busy (the database stayed locked): try again in {BUSY_RETRY_S} s"
        if wants_json():
            body = jsonify({"error": message, "retry_after": BUSY_RETRY_S})
        else:
            body = render_template("error.html", status=503, message=message)
        return body, 503, {"Retry-After": str(BUSY_RETRY_S)}

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, InternalServerError.description)
