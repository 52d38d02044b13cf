"""One JSON error contract for every error the service can answer.

Shape (Flask-JWT's, kept for its clients): {"status_code", "error",
"description"}, plus "field" when one input field is to blame. Views raise
`ApiError` (or call flask.abort), and the domain raises accounts.errors
exceptions, which this module alone maps to statuses; nothing builds an error
response by hand.
"""
import logging
import math

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

import db
from accounts import errors as domain
from rest.middleware import error_log, request_id

log = logging.getLogger(__name__)

# Domain refusal -> status. Throttled and TokenError need headers: see below.
STATUS = {
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.RuleBroken: 422,
    domain.Forbidden: 403,
    domain.PreconditionFailed: 412,
}
REALM = 'realm="Login Required"'


class ApiError(Exception):
    """An error answered to the client as JSON with `status`."""

    def __init__(self, status, description, error=None, field=None, headers=None, extra=None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.error = error or HTTP_STATUS_CODES.get(status, "Error")
        self.field = field
        self.headers = headers or {}
        # More keys after the contract's own (the second-factor login's mfa_token, methods).
        self.extra = extra or {}


def too_many_requests(retry_after: float) -> ApiError:
    """The 429 every throttle answers; Retry-After is at least one second."""
    seconds = max(1, math.ceil(retry_after))
    return ApiError(429, domain.Throttled.MESSAGE, headers={"Retry-After": str(seconds)})


def invalid_token(description: str, error: str = "Invalid token") -> ApiError:
    """The 401 for a token that was presented but is not accepted (RFC 6750 invalid_token)."""
    return ApiError(401, description, error=error,
                    headers={"WWW-Authenticate": f'Bearer {REALM}, error="invalid_token"'})


def from_domain(exc: domain.DomainError) -> ApiError:
    """The ApiError that answers a domain refusal."""
    if isinstance(exc, domain.Throttled):
        return too_many_requests(exc.retry_after)
    if isinstance(exc, domain.TokenError):
        return invalid_token(exc.message)
    status = next(code for kind, code in STATUS.items() if isinstance(exc, kind))
    return ApiError(status, exc.message, field=exc.field)


def error_response(status, error, description, field=None, headers=None, extra=None):
    """Build the JSON error response; the only place that does."""
    body = {"status_code": status, "error": error, "description": description}
    if field is not None:
        body["field"] = field
    body.update(extra or {})
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(exc):
    return error_response(exc.status, exc.error, exc.description, exc.field, exc.headers, exc.extra)


def _domain_error(exc):
    return _api_error(from_domain(exc))


def _http_error(exc):
    # Keep headers Werkzeug sets for a reason (Allow on 405, Retry-After on 429...).
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code, exc.name, exc.description, headers=headers)


def _database_unavailable(exc):
    log.warning("database unavailable: %s", exc)
    retry = str(current_app.config["DB_RETRY_AFTER"])
    # Each kind of DatabaseUnavailable says what the client should know (db.WriteConflict, db.OutcomeUnknown).
    return error_response(503, "Service Unavailable", exc.client_message, headers={"Retry-After": retry})


def _unexpected(exc):
    # One JSON line with the request id and the traceback as a string field
    # ("exc"); the client gets no trace, no SQL, no detail, and the same id
    # in its X-Request-ID header to quote.
    rid = request_id()
    error_log.error("unhandled error (request_id=%s)", rid, exc_info=exc, extra={"fields": {
        "request_id": rid, "method": request.method, "path": request.path}})
    return error_response(500, HTTP_STATUS_CODES[500], "An unexpected error occurred.")


def init_app(app):
    """Register the handlers that turn every error into the JSON shape."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(domain.DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(db.DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
