"""One JSON error contract for every error the service can answer.

Shape (Flask-JWT's, kept for its clients): {"status_code", "error",
"description"}, plus "field" when one input field is to blame. Views raise
`ApiError` (or call flask.abort); they never build error responses by hand.
"""
import logging

from flask import current_app, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

import db

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client as JSON with `status`."""

    def __init__(self, status, description, error=None, field=None, headers=None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.error = error or HTTP_STATUS_CODES.get(status, "Error")
        self.field = field
        self.headers = headers or {}


def error_response(status, error, description, field=None, headers=None):
    """Build the JSON error response; the only place that does."""
    body = {"status_code": status, "error": error, "description": description}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(exc):
    return error_response(exc.status, exc.error, exc.description, exc.field, exc.headers)


def _http_error(exc):
    # Keep headers Werkzeug sets for a reason (Allow on 405, Retry-After on 429...).
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return error_response(exc.code, exc.name, exc.description, headers=headers)


def _database_unavailable(exc):
    log.warning("database unavailable: %s", exc)
    retry = str(current_app.config["DB_RETRY_AFTER"])
    message = _UNAVAILABLE_MESSAGES.get(type(exc), _UNAVAILABLE_MESSAGES[None])
    return error_response(503, "Service Unavailable", message, headers={"Retry-After": retry})


# What a client should know about each way the database can fail to take a request.
_UNAVAILABLE_MESSAGES = {
    None: "The database is unavailable. Retry shortly.",
    db.WriteConflict: "The write met concurrent writes to the same rows and was retried without success; "
                      "nothing was changed. Retry shortly.",
    db.OutcomeUnknown: "The database connection was lost while the write was being applied; it may or may "
                       "not have been saved. Check before retrying.",
}


def _unexpected(exc):
    # Logged with the request id; the client gets no trace, no SQL, no detail.
    from rest.observability import request_id  # (observability imports this module)

    log.exception("unhandled error (request_id=%s)", request_id())
    return error_response(500, HTTP_STATUS_CODES[500], "An unexpected error occurred.")


def init_app(app):
    """Register the handlers that turn every error into the JSON shape."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(db.DatabaseUnavailable, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
