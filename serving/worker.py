"""What each granian worker runs: the app, wrapped in the bridge, with its per-process duties.

granian calls `serving.worker:build` in every worker it (re)spawns. Workers
are forked from the master, which built and checked the app before the first
one (serving/__main__.py): they share that app's memory, and each reads the
key files again, so a HUP after `flask keys rotate` signs with the new key.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import config
from serving.bridge import Clock, Limits, WsgiBridge

log = logging.getLogger("jwt_api.server")


# The master's app, set before the first fork (serving/__main__.py), and
# whether it is the service (False: another WSGI app, e.g. bench/'s baseline).
preloaded = None
ours = True


def build() -> WsgiBridge:
    """The RSGI app of this worker (granian's --factory target)."""
    import app  # here, not at import: the master imports this module too

    if not ours:
        return WsgiBridge(preloaded, Limits(max_body=64 * 1024, body_timeout=10))
    if preloaded is None:  # a spawned, not forked, worker: nothing to share
        application = app.create_app()
    else:
        application = preloaded
        app.reload_keys(application)
    settings = application.config
    _, threads = config.worker_plan(settings)
    bridge = WsgiBridge(application, Limits(max_body=settings["MAX_CONTENT_LENGTH"],
                                            body_timeout=settings["SERVER_BODY_TIMEOUT"]),
                        threads=threads)
    if settings["METRICS_ENABLED"]:
        from rest import metrics

        metrics.forget_dead_workers()
    from accounts import mail_sender

    mail_sender.start_in(application)
    Watchdog(bridge.clock, settings["SERVER_TIMEOUT"]).start()
    return bridge


class Watchdog(threading.Thread):
    """Ends this worker when one request has run longer than SERVER_TIMEOUT.

    The database calls have their own timeouts (DB_READ_TIMEOUT), so this is
    the last resort for code stuck elsewhere, as gunicorn's worker timeout
    was: the worker exits, granian starts a new one, and an open transaction
    dies with the connection, so nothing half-written is committed.
    """

    def __init__(self, clock: Clock, timeout: float):
        super().__init__(name="watchdog", daemon=True)
        self.clock = clock
        self.timeout = timeout

    def run(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            started = self.clock.oldest()
            if started is not None and time.monotonic() - started > self.timeout:
                log.error("a request ran longer than SERVER_TIMEOUT=%ss; restarting worker %s",
                          self.timeout, os.getpid())
                logging.shutdown()
                os._exit(1)
