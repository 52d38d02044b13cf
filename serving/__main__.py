"""`python -m serving`: the service under granian, as `make run`, the Dockerfile and compose start it.

Settings come from config.py like every other (SERVER_*, .env). The app is
built once here, before any worker starts, so an unsafe or malformed setting
stops the start with one line; then granian forks SERVER_WORKERS workers that
serve it (serving/worker.py).

Signals (granian's): TERM or INT stop gracefully (workers finish what they
hold, up to 10 s); HUP starts new workers and retires the old ones,
which is how a key rotation takes effect (docs/operations.md).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile

import config
from serving import worker

log = logging.getLogger("jwt_api.server")

GRACEFUL_SECONDS = 10  # a stopping worker's time to finish its requests, then it is killed

# Every line granian and the service write is one JSON object (rest/middleware.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "rest.middleware.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "loggers": {
        "_granian": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "granian.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "jwt_api.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def main(argv: list[str]) -> None:
    """Serve the service, or with an argument MODULE:NAME another WSGI app the same way (bench/)."""
    import logging.config

    logging.config.dictConfig(LOGGING)
    try:
        application = _other_app(argv[0]) if argv else _checked_app()
        settings = config.from_env() if argv else application.config
        address = config.bind_address(settings["SERVER_BIND"])
        if isinstance(address, tuple):
            config.refuse_busy_address(*address)
    except config.ConfigError as exc:
        sys.exit(f"error: {exc}")
    _empty_metrics_folder(settings["PROMETHEUS_MULTIPROC_DIR"])
    worker.preloaded = application  # forked workers serve this one (serving/worker.py)
    worker.ours = not argv
    server = _server(settings, address)
    if not argv:
        _say_where(settings, address)
    with _hash_slots(settings, ours=not argv):
        server.serve()


@contextlib.contextmanager
def _hash_slots(settings: dict, ours: bool):
    """One password hash per core at a time across the workers (accounts/hash_slots.py), for the serve."""
    processes, threads = config.worker_plan(settings)
    cores = len(os.sched_getaffinity(0))
    if not ours or threads > 1 or processes <= cores:  # nothing to limit (threads share one process's locks)
        yield
        return
    from accounts import hash_slots, passwords

    directory = tempfile.mkdtemp(prefix="jwt-api-hash-slots-")
    try:
        passwords.share_cores(hash_slots.HashSlots(directory, cores))
        log.info("password hashing: at most %d at once across %d workers (one per core)", cores, processes)
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _other_app(spec: str):
    """The WSGI app named MODULE:NAME (the bench's bare Flask baseline, served like the service)."""
    import importlib

    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name or "app")
    except (ImportError, AttributeError) as exc:
        raise config.ConfigError(f"cannot load the WSGI app {spec!r}: {exc}") from None


def _checked_app():
    """The app, built once to check every setting and key file before a worker starts."""
    import app

    _one_secret_for_every_worker()
    return app.create_app()


def _one_secret_for_every_worker() -> None:
    """Outside production an unset SECRET_KEY means a random one: the same in every worker."""
    if config.share_a_development_secret():
        log.warning("SECRET_KEY is not set: using a random key; tokens die with this server")


def _server(settings: dict, address):
    """granian's server for these settings (README, "Running in production")."""
    from granian.constants import HTTPModes, Interfaces, Loops, TaskImpl
    from granian.http import HTTP1Settings

    from serving.listener import KeptListenersServer

    workers, _ = config.worker_plan(settings)
    where = ({"uds": address} if isinstance(address, str)
             else {"address": address[0], "port": address[1]})
    return KeptListenersServer(
        "serving.worker:build", factory=True, interface=Interfaces.RSGI,
        # uvloop and granian's Rust tasks: 18 % less worker CPU per GET /rest-auth
        # than asyncio's loop and tasks (docs/performance.md, "Choosing the server").
        loop=Loops.uvloop, task_impl=TaskImpl(settings["SERVER_TASKS"]),
        http=HTTPModes.http1, websockets=False, workers=workers,
        # hyper reads headers under this deadline; serving/bridge.py reads the body under its own.
        http1_settings=HTTP1Settings(header_read_timeout=settings["SERVER_HEADER_TIMEOUT"] * 1000),
        backlog=2048, defer_seconds=settings["SERVER_HEADER_TIMEOUT"],
        respawn_failed_workers=True, respawn_interval=1.0,
        workers_lifetime=settings["SERVER_WORKER_LIFETIME"] or None,
        workers_max_rss=settings["SERVER_WORKER_MAX_RSS"] or None,
        rss_sample_interval=5,  # granian's default, 30 s, lets a leak run long
        workers_kill_timeout=GRACEFUL_SECONDS,
        log_dictconfig=LOGGING, log_access=False,  # the app logs each request itself
        **where,
    )


def _empty_metrics_folder(folder: str) -> None:
    """An earlier run's metric files would be summed into this one's /metrics."""
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def _say_where(settings: dict, address) -> None:
    """Where the service answers (make run's last words), and the demo logins in development."""
    if isinstance(address, tuple):
        host, port = address
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        log.info("serving %s/  (API docs: %s/docs)", base, base)
    else:
        log.info("serving on the unix socket %s", address)
    if settings["APP_ENV"] == "development":
        log.info("demo logins (sql/seed.sql, development only): roy / roy, "
                 "alice / alice-demo-password, admin / admin-demo-password")


if __name__ == "__main__":
    main(sys.argv[1:])
