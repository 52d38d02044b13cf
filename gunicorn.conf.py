"""gunicorn settings, read through config.py like every other setting (GUNICORN_*, .env)."""
import os
import sys

# Not `import config`: gunicorn reads every name here as a setting, and
# `config` is one of its own (the path of this file).
import config as _config

try:
    _settings = _config.from_env()  # loads .env (never overriding the real environment)
except _config.ConfigError as exc:
    sys.exit(f"error: {exc}")

wsgi_app = "app:create_app()"
bind = _settings["GUNICORN_BIND"]
workers = _settings["GUNICORN_WORKERS"]
worker_class = "sync"
# A request may wait on the database for at most DB_READ_TIMEOUT; a worker
# stuck longer than this is killed and replaced.
timeout = _settings["GUNICORN_TIMEOUT"]
graceful_timeout = 10
keepalive = 5
# Loading the app before forking shares memory, and an unsafe config stops the
# master with a one-line "Error: ..." before any worker starts.
preload_app = True
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"

_METRICS_DIR = _settings["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """Empty PROMETHEUS_MULTIPROC_DIR: an earlier run's worker files would be summed in."""
    if _METRICS_DIR:
        os.makedirs(_METRICS_DIR, exist_ok=True)
        for name in os.listdir(_METRICS_DIR):
            if name.endswith(".db"):
                os.remove(os.path.join(_METRICS_DIR, name))


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the merged /metrics."""
    if _METRICS_DIR:
        from rest import metrics

        metrics.mark_process_dead(worker.pid)
