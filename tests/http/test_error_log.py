"""A crash is one JSON log line carrying the request id and the traceback; the client gets the JSON 500.

The crash is a real one: the user table is renamed away on a database of the
test's own, so the login query fails with MariaDB error 1146, which no
handler maps to a status. In
process, the error logger's own handler writes into a buffer; against a
live server, the server's log is read as deployed.
"""
import io
import json
import logging
import subprocess
import sys

import pytest
import requests

import db
from rest import middleware
from support import (
    ROOT, app_config, assert_error, create_database, drop_database, free_port, server_config, start_live_server,
    stop_live_server,
)

CRASH = {"status_code": 500, "error": "Internal Server Error", "description": "An unexpected error occurred."}
LOGIN = {"username": "alice", "password": "correct-horse-battery"}
BREAK = "RENAME TABLE user TO user_moved_away"


@pytest.fixture
def broken_app(make_app):
    """An app whose database lost its user table: every login query fails with error 1146."""
    name = create_database(prefix="test_broken")
    db.run_script(server_config(name), BREAK)
    yield make_app(DB_NAME=name)
    drop_database(name)


@pytest.fixture
def error_lines(app, monkeypatch):
    """What the error logger's own handler writes (a buffer instead of stderr); `app`: it exists."""
    handler = middleware._error_handler
    # pytest adds capture handlers to loggers; under a server the JSON handler is the only one.
    monkeypatch.setattr(middleware.error_log, "handlers", [handler])
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_a_crash_is_one_json_line_with_the_request_id_and_traceback(broken_app, error_lines):
    response = broken_app.test_client().post("/auth", json=LOGIN, headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.get_json() == CRASH
    assert response.headers["X-Request-ID"] == "crash-1"
    assert_error(response, 500)  # nothing of the trace, the SQL or the driver in the answer

    [text] = error_lines.getvalue().splitlines()
    line = json.loads(text)
    assert list(line) == ["ts", "level", "logger", "msg", "request_id", "method", "path", "exc"]
    assert {k: line[k] for k in ("level", "logger", "msg", "request_id", "method", "path")} == {
        "level": "error", "logger": "jwt_api.error", "msg": "unhandled error (request_id=crash-1)",
        "request_id": "crash-1", "method": "POST", "path": "/auth"}
    assert line["exc"].startswith("Traceback (most recent call last):\n")
    assert "pymysql.err.ProgrammingError: (1146" in line["exc"]
    assert "correct-horse-battery" not in text


def test_every_crash_is_logged_once(broken_app, error_lines):
    client = broken_app.test_client()
    for n in range(3):
        assert client.post("/auth", json=LOGIN, headers={"X-Request-ID": f"c-{n}"}).status_code == 500
    ids = [json.loads(text)["request_id"] for text in error_lines.getvalue().splitlines()]
    assert ids == ["c-0", "c-1", "c-2"]


def test_a_configured_root_logger_keeps_its_own_handlers(app):
    """pytest configured the root logger before create_app(): the app added nothing to it."""
    root = logging.getLogger()
    assert root.handlers and middleware._error_handler not in root.handlers
    assert middleware._error_handler in middleware.error_log.handlers


UNCONFIGURED = """
import json, logging, sys
import app
app.create_app(json.loads(sys.argv[1]), env={})
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("accounts.mail").warning("a warning\\nover two lines", exc_info=True)
logging.getLogger("accounts.mail").info("below the root's WARNING: not written")
"""


def test_with_logging_unconfigured_create_app_makes_the_root_logger_json():
    """Under a server that configures no logging (gunicorn, `flask run`): no bare traceback either."""
    result = subprocess.run([sys.executable, "-c", UNCONFIGURED, json.dumps(app_config("unused"))],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert {k: line[k] for k in ("level", "logger", "msg")} == {
        "level": "warning", "logger": "accounts.mail", "msg": "a warning\nover two lines"}
    assert line["exc"].startswith("Traceback") and line["exc"].endswith("ValueError: boom")


@pytest.mark.live
def test_under_the_server_the_crash_is_one_json_line(tmp_path):
    """As deployed: the crash is one JSON line in the server's log, and so is another module's warning."""
    # Rate-limit counts in a Redis nobody listens on: Flask-Limiter warns as it falls back.
    server = start_live_server(tmp_path, RATELIMIT_ENABLED="true",
                               RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}")
    try:
        db.run_script(server_config(server.database), BREAK)
        response = requests.post(f"{server.url}/auth", json=LOGIN, timeout=10,
                                 headers={"X-Request-ID": "live-crash-1"})
        assert response.status_code == 500 and response.json() == CRASH
        assert response.headers["X-Request-ID"] == "live-crash-1"
    finally:
        stop_live_server(server)
    log = server.log().splitlines()
    assert not [text for text in log if text.startswith(("Traceback", "  File ", "pymysql."))], log
    lines = [json.loads(text) for text in log if text.startswith("{")]
    [crash] = [line for line in lines if line["logger"] == "jwt_api.error"]
    assert crash["request_id"] == "live-crash-1" and crash["level"] == "error" and crash["path"] == "/auth"
    assert "ProgrammingError: (1146" in crash["exc"]
    # Another module's warning is a JSON line of the same shape.
    assert [line for line in lines if line["level"] == "warning" and not line["logger"].startswith("jwt_api")]
