"""A tiny JSON HTTP client for the bench and the soak (standard library only)."""
import json
import urllib.error
import urllib.request


def call(method, url, token=None, body=None, headers=None, timeout=30):
    """Send one request; return (status, headers dict, parsed JSON or None). Never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), _json(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), _json(exc.read())


def _json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
