"""A tiny JSON HTTP client for the bench, the soak and the tests (standard library only).

Each request goes on its own connection, so threads may race with it. The
tests reach it through tests/support.py; it must not import pytest.
"""
import json
import time
import urllib.error
import urllib.request


def call(method, url, token=None, body=None, headers=None, timeout=30):
    """Send one request; return (status, headers dict, parsed JSON or None). Never raises on 4xx/5xx.

    `body` is sent as JSON, `token` as a Bearer Authorization header; `headers`
    are added last (an Authorization there wins over `token`). A body that is
    not JSON comes back as None.
    """
    status, answer_headers, parsed, _ = timed_call(method, url, token, body, headers, timeout)
    return status, answer_headers, parsed


def timed_call(method, url, token=None, body=None, headers=None, timeout=30):
    """call(), with the seconds the answer took as a fourth value."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, answer_headers, raw = exc.code, exc.headers, exc.read()
    elapsed = time.monotonic() - began
    return status, Fields(answer_headers.items()), _json(raw), elapsed


class Fields(dict):
    """Response header fields, looked up in any case: granian (hyper) sends names in lower case."""

    def __init__(self, items=()):
        super().__init__((name.lower(), value) for name, value in items)

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __contains__(self, name):
        return super().__contains__(name.lower())

    def get(self, name, default=None):
        return super().get(name.lower(), default)


def _json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
