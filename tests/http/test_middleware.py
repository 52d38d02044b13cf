"""Request ids, the JSON access log, /healthz, /readyz and /metrics."""
import io
import json
import logging
import time
from datetime import datetime, timezone

import pytest

import db
from support import bearer, create_database, drop_database, server_config
import schema
from rest import middleware


@pytest.fixture
def access_lines():
    """Collect the access log's JSON lines as dicts (the real formatter, no stderr)."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(middleware.JsonFormatter().format(record)))

    handler = Collect()
    middleware.access_log.addHandler(handler)
    yield lines
    middleware.access_log.removeHandler(handler)


def test_request_id_is_generated_when_absent(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("incoming", ["abc-123", "req.1:2_3", "A" * 64])
def test_safe_request_id_is_kept(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["", "A" * 65, "has space", "new\\nline", "<script>", "a;b", "é"])
def test_unsafe_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_request_id_is_on_errors_too(client):
    response = client.get("/no-such-path", headers={"X-Request-ID": "trace-404"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-404"


def test_one_json_line_per_request_with_user_id(client, make_user, login, access_lines):
    user = make_user("alice", "correct-horse-battery")
    token = login("alice", "correct-horse-battery")
    access_lines.clear()
    response = client.get("/rest-auth", headers={**bearer(token), "X-Request-ID": "r-1"})
    assert response.status_code == 200
    assert len(access_lines) == 1
    line = access_lines[0]
    assert {k: line[k] for k in ("method", "path", "status", "user_id", "request_id")} == {
        "method": "GET", "path": "/rest-auth", "status": 200,
        "user_id": user["id"], "request_id": "r-1",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["logger"] == "jwt_api.access" and line["ts"].endswith("+00:00")


def test_log_line_never_holds_secrets(make_app, make_user, access_lines):
    client = make_app(TOKEN_LOCATIONS=["authorization", "query"]).test_client()
    make_user("alice", "correct-horse-battery")
    response = client.post("/auth", json={"username": "alice", "password": "correct-horse-battery"})
    token = response.get_json()["access_token"]
    client.get(f"/rest-auth?token={token}")
    client.get("/rest-auth", headers=bearer(token))
    client.post("/auth", json={"username": "alice", "password": "wrong-password-here"})
    text = json.dumps(access_lines)
    assert [line["status"] for line in access_lines] == [200, 200, 200, 401]
    assert [line["path"] for line in access_lines] == ["/auth", "/rest-auth", "/rest-auth", "/auth"]
    for secret in (token, token.split(".")[2], "correct-horse-battery", "wrong-password-here",
                   "argon2", "pbkdf2", "token="):
        assert secret not in text
    assert access_lines[-1]["user_id"] is None


def test_the_line_written_directly_has_the_same_shape(client, make_user, login, monkeypatch):
    """With only the service's own handler attached, the line bypasses the handler chain."""
    user = make_user("alice", "correct-horse-battery")
    token = login("alice", "correct-horse-battery")
    handler = middleware._default_handler
    # pytest attaches its capture handlers to every logger; a server has only ours.
    monkeypatch.setattr(middleware.access_log, "handlers", [handler])
    monkeypatch.setattr(middleware.access_log, "makeRecord",
                        lambda *args, **kwargs: pytest.fail("took the LogRecord path"))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        client.get("/rest-auth", headers={**bearer(token), "X-Request-ID": "direct-1"})
    finally:
        handler.setStream(previous)
    [line] = [json.loads(text) for text in buffer.getvalue().splitlines()]
    assert list(line) == ["ts", "level", "logger", "msg", "method", "path", "status",
                          "duration_ms", "user_id", "request_id"]
    assert {k: line[k] for k in ("level", "logger", "msg", "method", "path", "status", "user_id",
                                 "request_id")} == {
        "level": "info", "logger": "jwt_api.access", "msg": "request", "method": "GET",
        "path": "/rest-auth", "status": 200, "user_id": user["id"], "request_id": "direct-1"}
    assert line["ts"].endswith("+00:00") and isinstance(line["duration_ms"], float)
    assert token not in buffer.getvalue()


@pytest.mark.parametrize("now", [0.0, 1796086075.0339997, 1796086075.9999996, 1796086075.0009995,
                                 1796086075.9994999, 1796086076.5])
def test_the_direct_line_stamps_time_as_isoformat_does(now):
    # The date and time of day are formatted once a second and kept: each
    # stamp, and the one after it in another second, reads as datetime's.
    for moment in (now, now + 1.25, now):
        assert middleware._utc_timestamp(moment) == datetime.fromtimestamp(
            moment, timezone.utc).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("fields", [
    {"method": "GET", "path": "/rest-auth", "status": 200, "duration_ms": 0.12, "user_id": 7,
     "request_id": "0" * 32},
    {"method": "PATCH", "path": '/caf\u00e9/"q"\\\n\u2028\ud800', "status": 404, "duration_ms": 1e-05,
     "user_id": None, "request_id": "r-1"},
    {"method": "GET", "path": "/", "status": 500, "duration_ms": 12345.67, "user_id": True,
     "request_id": None},  # not the usual types: the encoder writes it
    {"method": None, "path": "/", "status": 200, "duration_ms": 3.0, "user_id": 2 ** 70,
     "request_id": "x"},
])
def test_the_direct_line_is_json_line_byte_for_byte(fields):
    ts = "2026-11-30T20:09:06.885+00:00"
    expected = middleware.json_line(0, "info", "jwt_api.access", "request", fields).replace(
        datetime.fromtimestamp(0, timezone.utc).isoformat(timespec="milliseconds"), ts, 1)
    assert middleware._access_line(ts, *fields.values()) == expected
    assert json.loads(expected)["path"] == fields["path"]


