"""gunicorn settings. Every value can be overridden on the command line or by GUNICORN_*."""
import os

from dotenv import load_dotenv

# The same .env the app reads (never overriding the real environment).
load_dotenv(override=False)

wsgi_app = "app:create_app()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "sync"
# A request may wait on the database for at most DB_READ_TIMEOUT; a worker
# stuck longer than this is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# Loading the app before forking shares memory, and an unsafe config stops the
# master with a one-line "Error: ..." before any worker starts.
preload_app = True
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"



def on_starting(server):
    """Empty PROMETHEUS_MULTIPROC_DIR: an earlier run's worker files would be summed in."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the merged /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from rest import metrics

        metrics.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Start the worker's mail sender at once, not at its first request (queued mail after a restart)."""
    from accounts import mail_sender

    mail_sender.start_in(worker.wsgi)
