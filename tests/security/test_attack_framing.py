"""Malformed HTTP at the real server (`python -m serving`): the JSON error shape, never HTML, never a banner.

The bridge (serving/bridge.py) answers what Flask should never see. What
hyper refuses before any Python runs (a control byte in the request line,
more than 100 header fields) is an empty 400/431 with no banner either: the
one place the JSON shape cannot reach, said in docs/security.md.
"""
import json
import socket
import time

import pytest

from support import raw_exchange, start_live_server, stop_live_server

pytestmark = pytest.mark.live

MAX_BODY = 2048


# Every case under both ways of running a request's coroutine (SERVER_TASKS):
# granian's Rust tasks, the default, and asyncio's, the documented way back.
@pytest.fixture(scope="module", params=["rust", "asyncio"])
def server(tmp_path_factory, request):
    live = start_live_server(tmp_path_factory.mktemp("framing"), MAX_CONTENT_LENGTH=str(MAX_BODY),
                             SERVER_BODY_TIMEOUT="2", SERVER_TASKS=request.param)
    live.env_tasks = request.param
    yield live
    stop_live_server(live)


def exchange(server, raw):
    """Send raw bytes; return (status, headers with lower-case names, body bytes) of the first answer."""
    return raw_exchange(server.port, raw)


def error(status, headers, body):
    """The JSON error body; fails unless the answer is the service's shape with no banner."""
    assert headers["content-type"] == "application/json", (status, headers, body)
    assert headers.get("server", "") == ""
    parsed = json.loads(body)
    assert parsed["status_code"] == status and set(parsed) == {"status_code", "error", "description"}
    return parsed


def test_the_server_runs_the_tasks_it_was_asked_for(server):
    # granian logs this warning at start when, and only when, it runs its Rust tasks.
    rust = "Rust task implementation is experimental" in server.log()
    assert rust == (server.env_tasks == "rust")


def test_a_long_url_is_414_in_json(server):
    status, headers, body = exchange(server, b"GET /rest-auth?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414
    assert error(status, headers, body)["description"] == "The URL is longer than 8192 bytes."


def test_many_header_fields_are_431_in_json(server):
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(70))
    status, headers, body = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status == 431
    assert error(status, headers, body)["description"] == "More than 64 header fields."


def test_past_hypers_own_field_limit_the_answer_is_an_empty_431(server):
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(120))
    status, headers, body = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert (status, body, headers.get("server")) == (431, b"", None)


def test_content_length_with_transfer_encoding_cannot_smuggle_a_request(server):
    """Both framings: the chunked one is read (RFC 9112 6.3), the answer is JSON, and the connection
    closes, so the bytes a Content-Length reader would have taken for a second request are never served."""
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = (b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled))) + smuggled
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 ") == 1, data
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head.lower()
    assert json.loads(body)["description"] == "The body is not valid JSON."


def test_http_1_1_without_host_is_400(server):
    status, headers, body = exchange(server, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert status == 400
    assert error(status, headers, body)["description"] == "An HTTP/1.1 request must carry a Host header."


def test_http_1_0_without_host_is_served(server):
    status, headers, body = exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(server):
    raw = (b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 10485760\r\n\r\n{")
    started = time.monotonic()
    status, headers, body = exchange(server, raw)
    assert time.monotonic() - started < 1  # not after the 2-s body timeout: nothing was awaited
    assert status == 413
    assert error(status, headers, body)["description"] == f"The body is larger than {MAX_BODY} bytes."


def test_a_chunked_body_over_the_limit_is_413_not_invalid_json(server):
    chunk = b"a" * 1000
    raw = (b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + (b"3e8\r\n" + chunk + b"\r\n") * 5 + b"0\r\n\r\n")
    status, headers, body = exchange(server, raw)
    assert status == 413
    assert error(status, headers, body)["description"] == f"The body is larger than {MAX_BODY} bytes."


def test_a_chunked_body_under_the_limit_reaches_the_app(server):
    payload = json.dumps({"username": "roy", "password": "roy"}).encode()
    raw = (b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n")
    status, headers, body = exchange(server, raw)
    assert status == 200 and "access_token" in json.loads(body)


def test_a_body_that_stops_arriving_is_408_after_the_body_timeout(server):
    raw = (b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100\r\n\r\n{\"user")
    started = time.monotonic()
    status, headers, body = exchange(server, raw)
    assert 1.5 < time.monotonic() - started < 5
    assert status == 408
    assert error(status, headers, body)["description"] == "The body did not arrive within 2 s."


def test_a_malformed_content_length_is_400(server):
    raw = b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n"
    status, headers, body = exchange(server, raw)
    assert status == 400
    assert body == b"" or error(status, headers, body)  # hyper's own refusal, or ours


def test_no_answer_carries_a_server_banner(server):
    for raw in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"):
        status, headers, _ = exchange(server, raw)
        assert headers.get("server", "") == "", (status, headers)
