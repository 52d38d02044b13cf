"""Test harness: a real MySQL-compatible server, a database of our own, dropped at the end.

The server comes from TEST_DB_HOST/TEST_DB_PORT/TEST_DB_USER/TEST_DB_PASSWORD
(default: root@127.0.0.1:3306, the MariaDB on these machines). Every run
creates `test_jwtapi_<pid>_<random>` from sql/schema.sql, so parallel runs
never meet, and every test starts from empty tables.

Fixtures only: the helpers (settings, databases, gunicorn, JSON errors, the
HTTP client) live in tests/support.py, imported as `from support import ...`.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TESTS = Path(__file__).resolve().parent
# The repository root first (the service's modules, bench.jsonhttp), then tests/ (support),
# for the test modules in every folder below.
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

import app as app_module  # noqa: E402
import db  # noqa: E402
from accounts import cache as user_cache
from accounts import passwords  # noqa: E402
from support import (  # noqa: E402
    app_config, bearer, create_database, drop_database, server_config, start_live_server, stop_live_server,
)

TABLES_IN_DELETE_ORDER = ["mail_outbox", "security_event", "revoked_token", "refresh_family", "post", "author",
                          "user", "dpop_replay", "webauthn_challenge"]  # the last two: rows with no user to cascade from


@pytest.fixture(scope="session")
def database():
    name = create_database()
    yield name
    drop_database(name)


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
