"""Servers the reliability tests start themselves: a private MariaDB and gunicorn.

Each test stops exactly what it started, by PID (terminate, then kill), and
talks to loopback addresses only.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import db

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
SECRET = "reliability-secret-" + "x" * 40


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_process(process, timeout=10):
    """SIGTERM, then SIGKILL after `timeout`; a process that already exited is left alone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class PrivateMariaDB:
    """A mariadbd of our own: its own data directory, port and socket, root without password."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.datadir = self.directory / "data"
        self.port = free_port()
        self.process = None

    def install(self):
        """Create the system tables (mariadb-install-db); about 2 s."""
        args = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            args.append("--user=root")
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def start(self, timeout=30):
        """Start mariadbd on the data directory and port; wait until it takes connections."""
        args = ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
                f"--socket={self.directory / 'mariadb.sock'}", f"--bind-address={HOST}",
                f"--pid-file={self.directory / 'mariadb.pid'}", "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                "--max-connections=200", f"--log-error={self.directory / 'mariadb.err'}"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.error_log()[-2000:]}")
            try:
                db.server_execute(self.config(), "SELECT 1")
                return
            except db.DatabaseUnavailable:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not accept connections in {timeout} s")

    def kill9(self):
        """SIGKILL: the crash the service must survive."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        stop_process(self.process, timeout=20)

    def error_log(self):
        path = self.directory / "mariadb.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def config(self, database=""):
        """The app's DB_* settings for this server."""
        return {"DB_HOST": HOST, "DB_PORT": self.port, "DB_USER": "root", "DB_PASSWORD": "",
                "DB_NAME": database, "DB_SSL_MODE": "disabled", "DB_CONNECT_TIMEOUT": 1,
                "DB_READ_TIMEOUT": 3, "DB_WRITE_TIMEOUT": 3}


class Gunicorn:
    """The service under gunicorn on a free port, with `env` on top of a safe test environment.

    `app_spec` replaces gunicorn.conf.py's "app:create_app()", e.g. to pass
    config that has no environment variable: "app:create_app({'KEY': 'v'})".
    """

    def __init__(self, directory, env, workers=2, app_spec=None):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        # Nothing from the developer's shell or .env: only what is set here.
        documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                      if line and not line.startswith("#") and "=" in line}
        base = {k: v for k, v in os.environ.items()
                if k not in documented and not k.startswith(("DB_", "GUNICORN_", "RATELIMIT_", "JWT_"))}
        base.update({"PYTHON_DOTENV_DISABLED": "1",
                     "APP_ENV": "test", "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": "false",
                     "GUNICORN_BIND": f"{HOST}:{self.port}", "GUNICORN_WORKERS": str(workers),
                     "PYTHONUNBUFFERED": "1"})
        base.update({k: str(v) for k, v in env.items()})
        self.log_path = Path(directory) / f"gunicorn-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py",
                 *([app_spec] if app_spec else [])],
                cwd=ROOT, env=base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer: {self.log()[-3000:]}")

    def worker_pids(self):
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        workers = self.worker_pids()
        stop_process(self.process)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def call(method, url, token=None, body=None, timeout=20):
    """One HTTP request: (status, headers, JSON body or None, seconds). Never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    elapsed = time.monotonic() - began
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, dict(headers), parsed, elapsed
