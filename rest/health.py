"""GET /healthz (liveness), GET /readyz (readiness) and GET /metrics (Prometheus)."""
from flask import Blueprint, Response, abort, current_app, jsonify

import schema
from rest.errors import ApiError
from rest.responses import no_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. Touches nothing else."""
    return no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers, holds the schema and (Galera) is Synced and Primary; else 503."""
    if not schema.loaded():  # DatabaseUnavailable -> 503 + Retry-After
        raise ApiError(
            503, "The database schema is not loaded: run `flask --app app init-db`.",
            headers={"Retry-After": str(current_app.config["DB_RETRY_AFTER"])},
        )
    # Galera: a node that is joining, donating or outside the primary component answers
    # queries it must not (stale or refused); not ready until it is Synced and Primary.
    reason = schema.node_not_ready()
    if reason is not None:
        raise ApiError(503, f"Not ready: {reason}.",
                       headers={"Retry-After": str(current_app.config["DB_RETRY_AFTER"])})
    return no_store(jsonify(status="ready"))


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text exposition; 404 unless METRICS_ENABLED=true."""
    if not current_app.config["METRICS_ENABLED"]:
        abort(404)
    from rest import metrics  # imported only when metrics are on: see rest/metrics.py

    body, content_type = metrics.exposition()
    return no_store(Response(body, content_type=content_type))
