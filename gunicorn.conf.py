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
# Rate-limit counts kept in memory are per process: without a shared storage
# the workers run as threads of one process, so the documented limits hold
# (docs/security.md, "Where the counts live").
workers, threads = _config.worker_plan(_settings)
worker_class = "gthread" if threads > 1 else "sync"
# A request may wait on the database for at most DB_READ_TIMEOUT; a worker
# stuck longer than this is killed and replaced.
timeout = _settings["GUNICORN_TIMEOUT"]
graceful_timeout = 10
keepalive = 5
# Loading the app before forking shares memory, and an unsafe config stops the
# master with a one-line "Error: ..." before any worker starts.
preload_app = True
accesslog = None  # the app logs one JSON line per request itself
# No gunicornc control socket: signals (HUP, TERM) are the interface, and its
# default path under $HOME does not exist in the image (HOME=/nonexistent).
control_socket_disable = True
errorlog = "-"

_METRICS_DIR = _settings["PROMETHEUS_MULTIPROC_DIR"]


def _refuse_a_busy_address(server):
    """Exit with one line naming GUNICORN_BIND when another process listens on its address."""
    for address in server.cfg.address:
        if isinstance(address, tuple):  # not a unix socket path
            try:
                _config.refuse_busy_address(address[0], address[1])
            except _config.ConfigError as exc:
                sys.exit(f"error: {exc}")


def on_starting(server):
    """Refuse a busy address; empty PROMETHEUS_MULTIPROC_DIR (an earlier run's files would be summed in)."""
    _refuse_a_busy_address(server)
    if _METRICS_DIR:
        os.makedirs(_METRICS_DIR, exist_ok=True)
        for name in os.listdir(_METRICS_DIR):
            if name.endswith(".db"):
                os.remove(os.path.join(_METRICS_DIR, name))


def post_fork(server, worker):
    """Each new worker reads the key files again, so `flask keys rotate` + `kill -HUP` signs with the new key."""
    import app

    app.reload_keys(server.app.wsgi())


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the merged /metrics."""
    if _METRICS_DIR:
        from rest import metrics

        metrics.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start the worker's mail sender at once, not at its first request (queued mail after a restart)."""
    from accounts import mail_sender

    mail_sender.start_in(worker.wsgi)


def when_ready(server):
    """Say where the service answers (make run's last words), and the demo logins in development."""
    application = server.app.wsgi()  # preloaded: the app the workers run
    for host, port in (a for a in server.cfg.address if isinstance(a, tuple)):
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        server.log.info("serving %s/  (API docs: %s/docs)", base, base)
    if application.config["APP_ENV"] == "development":
        server.log.info("demo logins (sql/seed.sql, development only): roy / roy, "
                        "alice / alice-demo-password, admin / admin-demo-password")
