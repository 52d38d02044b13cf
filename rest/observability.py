"""Watching the service: request ids, one JSON log line per request, health, readiness, metrics.

RequestLog runs on every request, so it does little: a regex match, two clock
reads, one dict dumped as JSON. The log line names the URL path only (never the
query string, which may carry ?token=), the status, the duration, the caller's
user id when known and the request id; never a token, password or hash.
"""
import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request

import db
from rest import metrics
from rest.errors import ApiError
from rest.hardening import no_store

bp = Blueprint("observability", __name__)
access_log = logging.getLogger("jwt_api.access")

# Letters, digits and . _ : - only: safe to echo in a header and a log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "<unmatched>"
STARTED_KEY = "jwt_api.started"


# One encoder, reused: json.dumps() with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def json_line(created, level, logger, message, fields):
    """The text of one log line: ts, level, logger, msg, then `fields`."""
    line = {
        "ts": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "msg": message,
    }
    line.update(fields)
    return _encode(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and the record's `fields`."""

    def format(self, record):
        fields = dict(getattr(record, "fields", {}))
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname.lower(), record.name,
                         record.getMessage(), fields)


# The handler _setup_access_log() installs; while it is the logger's only
# handler, lines are written to it directly (see _log_request).
_default_handler = None


def _setup_access_log():
    # Once per process: create_app() may run many times (tests) on one logger.
    global _default_handler
    if access_log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    _default_handler = handler


REQUEST_ID_KEY = "jwt_api.request_id"  # in the WSGI environ
USER_ID_KEY = "jwt_api.user_id"        # set by auth.token_required


class RequestLog:
    """WSGI middleware: a request id and one access-log line for every request.

    It runs around Flask rather than as before/after_request hooks because it
    then costs a function call, not a Flask hook dispatch, and it also sees
    the answers Flask's own error handling builds. The id is the client's
    X-Request-ID when it is safe to echo, else a new one; it goes back in the
    response's X-Request-ID and into the log line.
    """

    def __init__(self, wsgi_app, log_requests):
        self.wsgi_app = wsgi_app
        self.log_requests = log_requests

    def __call__(self, environ, start_response):
        started = environ[STARTED_KEY] = time.perf_counter()  # /metrics durations too
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if incoming and REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        environ[REQUEST_ID_KEY] = request_id

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-ID", request_id))
            if self.log_requests:
                _log_request(environ, int(status[:3]), time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _path(environ):
    # What request.path gives: PEP 3333 hands PATH_INFO over as latin-1.
    raw = environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "replace")
    return "/" + raw.lstrip("/")


def _log_request(environ, status, seconds):
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": environ.get("REQUEST_METHOD"),
        "path": _path(environ),  # never the query: it may hold a token
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "user_id": environ.get(USER_ID_KEY),
        "request_id": environ.get(REQUEST_ID_KEY),
    }
    handler = _default_handler
    if access_log.handlers == [handler] and not access_log.filters and not handler.filters:
        # Only our own handler: write its line straight to its stream. A
        # LogRecord, the handler chain and the formatter cost 8 % of a worker's
        # CPU on GET /rest-auth (bench/profile.py); the line is the same.
        line = json_line(time.time(), "info", access_log.name, "request", fields)
        with handler.lock:
            handler.stream.write(line + "\n")
        return
    # Other handlers are attached (an operator's, a test's): the logging way,
    # minus the stack walk that would look up this function's file and line.
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "request", None, None,
                                   extra={"fields": fields})
    access_log.handle(record)


def request_id():
    """The current request's id (for log lines about it)."""
    return request.environ.get(REQUEST_ID_KEY, "-")


def _observe(response):
    """Count the request in the Prometheus metrics (after_request, only when METRICS_ENABLED)."""
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    seconds = time.perf_counter() - request.environ.get(STARTED_KEY, time.perf_counter())
    metrics.observe(request.method, rule, response.status_code, seconds)
    metrics.set_pool(*db.pool_stats())
    return response


def login_failed():
    """Count a refused log-in (called where 'Invalid credentials' is raised)."""
    if current_app.config["METRICS_ENABLED"]:
        metrics.LOGIN_FAILURES.inc()


# --- health, readiness, metrics ----------------------------------------------

_SCHEMA = Path(__file__).resolve().parent.parent / "sql" / "schema.sql"
# The tables sql/schema.sql creates: readiness needs every one of them.
TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS `?(\w+)`?", _SCHEMA.read_text(), re.I))
COUNT_TABLES = (
    "SELECT COUNT(*) AS n FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name IN (" + ", ".join(["%s"] * len(TABLES)) + ")"
)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. Touches nothing else."""
    return no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers, holds the schema and (Galera) is Synced and Primary; else 503."""
    row = db.one(COUNT_TABLES, TABLES)  # DatabaseUnavailable -> 503 + Retry-After
    if row["n"] != len(TABLES):
        raise ApiError(
            503, "The database schema is not loaded: run `flask --app app init-db`.",
            headers={"Retry-After": str(current_app.config["DB_RETRY_AFTER"])},
        )
    # Galera: a node that is joining, donating or outside the primary component answers
    # queries it must not (stale or refused); not ready until it is Synced and Primary.
    reason = db.node_not_ready()
    if reason is not None:
        raise ApiError(503, f"Not ready: {reason}.",
                       headers={"Retry-After": str(current_app.config["DB_RETRY_AFTER"])})
    return no_store(jsonify(status="ready"))


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text exposition; 404 unless METRICS_ENABLED=true."""
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    body, content_type = metrics.exposition()
    return no_store(Response(body, content_type=content_type))


def init_app(app):
    """Wrap the app in RequestLog; count requests in /metrics when METRICS_ENABLED."""
    _setup_access_log()
    app.wsgi_app = RequestLog(app.wsgi_app, app.config["ACCESS_LOG"])
    if app.config["METRICS_ENABLED"]:
        app.after_request(_observe)
