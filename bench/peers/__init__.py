"""The peers: other stacks' GET /rest-auth, each built as its docs recommend, for `make bench` and the tests.

    database = peers.create_database(settings, "fastapi-users")
    peer = peers.start("fastapi-users", peers.free_port(), database, settings, log_dir)
    ... wrk peer.url + peer.path with "Authorization: Bearer " + peer.token ...
    peer.stop(); peers.drop_database(settings, database)

`start` installs the peer's own venv when needed (bench/peers/venvs.py),
makes its schema and one user in `database` its own way, starts its server
with 4 workers on 127.0.0.1:`port`, waits for it, and logs in through the
peer's own login endpoint. Every process goes through bench/procs.py, so the
bench's `stop_all()` stops it by PID even when `stop()` is never reached.
`settings` holds DB_HOST, DB_PORT, DB_USER, DB_PASSWORD as the service's
config has them. The peers and how each follows its docs: docs/performance.md
("The peers").
"""
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

PEERS_DIR = Path(__file__).resolve().parent
BENCH_DIR = PEERS_DIR.parent
ROOT = BENCH_DIR.parent
for _path in (str(ROOT), str(BENCH_DIR)):  # db (create/drop database); procs, jsonhttp as bench/run.py imports them
    if _path not in sys.path:
        sys.path.append(_path)

import db  # noqa: E402
import jsonhttp  # noqa: E402
import procs  # noqa: E402

from . import venvs  # noqa: E402

WORKERS = 4
PORTS = range(57100, 57200)  # kept for the peers: nothing else of ours binds here
USERNAME = "bench"
EMAIL = "bench@example.com"
PASSWORD = "bench-password-not-secret"
ACCESS_TTL = 7200  # seconds: longer than any run, as the bench gives the service JWT_ACCESS_TTL
MESSAGE = "You are an authenticated person to see this message"


@dataclass
class Peer:
    """A running peer: where to send the measured GET, with which token, and how to stop it."""

    name: str
    url: str
    path: str                   # the measured GET: the protected resource, or /hello for bare FastAPI
    token: Optional[str]        # a bearer access token from the peer's own login; None without login
    identity: Optional[str]     # what the protected answer must name (username or email)
    process: subprocess.Popen
    log_path: Path

    def stop(self):
        """Stop the server and its workers (by PID; idempotent)."""
        procs.stop(self.process)

    def workers(self):
        """PIDs of the server's workers (uvicorn's multiprocessing resource tracker is no worker)."""
        found = []
        for pid in procs.children(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                found.append(pid)
        return found

    def log_tail(self, chars=3000):
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass(frozen=True)
class Spec:
    """How one peer is prepared, served and logged into."""

    folder: str                                       # under bench/peers/, the server's working directory
    path: str
    serve: Callable[[Path, int], list]                # (venv bin, port) -> argv
    prepare: Callable[[Path, dict], None] = lambda bin_dir, env: None   # schema and user, before serving
    login: Optional[Callable[[str], str]] = None      # base URL -> access token (registering first if need be)
    identity: Optional[str] = None
    uses_database: bool = True


def _uvicorn(bin_dir, port):
    # --loop/--http named so that a missing uvloop or httptools fails instead of falling back.
    return [str(bin_dir / "uvicorn"), "app:app", "--host", procs.HOST, "--port", str(port),
            "--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools"]


def _gunicorn(module):
    def argv(bin_dir, port):
        return [str(bin_dir / "gunicorn"), "--workers", str(WORKERS), "--bind", f"{procs.HOST}:{port}", module]
    return argv


def _run_in(folder):
    def run(bin_dir, env, *argv):
        done = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], cwd=PEERS_DIR / folder, env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                               f"{(done.stdout + done.stderr)[-3000:]}")
    return run


def _token(status, body, key, what):
    if status != 200 or not isinstance(body, dict) or key not in body:
        raise RuntimeError(f"{what} answered {status}: {body}")
    return body[key]


# --- flask-jwt-extended: `flask seed` makes the table and the user; POST /login -----------------

def _flask_jwt_prepare(bin_dir, env):
    _run_in("flask_jwt")(bin_dir, env, "flask", "--app", "app", "seed")


def _flask_jwt_login(url):
    status, _, body = jsonhttp.call("POST", url + "/login", body={"username": USERNAME, "password": PASSWORD})
    return _token(status, body, "access_token", "POST /login")


# --- fastapi-users: tables once, then POST /auth/register and the form login ---------------------

def _fastapi_users_prepare(bin_dir, env):
    _run_in("fastapi_users_aiomysql")(bin_dir, env, "python", "-c",
                                      "import asyncio, db; asyncio.run(db.create_db_and_tables())")


