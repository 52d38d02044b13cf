"""HTTP/1.1 without Host is a JSON 400; the app sends no Server header.

The server refuses such a request before Flask (serving/bridge.py); the app's
own check (rest/inputs.py require_host) holds under any other WSGI server, so
these tests call the WSGI app with the environ a server builds (a test client
always adds a Host). The live test sends it over a socket, as deployed.
"""
import json
import socket

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

NO_HOST = {"status_code": 400, "error": "Bad Request",
           "description": "An HTTP/1.1 request must carry a Host header."}


def call(app, path="/healthz", method="GET", protocol="HTTP/1.1", host=None, **kwargs):
    """(status, headers, JSON body) for a request whose Host is `host` (None: no Host header at all)."""
    environ = EnvironBuilder(path=path, method=method, **kwargs).get_environ()
    environ["SERVER_PROTOCOL"] = protocol
    del environ["HTTP_HOST"]
    if host is not None:
        environ["HTTP_HOST"] = host
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return int(status[:3]), headers, json.loads(b"".join(body))


@pytest.mark.parametrize("host", [None, ""])
@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("GET", "/no-such-page"),
                                               ("POST", "/auth"), ("GET", "/rest-auth")])
def test_http11_without_host_is_a_json_400(app, host, method, path):
    status, headers, body = call(app, path, method, host=host, headers={"X-Request-ID": "no-host-1"})
    assert (status, body) == (400, NO_HOST)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == "no-host-1"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_http10_needs_no_host(app):
    assert call(app, protocol="HTTP/1.0")[::2] == (200, {"status": "ok"})


def test_http11_with_host_is_served(app):
    assert call(app, host="api.example.com")[::2] == (200, {"status": "ok"})


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/healthz", 200), ("GET", "/no-such-page", 404), ("POST", "/auth", 415), ("GET", "/", 200),
])
def test_the_app_sends_no_server_header(client, method, path, status):
    """The app names no server and no version (the server's own banner: docs/security.md)."""
    response = client.open(path, method=method)
    assert response.status_code == status
    assert "Server" not in response.headers


@pytest.mark.live
def test_over_a_socket_as_deployed_it_is_the_same_json_400(live_server):
    """As a client without Host sends it, to the server as deployed: the one JSON 400."""
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), raw[:300]
    assert json.loads(body) == NO_HOST
