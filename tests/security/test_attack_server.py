"""Attacks against the real server: `python -m serving` (2 workers) with throttling on and
its counts in Redis. What the server refuses itself never reaches the app, and is
answered in the service's JSON error shape too (tests/security/test_attack_framing.py)."""
import json
import secrets

import pytest

from support import raw_exchange, start_live_server, stop_live_server
from forge import LEAKS, SECRET

pytestmark = [pytest.mark.live, pytest.mark.redis]

LOGIN_LIMIT = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_live_server(
        tmp_path_factory.mktemp("attack-server"), seed=False,
        RATELIMIT_ENABLED="true", RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15",
        RATELIMIT_KEY_PREFIX="sec-live-" + secrets.token_hex(6),
        RATELIMIT_LOGIN=f"{LOGIN_LIMIT}/minute", ACCESS_LOG="false",
        # As behind one reverse proxy: each test speaks from its own X-Forwarded-For address.
        TRUSTED_PROXIES="1",
    )
    yield live
    stop_live_server(live)


def raw_request(server, head, body=b""):
    """Send raw bytes on a fresh connection; return (status, headers dict, body bytes)."""
    return raw_exchange(server.port, head + body)


def request_head(method, path, headers):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_clean(status, payload):
    assert status < 500
    text = payload.decode("utf-8", "replace")
    assert [p.pattern for p in LEAKS if p.search(text)] == [] and SECRET not in text


def test_100_kb_header_at_the_server(server):
    """A 100 KB Authorization header: the server answers 431 itself, in the JSON shape (serving/bridge.py)."""
    status, headers, payload = raw_request(
        server, request_head("GET", "/rest-auth", {"Authorization": "Bearer " + "a" * 100_000}))
    assert_clean(status, payload)
    assert status == 431
    assert json.loads(payload) == {"status_code": 431, "error": "Request Header Fields Too Large",
                                   "description": "The header fields are larger than 16384 bytes."}
    # Under the server's limit the app sees it, and refuses it by JWT_MAX_LENGTH.
    status, headers, payload = raw_request(
        server, request_head("GET", "/rest-auth", {"Authorization": "Bearer " + "a" * 8000}))
    assert_clean(status, payload)
    assert status == 401
    assert json.loads(payload) == {"status_code": 401, "error": "Invalid token",
                                   "description": "Token is too large"}


def test_10_mb_body_at_the_server(server):
    """A body declared as 10 MB: the app answers 413 from Content-Length, before reading it."""
    head = request_head("POST", "/auth", {"Content-Type": "application/json",
                                          "Content-Length": str(10 * 1024 * 1024),
                                          "X-Forwarded-For": "198.51.100.10"})
    status, headers, payload = raw_request(server, head, b'{"username": "alice", "password": "')
    assert_clean(status, payload)
    assert status == 413
    body = json.loads(payload)
    assert body["status_code"] == 413 and body["error"] == "Request Entity Too Large"


def test_login_limit_is_shared_by_every_worker(server):
    """Guessing spread over both server workers still meets one per-IP count kept in Redis."""
    statuses, retry_after = [], []
    for n in range(LOGIN_LIMIT + 4):  # a new connection each: the kernel spreads them over workers
        body = json.dumps({"username": f"spray{n}", "password": "Summer2024!"}).encode()
        head = request_head("POST", "/auth", {"Content-Type": "application/json",
                                              "Content-Length": str(len(body)),
                                              "X-Forwarded-For": "198.51.100.20"})
        status, headers, payload = raw_request(server, head, body)
        assert_clean(status, payload)
        statuses.append(status)
        if status == 429:
            retry_after.append(int(headers["retry-after"]))
            assert json.loads(payload)["error"] == "Too Many Requests"
    assert statuses == [401] * LOGIN_LIMIT + [429] * 4
    assert all(1 <= seconds <= 61 for seconds in retry_after)


def test_account_delay_holds_across_workers_for_known_and_unknown_names(server):
    """Guessing one account over both workers: the 429 comes at the same attempt for a real and a made-up name."""
    def post(path, payload, address):
        body = json.dumps(payload).encode()
        head = request_head("POST", path, {"Content-Type": "application/json",
                                           "Content-Length": str(len(body)),
                                           "X-Forwarded-For": address})
        return raw_request(server, head, body)

    status, _, _ = post("/register", {"username": "victim", "password": "a fine long passphrase"},
                        "198.51.100.30")
    assert status == 201
    free = 5  # LOGIN_FREE_FAILURES' default
    for name, address in (("victim", "198.51.100.31"), ("no-such-user", "198.51.100.32")):
        answers = [post("/auth", {"username": name, "password": f"guess-{n}"}, address)
                   for n in range(free + 1)]
        for status, _, payload in answers:
            assert_clean(status, payload)
        assert [status for status, _, _ in answers] == [401] * free + [429], name
        assert json.loads(answers[-1][2])["description"].startswith("Too many attempts")
        assert 1 <= int(answers[-1][1]["retry-after"]) <= 2