def _fastapi_users_login(url):
    status, _, body = jsonhttp.call("POST", url + "/auth/register", body={"email": EMAIL, "password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"POST /auth/register answered {status}: {body}")
    status, body = post_form(url + "/auth/jwt/login", {"username": EMAIL, "password": PASSWORD})
    return _token(status, body, "access_token", "POST /auth/jwt/login")


# --- drf-simplejwt: migrate, createsuperuser --noinput; POST /api/token/ -------------------------

def _drf_prepare(bin_dir, env):
    run = _run_in("drf_simplejwt")
    run(bin_dir, env, "python", "manage.py", "migrate", "--noinput")
    run(bin_dir, dict(env, DJANGO_SUPERUSER_PASSWORD=PASSWORD), "python", "manage.py", "createsuperuser",
        "--noinput", "--username", USERNAME, "--email", EMAIL)


def _drf_login(url):
    status, _, body = jsonhttp.call("POST", url + "/api/token/", body={"username": USERNAME, "password": PASSWORD})
    return _token(status, body, "access", "POST /api/token/")


SPECS = {
    "fastapi": Spec("fastapi_hello", "/hello", _uvicorn, uses_database=False),
    "flask-jwt-extended": Spec("flask_jwt", "/rest-auth", _gunicorn("app:app"), _flask_jwt_prepare,
                               _flask_jwt_login, USERNAME),
    "fastapi-users": Spec("fastapi_users_aiomysql", "/rest-auth", _uvicorn, _fastapi_users_prepare,
                          _fastapi_users_login, EMAIL),
    "drf-simplejwt": Spec("drf_simplejwt", "/rest-auth", _gunicorn("benchsite.wsgi"), _drf_prepare,
                          _drf_login, USERNAME),
}
NAMES = tuple(SPECS)


def start(name: str, port: int, database: Optional[str], settings: Optional[dict] = None,
          log_dir=None, log=print) -> Peer:
    """Peer `name` serving on 127.0.0.1:`port` from `database` (made empty by the caller), logged in.

    Raises RuntimeError (with the end of the server's log) when any step fails;
    the server is stopped first.
    """
    spec = SPECS[name]
    bin_dir = venvs.ensure(name, log=log)
    env = _environment(bin_dir, settings or server_settings(), database)
    spec.prepare(bin_dir, env)
    log_path = Path(log_dir or tempfile.mkdtemp(prefix="peer-")) / f"peer-{name}.log"
    process = procs.start(spec.serve(bin_dir, port), env, log_path, cwd=PEERS_DIR / spec.folder)
    peer = Peer(name, f"http://{procs.HOST}:{port}", spec.path, None, spec.identity, process, log_path)
    try:
        procs.wait_http(peer.url + spec.path, process, timeout=60)
        if spec.login:
            peer.token = spec.login(peer.url)
    except Exception as exc:
        peer.stop()
        raise RuntimeError(f"peer {name} did not start: {exc}\n{peer.log_tail()}") from None
    return peer


def _environment(bin_dir, settings, database):
    """Only what the peer reads: nothing of the service's environment leaks into it."""
    host, port = db.hosts(settings)[0]
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "PEER_SECRET": secrets.token_urlsafe(48), "PEER_ACCESS_TTL": str(ACCESS_TTL),
        "PEER_DB_HOST": host, "PEER_DB_PORT": str(port),
        "PEER_DB_USER": settings["DB_USER"], "PEER_DB_PASSWORD": settings["DB_PASSWORD"] or "",
        "PEER_DB_NAME": database or "",
        "PEER_USERNAME": USERNAME, "PEER_PASSWORD": PASSWORD,
    }


def post_form(url, fields, timeout=30):
    """POST `fields` form-encoded (an OAuth2 password form); return (status, parsed JSON or None)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def pins(name: str) -> list:
    """The pinned requirements of peer `name` (its requirements file without comments): for the results."""
    lines = venvs.requirements(name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- ports and databases -------------------------------------------------------------------------

def free_port() -> int:
    """A port of 57100-57199 free on the loopback right now, tried in random order.

    Random, not the first free one: two runs starting peers at once (a bench
    and a test run) would otherwise both pick the same port before either binds.
    """
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as sock:
            try:
                sock.bind((procs.HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def server_settings() -> dict:
    """The database server of the bench and the tests: TEST_DB_* or DB_*, default root@127.0.0.1:3306."""
    def get(name, default):
        return os.environ.get(f"TEST_{name}", os.environ.get(name, default))
    return {"DB_HOST": get("DB_HOST", "127.0.0.1"), "DB_PORT": int(get("DB_PORT", "3306")),
            "DB_USER": get("DB_USER", "root"), "DB_PASSWORD": get("DB_PASSWORD", ""),
            "DB_NAME": "", "DB_SSL_MODE": "disabled",
            "DB_CONNECT_TIMEOUT": 5, "DB_READ_TIMEOUT": 30, "DB_WRITE_TIMEOUT": 30}


def create_database(settings: dict, name: str) -> str:
    """An empty database for peer `name` (bench_peer_<name>_<pid>_<hex>); return its name."""
    database = f"bench_peer_{name.replace('-', '_')}_{os.getpid()}_{secrets.token_hex(3)}"
    db.server_execute(settings, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return database


def drop_database(settings: dict, database: str):
    db.server_execute(settings, f"DROP DATABASE IF EXISTS `{database}`")
