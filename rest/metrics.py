"""Prometheus metrics (prometheus_client), served at /metrics when METRICS_ENABLED=true.

The metric objects are process-wide singletons. Each server worker counts
for itself; set PROMETHEUS_MULTIPROC_DIR (an empty, writable folder) and
/metrics sums every worker's files (`python -m serving` clears the folder at
start; each new worker drops the live gauges of dead ones).

prometheus_client switches to multi-process mode when that variable merely
EXISTS, even empty, and then writes its files into the working directory.
config.metrics_folder() removes an empty one from the environment, and this module
is imported only when metrics are on (rest/middleware.py, rest/health.py), so
it never sees the variable before the settings were read.
"""
import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
    generate_latest, multiprocess,
)

import config

# prometheus_client opens its files there as soon as a gauge exists (below),
# which may be before the server's start clears it.
MULTIPROC_DIR = config.metrics_folder()
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

# The endpoint label is the URL rule ("/users/<id:uid>/posts"), never the raw
# path: a label per id would grow without bound.
REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered, by method, endpoint and status.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer a request, by method, endpoint and status.",
    ["method", "endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGIN_FAILURES = Counter(
    "auth_login_failures_total", "Log-in attempts refused with 'Invalid credentials'.",
)
RATE_LIMITED = Counter(
    "http_rate_limited_total", "Requests refused with 429 Too Many Requests, by endpoint.",
    ["endpoint"],
)
# livesum: in multiprocess mode the value is the sum over live workers.
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use", "Database connections lent out by this worker's pool.",
    multiprocess_mode="livesum",
)
POOL_IDLE = Gauge(
    "db_pool_connections_idle", "Idle database connections kept by this worker's pool.",
    multiprocess_mode="livesum",
)


def observe(method, endpoint, status, seconds):
    """Count one answered request and its latency."""
    status = str(status)
    REQUESTS.labels(method, endpoint, status).inc()
    LATENCY.labels(method, endpoint, status).observe(seconds)
    if status == "429":
        RATE_LIMITED.labels(endpoint).inc()


def set_pool(in_use, idle):
    """Record this worker's pool use."""
    POOL_IN_USE.set(in_use)
    POOL_IDLE.set(idle)


def exposition():
    """Return (body, content type) of the text exposition, all workers merged."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_dead_workers():
    """Drop the live gauges of workers that no longer run (called as each worker starts).

    granian has no hook in the master when a worker dies; the next worker to
    start sweeps instead. The files' names end in _<pid>.db.
    """
    if not MULTIPROC_DIR:
        return
    pids = {int(m.group(1)) for m in map(_PID_IN_NAME.search, os.listdir(MULTIPROC_DIR)) if m}
    for pid in pids - {os.getpid()}:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


_PID_IN_NAME = re.compile(r"_(\d+)\.db$")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