@pytest.mark.parametrize("raw, path", [("/rest-auth", "/rest-auth"), ("//a", "/a"), ("", "/"),
                                       ("/caf\xc3\xa9", "/caf\u00e9"), ("/\xff", "/\ufffd")])
def test_the_logged_path_is_what_flask_calls_the_path(raw, path):
    assert middleware._path({"PATH_INFO": raw}) == path


def test_access_log_can_be_turned_off(make_app, access_lines):
    make_app(ACCESS_LOG=False).test_client().get("/healthz")
    assert access_lines == []


def test_the_formatter_writes_one_line():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "multi\nline %s", ("arg",), None)
    text = middleware.JsonFormatter().format(record)
    assert "\n" not in text
    assert json.loads(text)["msg"] == "multi\nline arg"


def test_healthz_needs_no_database(make_app):
    client = make_app(DB_PORT=1).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_when_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_without_database_is_503(make_app):
    response = make_app(DB_PORT=1, DB_RETRY_AFTER=7).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.get_json()["status_code"] == 503


def test_readyz_without_schema_is_503(make_app):
    empty = create_database(prefix="test_noschema")
    try:
        config = server_config(empty)
        db.run_script(config, "DROP TABLE revoked_token")
        response = make_app(DB_NAME=empty).test_client().get("/readyz")
    finally:
        drop_database(empty)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status_code"] == 503 and "init-db" in body["description"]


def test_readyz_checks_every_schema_table():
    assert {"user", "post", "author", "revoked_token", "refresh_family"} <= set(schema.TABLES)


def test_metrics_are_404_when_off(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 404


def _sample(text, name, **labels):
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_requests_failures_and_pool(make_app, make_user):
    client = make_app(METRICS_ENABLED=True).test_client()
    make_user("alice", "correct-horse-battery")
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/auth", json={"username": "alice", "password": "not-her-password"})
    client.get("/rest-auth")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = response.get_data(as_text=True)

    def grew(name, **labels):
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("http_requests_total", method="POST", endpoint="/auth", status="401") == 1
    assert grew("http_requests_total", method="GET", endpoint="/rest-auth", status="401") == 1
    assert grew("auth_login_failures_total") == 1
    assert grew("http_request_duration_seconds_count", method="POST", endpoint="/auth", status="401") == 1
    assert "db_pool_connections_in_use" in after and "db_pool_connections_idle" in after
    assert "http_rate_limited_total" in after


def test_metrics_label_unmatched_paths_once(make_app):
    client = make_app(METRICS_ENABLED=True).test_client()
    client.get("/nowhere/1")
    client.get("/nowhere/2")
    text = client.get("/metrics").get_data(as_text=True)
    assert "/nowhere" not in text
    assert _sample(text, "http_requests_total", endpoint="<unmatched>", status="404") >= 2


def test_429_is_counted():
    from rest import metrics
    before = metrics.RATE_LIMITED.labels("/auth")._value.get()
    metrics.observe("POST", "/auth", 429, 0.001)
    assert metrics.RATE_LIMITED.labels("/auth")._value.get() == before + 1


@pytest.mark.live
def test_gunicorn_logs_json_and_merges_worker_metrics(tmp_path):
    """Under gunicorn (2 workers, multiprocess metrics): stderr JSON lines, one merged /metrics."""
    import urllib.request
    from support import start_live_server, stop_live_server
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"stale")  # from an earlier run: must be cleared
    server = start_live_server(tmp_path, seed=False, METRICS_ENABLED="true",
                               PROMETHEUS_MULTIPROC_DIR=str(folder))
    try:
        def healthz_count():
            text = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
            return _sample(text, "http_requests_total", endpoint="/healthz", status="200")

        before = healthz_count()  # the readiness wait polled /healthz too
        for i in range(6):  # spread over both workers
            urllib.request.urlopen(urllib.request.Request(
                server.url + "/healthz", headers={"X-Request-ID": f"live-{i}"}), timeout=5).read()
        assert healthz_count() - before == 6
        assert list(folder.glob("*.db")) and not (folder / "counter_99999.db").exists()
        deadline = time.monotonic() + 2  # access lines go out in batches (rest/log_batch.py)
        while True:
            lines = [json.loads(line) for line in server.log().splitlines()
                     if line.startswith("{") and '"jwt_api.access"' in line]
            ids = {line["request_id"] for line in lines if line["path"] == "/healthz"}
            if {f"live-{i}" for i in range(6)} <= ids or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:
        stop_live_server(server)
    assert {f"live-{i}" for i in range(6)} <= ids


def test_multiprocess_folder_is_created_when_missing(tmp_path):
    """gunicorn preloads the app (creating the gauges) before its on_starting hook runs."""
    import os
    import subprocess
    import sys
    from support import ROOT
    folder = tmp_path / "not" / "yet"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", "import rest.metrics"], cwd=ROOT, env=env, check=True, timeout=30)
    assert folder.is_dir()
