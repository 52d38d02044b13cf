"""Test harness: a real MySQL-compatible server, a database of our own, dropped at the end.

The server comes from TEST_DB_HOST/TEST_DB_PORT/TEST_DB_USER/TEST_DB_PASSWORD
(default: root@127.0.0.1:3306, the MariaDB on these machines). Every run
creates `test_jwtapi_<pid>_<random>` from sql/schema.sql, so parallel runs
never meet, and every test starts from empty tables.
"""
import os
import secrets
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402
import db  # noqa: E402
from rest import passwords, user_cache  # noqa: E402

SECRET = "test-secret-" + "x" * 40
TABLES_IN_DELETE_ORDER = ["revoked_token", "refresh_family", "post", "author", "user"]


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


@pytest.fixture(scope="session")
def database():
    name = create_database()
    yield name
    drop_database(name)


def app_config(database, **overrides):
    config = server_config(database)
    # Throttling off by default so tests are not rate limited; its own tests enable it.
    config.update({"APP_ENV": "test", "TESTING": True, "SECRET_KEY": SECRET,
                   "RATELIMIT_ENABLED": False})
    config.update(overrides)
    return config


@pytest.fixture
def make_app(database):
    """Factory: an app on the test database with config overrides; pools closed afterwards."""
    made = []

    def make(**overrides):
        application = app_module.create_app(app_config(database, **overrides), env={})
        made.append(application)
        return application

    yield make
    for application in made:
        db.close_pool(application)
        user_cache.close(application)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def _empty_tables(request):
    """Every test starts with empty tables (only when it uses the database)."""
    yield
    if "database" not in request.fixturenames:
        return
    name = request.getfixturevalue("database")
    config = server_config(name)
    db.run_script(config, "".join(f"DELETE FROM {t};" for t in TABLES_IN_DELETE_ORDER))


_hash_cache = {}


def _hash(password):
    # argon2id costs ~25 ms; tests reuse one hash per distinct password.
    if password not in _hash_cache:
        _hash_cache[password] = passwords.hash_password(password)
    return _hash_cache[password]


@pytest.fixture
def make_user(app):
    """Factory: insert a user and return {"id", "username", "password"}."""
    def make(username="alice", password="correct-horse-battery", admin=False, password_hash=None):
        with app.app_context():
            result = db.execute(
                "INSERT INTO user (username, password, is_admin) VALUES (%s, %s, %s)",
                (username, password_hash or _hash(password), admin),
            )
            db.close_db()
        return {"id": result.lastrowid, "username": username, "password": password}
    return make


@pytest.fixture
def login(client):
    """Log in through POST /auth and return the access token (asserting success)."""
    def do(username, password):
        response = client.post("/auth", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]
    return do


def query(app, sql, params=()):
    """Run a read in its own app context and return the rows (a test's view of the database)."""
    with app.app_context():
        try:
            return db.many(sql, params)
        finally:
            db.close_db()


def bearer(token, scheme="Bearer"):
    return {"Authorization": f"{scheme} {token}"}


# --- a live gunicorn server (schemathesis, newman, and anyone who needs real HTTP) ---

class LiveServer:
    """A running gunicorn: `.url` (no trailing slash), `.database`, `.stderr_text()`."""

    def __init__(self, url, database, process, stderr_path):
        self.url = url
        self.database = database
        self.process = process
        self.stderr_path = stderr_path

    def stderr_text(self):
        return Path(self.stderr_path).read_text(errors="replace")


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(server, timeout=20.0):
    """Poll /healthz (any HTTP answer means gunicorn serves) until `timeout`; fail with stderr."""
    import time
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            urllib.request.urlopen(server.url + "/healthz", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # an HTTP error status is an answer: the server is up
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"gunicorn at {server.url} did not answer within {timeout:.0f}s "
                f"(exit={server.process.poll()}):\n{server.stderr_text()[-4000:]}")


def start_live_server(tmp_dir, seed=True, **env_overrides):
    """Create a database and start gunicorn on it; return a LiveServer (call stop_live_server)."""
    import subprocess
    database = create_database(prefix="test_live", seed=seed)
    port = _free_port()
    db_config = server_config(database)
    # Nothing from the developer's shell or .env: only what we set here.
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    env = {k: v for k, v in os.environ.items() if k not in documented}
    env.update({
        "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
        "APP_ENV": "test", "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": "false",
        "PYTHONUNBUFFERED": "1", "PYTHON_DOTENV_DISABLED": "1",
    })
    env.update({k: str(v) for k, v in db_config.items()})
    env.update({k: str(v) for k, v in env_overrides.items()})
    stderr_path = Path(tmp_dir) / f"gunicorn-{port}.log"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", database, process, stderr_path)
    try:
        _wait_until_ready(server)
    except BaseException:
        stop_live_server(server)
        raise
    return server


def stop_live_server(server):
    """Stop the gunicorn we started (by PID: terminate, then kill) and drop its database."""
    import subprocess
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
    drop_database(server.database)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """gunicorn (2 workers) on a freshly seeded database of its own, for the whole session."""
    server = start_live_server(tmp_path_factory.mktemp("live"))
    yield server
    stop_live_server(server)


@pytest.fixture
def people(make_user, login):
    """alice and bob (plain users) and admin, each with `.headers` carrying a fresh token."""
    made = {}
    for name, admin in (("alice", False), ("bob", False), ("admin", True)):
        user = make_user(name, admin=admin)
        user["headers"] = bearer(login(name, user["password"]))
        made[name] = SimpleNamespace(**user)
    return SimpleNamespace(**made)
