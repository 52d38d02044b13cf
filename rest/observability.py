"""Watching the service: request ids, one JSON log line per request, health, readiness, metrics.

The hooks run on every request, so they do little: a regex match, a clock
read, one dict dumped as JSON. The log line names the URL path only (never the
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

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

import db
from rest import metrics
from rest.errors import ApiError
from rest.hardening import no_store

bp = Blueprint("observability", __name__)
access_log = logging.getLogger("jwt_api.access")

# Letters, digits and . _ : - only: safe to echo in a header and a log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "<unmatched>"


# One encoder, reused: json.dumps() with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and the record's `fields`."""

    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _encode(line)


def _setup_access_log():
    # Once per process: create_app() may run many times (tests) on one logger.
    if access_log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def _start():
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _user_id():
    user = g.get("user")
    return getattr(user, "id", None)


def _finish(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    config = current_app.config
    if config["ACCESS_LOG"]:
        access_log.info("request", extra={"fields": {
            "method": request.method,
            "path": request.path,  # never request.full_path: a query may hold a token
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "user_id": _user_id(),
            "request_id": g.get("request_id"),
        }})
    if config["METRICS_ENABLED"]:
        rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
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
    """Readiness: the database answers and holds the schema (one query); else 503."""
    row = db.one(COUNT_TABLES, TABLES)  # DatabaseUnavailable -> 503 + Retry-After
    if row["n"] != len(TABLES):
        raise ApiError(
            503, "The database schema is not loaded: run `flask --app app init-db`.",
            headers={"Retry-After": str(current_app.config["DB_RETRY_AFTER"])},
        )
    return no_store(jsonify(status="ready"))


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text exposition; 404 unless METRICS_ENABLED=true."""
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    body, content_type = metrics.exposition()
    return no_store(Response(body, content_type=content_type))


def init_app(app):
    """Install the per-request hooks (first, so every other hook sees the request id)."""
    _setup_access_log()
    app.before_request(_start)
    app.after_request(_finish)
