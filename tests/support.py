"""Helpers shared by the tests: settings, databases, a live server, JSON errors, an HTTP client.

Tests import these with `from support import ...`; tests/conftest.py holds
only fixtures. tests/conftest.py puts the repository root and tests/ on
sys.path, so this module is importable from every folder under tests/.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import db
from bench.jsonhttp import call, timed_call  # noqa: F401  (one JSON client for tests and bench)

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-" + "x" * 40
# A well-formed Fernet key (32 bytes, base64url) for TOTP secrets: production requires one.
MFA_KEY = "m" * 43 + "="


def server_config(name=None):
    """Connection settings for the test server, optionally with a database."""
    return {
        "DB_HOST": os.environ.get("TEST_DB_HOST", "127.0.0.1"),
        "DB_PORT": int(os.environ.get("TEST_DB_PORT", "3306")),
        "DB_USER": os.environ.get("TEST_DB_USER", "root"),
        "DB_PASSWORD": os.environ.get("TEST_DB_PASSWORD", ""),
        "DB_NAME": name or "",
        "DB_SSL_MODE": "disabled",
        "DB_CONNECT_TIMEOUT": 3, "DB_READ_TIMEOUT": 10, "DB_WRITE_TIMEOUT": 10,
    }


def require_tool(path_or_name, why):
    """Skip locally, but fail under CI=true, when an external tool is missing."""
    found = shutil.which(path_or_name) or (os.path.exists(path_or_name) and path_or_name)
    if found:
        return found
    message = f"{path_or_name} is needed for {why}; `make test` installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_redis(url, why):
    """A client for the Redis at `url`: skipped locally, failed under CI=true, when none answers."""
    import redis
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is needed for {why} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return client


def create_database(prefix="test_jwtapi", seed=False):
    """Create a uniquely named database with the schema (and the demo seed); return its name."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    config = server_config()
    db.server_execute(config, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    config["DB_NAME"] = name
    db.run_script(config, (ROOT / "sql" / "schema.sql").read_text())
    if seed:
        db.run_script(config, (ROOT / "sql" / "seed.sql").read_text())
    return name


def drop_database(name):
    db.server_execute(server_config(), f"DROP DATABASE IF EXISTS `{name}`")


def app_config(database, **overrides):
    config = server_config(database)
    # Throttling off by default so tests are not rate limited; its own tests enable it.
    config.update({"APP_ENV": "test", "TESTING": True, "SECRET_KEY": SECRET,
                   "MFA_ENCRYPTION_KEY": MFA_KEY, "RATELIMIT_ENABLED": False})
    config.update(overrides)
    return config


def query(app, sql, params=()):
    """Run a read in its own app context and return the rows (a test's view of the database)."""
    with app.app_context():
        try:
            return db.many(sql, params)
        finally:
            db.close_db()


def bearer(token, scheme="Bearer"):
    """The Authorization header carrying `token` (RFC 6750 Bearer unless `scheme` says otherwise)."""
    return {"Authorization": f"{scheme} {token}"}


# --- JSON errors and what a response must never contain ------------------------------

LEAKS = [
    re.compile(p, re.I) for p in (
        r"Traceback \(most recent call last\)", r'File "[^"]+", line \d+', r"\bpymysql\b",
        r"SQL syntax", r"\bMariaDB\b", r"\bMySQL\b", r"OperationalError", r"ProgrammingError",
        r"FROM user WHERE", r"token_version", r"revoked_token", r"refresh_family",
        r"failed_logins", r"\$argon2", r"pbkdf2:sha256", r"scrypt:\d", r"PRIVATE KEY",
        r"Werkzeug Debugger", r"jwt\.exceptions", r'"password"\s*:',  # a password field in output
    )
]
ERROR_KEYS = {"status_code", "error", "description", "field"}
_ANY_FIELD = object()


def leaks(response, secrets=(), echoed=()):
    """The leak patterns (and secret strings) found in a response's headers and body.

    `echoed` are the request's own values, which a response may legitimately
    repeat (a created post's title): they are removed before the scan.
    """
    text = response.get_data(as_text=True) + "\n" + str(response.headers)
    for value in echoed:
        for form in (value, json.dumps(value)[1:-1]):
            text = text.replace(form, "")
    found = [p.pattern for p in LEAKS if p.search(text)]
    found += [s for s in (SECRET, *secrets) if s and s in text]
    return found


def assert_safe(response, secrets=(), echoed=()):
    """No 5xx and nothing leaked."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert leaks(response, secrets, echoed) == []


def assert_error(response, status, error=None, description=None, *, field=_ANY_FIELD, secrets=()):
    """A JSON error of the service's shape with this status; return its body.

    The body holds only status_code, error, description (strings) and field,
    and leaks nothing (see LEAKS; `secrets` are more strings that must not
    appear). `error` and `description` are compared when given; `field` when
    given, where field=None means the body names no field.
    """
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert isinstance(body, dict) and set(body) <= ERROR_KEYS, body
    assert body["status_code"] == status, body
    assert isinstance(body["error"], str) and isinstance(body["description"], str), body
    if error is not None:
        assert body["error"] == error, body
    if description is not None:
        assert body["description"] == description, body
    if field is not _ANY_FIELD:
        assert body.get("field") == field, body
    assert leaks(response, secrets) == []
    return body


# --- a live server, as deployed: `python -m serving` (schemathesis, newman, reliability, anyone who needs real HTTP) ---

def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
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


class LiveServer:
    """The service under `python -m serving` (granian) on a free port, with `env` on top of a safe test environment.

    `.url` has no trailing slash; `.log()` is what the server and the app wrote
    (stdout and stderr). Call wait_ready(), and stop() in a finally.
    """

    database = None  # set by start_live_server, which owns one

    def __init__(self, directory, env, workers=2, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing from the developer's shell or .env: only what is set here.
        documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                      if line and not line.startswith("#") and "=" in line}
        base = {k: v for k, v in os.environ.items()
                if k not in documented and not k.startswith(("DB_", "SERVER_", "RATELIMIT_", "JWT_"))}
        base.update({"PYTHON_DOTENV_DISABLED": "1",
                     "APP_ENV": "test", "SECRET_KEY": SECRET, "MFA_ENCRYPTION_KEY": MFA_KEY,
                     "RATELIMIT_ENABLED": "false",
                     "SERVER_BIND": f"127.0.0.1:{self.port}", "SERVER_WORKERS": str(workers),
                     "PYTHONUNBUFFERED": "1"})
        base.update({k: str(v) for k, v in env.items()})
        self.log_path = Path(directory) / f"server-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "-m", "serving"],
                cwd=ROOT, env=base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30.0):
        """Poll /healthz (any HTTP answer means the server serves) until `timeout`; fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # an HTTP error status is an answer: the server is up
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the server at {self.url} did not answer within {timeout:.0f}s "
                    f"(exit={self.process.poll()}):\n{self.log()[-4000:]}")

    def worker_pids(self):
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        """Stop the master (by PID: terminate, then kill), then any worker it left behind."""
        workers = self.worker_pids()
        stop_process(self.process)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_live_server(tmp_dir, seed=True, port=None, **env_overrides):
    """Create a database (seeded unless told) and start the server on it, ready; call stop_live_server.

    `port`: listen there (e.g. one PUBLIC_URL already names) instead of on a free one.
    """
    database = create_database(prefix="test_live", seed=seed)
    try:
        server = LiveServer(tmp_dir, {**server_config(database), **env_overrides}, port=port)
    except BaseException:
        drop_database(database)
        raise
    server.database = database
    try:
        server.wait_ready()
    except BaseException:
        stop_live_server(server)
        raise
    return server


def stop_live_server(server):
    """Stop the server start_live_server started and drop its database."""
    server.stop()
    drop_database(server.database)


def clear_of_a_totp_step_edge(margin=3.0):
    """Sleep, if needed, until at least `margin` seconds from either edge of a 30-s TOTP step.

    Tests compute a code for "the previous step" or "now" and then send it; a
    step boundary crossed in between would shift the window under them.
    """
    into = time.time() % 30
    if into < margin:
        time.sleep(margin - into)
    elif into > 30 - margin:
        time.sleep(30 - into + margin)


def raw_exchange(port: int, data: bytes, timeout: float = 10.0):
    """Send raw bytes to 127.0.0.1:`port`; return (status, headers with lower-case names, body) of the first answer.

    Reads until the answer's Content-Length is in, or the server closes the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _content_length(received):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _content_length(received: bytes) -> int:
    for line in received.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
