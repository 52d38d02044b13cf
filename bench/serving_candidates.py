"""The servers issue 17 compares, each able to serve bench/hello.py or the service: how each starts and stops.

bench/serving_choice.py measures them. Every process is started through
bench/procs.py (stopped by PID, atexit included); every server listens on
127.0.0.1 in PORTS. gunicorn's gevent worker runs from a venv of its own
(VENV, built from bench/serving_choice_requirements.txt): gevent is no
dependency of the service. nginx is Debian's package; nothing here installs it.
"""
from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import procs

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PORTS = range(57300, 57400)
WORKERS = 4
VENV = BENCH_DIR / ".venvs" / "serving-choice"
REQUIREMENTS = BENCH_DIR / "serving_choice_requirements.txt"

# The same app under every server's own syntax: "hello" is bench/hello.py, "service" ours.
GUNICORN_APP = {"hello": ["bench.hello:app"], "service": ["app:create_app()"]}
GRANIAN_APP = {"hello": ["bench.hello:app"], "service": ["--factory", "app:create_app"]}
OURS_APP = {"hello": ["bench.hello:app"], "service": []}  # no argument: the service itself


class Ports:
    """Hands out ports of PORTS that nobody listens on, each once per run."""

    def __init__(self):
        self._next = iter(PORTS)

    def take(self) -> int:
        for port in self._next:
            with socket.socket() as sock:
                try:
                    sock.bind((procs.HOST, port))
                except OSError:
                    continue  # someone else's
                return port
        raise RuntimeError(f"no free port left in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Server:
    """One candidate serving one app: the URL clients use and every process behind it."""

    name: str
    url: str
    port: int
    processes: list
    log_path: Path

    def ready(self, path: str, timeout: float = 60.0) -> None:
        """Wait until `path` answers 200 (a proxy's 502 is not ready); raise RuntimeError with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.processes if p.poll() is not None]
            if dead:
                self._fail(f"pid {dead[0].pid} exited with {dead[0].returncode}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self._fail(f"{self.url}{path} did not answer 200 within {timeout:.0f} s")

    def _fail(self, why: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise RuntimeError(f"{self.name}: {why}\n{tail}")

    def stop(self) -> None:
        """The front first (nginx), then what it proxies to; workers left behind are killed by PID."""
        for process in self.processes:
            procs.stop(process)


@dataclass(frozen=True)
class Candidate:
    key: str          # names it in the JSON
    label: str        # names it in the table and the docs
    command: str      # how it is started, as a reader would type it (for the report)
    launch: Callable  # (app, port, ports, env, work) -> list of Popen, the public one first


def candidates() -> list[Candidate]:
    """Every candidate, the old shipped setup first: ratios are to it."""
    return [
        Candidate("gunicorn_sync_4", "gunicorn sync ×4 (old shipped)",
                  "gunicorn --workers 4 --preload --timeout 30", _gunicorn("sync")),
        Candidate("granian_wsgi_2", "granian --interface wsgi ×2",
                  "granian --interface wsgi --workers 2", _granian(2)),
        Candidate("granian_wsgi_4", "granian --interface wsgi ×4",
                  "granian --interface wsgi --workers 4", _granian(4)),
        Candidate("gunicorn_gevent_4", "gunicorn -k gevent ×4",
                  "gunicorn -k gevent --workers 4 --preload (bench/.venvs/serving-choice)",
                  _gunicorn("gevent")),
        Candidate("nginx_gunicorn_sync_4", "nginx (buffering) → gunicorn sync ×4",
                  "nginx proxy_request_buffering on, 10 s header/body timeouts, 64k bodies "
                  "-> gunicorn --workers 4", _nginx_in_front),
        Candidate("ours_4", "ours: python -m serving ×4",
                  "SERVER_WORKERS=4 python -m serving", _ours(4)),
        Candidate("ours_2", "ours: python -m serving ×2",
                  "SERVER_WORKERS=2 python -m serving", _ours(2)),
    ]


def start(candidate: Candidate, app: str, ports: Ports, env: dict, work: Path) -> Server:
    """Start `candidate` serving `app` ("hello" or "service"); call ready() on what comes back."""
    port = ports.take()
    log_path = work / f"{candidate.key}-{app}.log"
    processes = candidate.launch(app, port, ports, env, log_path)
    return Server(candidate.key, f"http://{procs.HOST}:{port}", port, processes, log_path)


# --- the launchers --------------------------------------------------------------------

def _gunicorn(worker_class: str) -> Callable:
    def launch(app, port, ports, env, log_path):
        return [_start_gunicorn(worker_class, app, port, env, log_path)]
    return launch


def _start_gunicorn(worker_class, app, port, env, log_path):
    # The settings of the old gunicorn.conf.py: preload, 30-s worker timeout,
    # 10-s graceful stop, no access log. No control socket: several gunicorns
    # run at once here and would share its default path.
    binary = (VENV if worker_class == "gevent" else procs.VENV_BIN.parent) / "bin" / "gunicorn"
    args = [str(binary), "--worker-class", worker_class, "--workers", str(WORKERS),
            "--bind", f"{procs.HOST}:{port}", "--preload", "--timeout", "30",
            "--graceful-timeout", "10", "--keep-alive", "5", "--no-control-socket",
            *GUNICORN_APP[app]]
    return procs.start(args, env, log_path)


def _granian(workers: int) -> Callable:
    def launch(app, port, ports, env, log_path):
        # granian's defaults otherwise (blocking threads, backpressure, header timeout).
        args = [str(procs.VENV_BIN / "granian"), "--interface", "wsgi", "--workers", str(workers),
                "--host", procs.HOST, "--port", str(port), "--log-level", "warning",
                *GRANIAN_APP[app]]
        return [procs.start(args, env, log_path)]
    return launch


def _ours(workers: int) -> Callable:
    def launch(app, port, ports, env, log_path):
        args = [str(procs.VENV_BIN / "python"), "-m", "serving", *OURS_APP[app]]
        ours_env = dict(env, SERVER_BIND=f"{procs.HOST}:{port}", SERVER_WORKERS=str(workers))
        return [procs.start(args, ours_env, log_path)]
    return launch


def _nginx_in_front(app, port, ports, env, log_path):
    inner = ports.take()
    behind = _start_gunicorn("sync", app, inner, env, log_path.with_suffix(".gunicorn.log"))
    folder = log_path.parent / f"nginx-{port}"
    folder.mkdir()
    folder.chmod(0o755)  # nginx's workers (nobody, when started as root) write temp files here
    conf = folder / "nginx.conf"
    conf.write_text(nginx_config(folder, port, inner))
    args = [nginx_binary() or "nginx", "-p", str(folder), "-e", str(folder / "error.log"),
            "-c", str(conf), "-g", "daemon off;"]
    front = procs.start(args, env, log_path)
    return [front, behind]


# --- nginx ---------------------------------------------------------------------------------

def nginx_binary() -> str | None:
    """Debian's nginx (in /usr/sbin, often not on a user's PATH), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def nginx_config(folder: Path, port: int, upstream_port: int) -> str:
    """A buffering reverse proxy, as gunicorn's docs ask for in front of sync workers.

    nginx reads the whole header block and the whole body (up to 64k; held in
    memory) under 10-s timeouts before it opens a connection to gunicorn, so a
    slow client holds an nginx connection, never a worker.
    """
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return f"""
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    client_header_timeout 10s;
    client_body_timeout 10s;
    client_max_body_size 64k;
    client_body_buffer_size 64k;
    keepalive_timeout 5s;
    upstream app {{ server {procs.HOST}:{upstream_port}; }}
    server {{
        listen {procs.HOST}:{port} backlog=2048;
        location / {{
            proxy_pass http://app;
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


# --- the gevent venv -------------------------------------------------------------------------

def ensure_gevent_venv(log: Callable[[str], None]) -> None:
    """Build VENV from REQUIREMENTS (and requirements.txt) unless it was built from the same files."""
    stamp = VENV / ".requirements-sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()
                            + (ROOT / "requirements.txt").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    log(f"building {VENV.relative_to(ROOT)} (gunicorn + gevent, pinned in {REQUIREMENTS.name})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS)], check=True, timeout=600)
    stamp.write_text(digest)
