"""granian -> Flask: a request reaches the app only once it is complete.

granian parses HTTP in Rust (hyper) and calls this RSGI app when a request's
headers are in, under its header-read timeout. The body is then awaited here,
on the worker's event loop, under a deadline and a size cap; only a whole
request becomes a WSGI environ. A client that trickles its headers or its body
therefore holds a socket and a coroutine, never the thread that runs Flask.

Flask then runs on the loop's own thread (one request at a time per process,
as a gunicorn sync worker), or on a small thread pool when the worker plan asks
for threads (config.worker_plan). Refusals that happen before Flask (size,
framing, Host) answer in the service's JSON error shape and are logged as the
app logs a request.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

access_log = logging.getLogger("jwt_api.access")

# Above these the request is refused before Flask sees it. gunicorn's own
# limits were 4094 bytes of request line and 100 fields of 8190 bytes; hyper
# answers an empty 431 itself past 100 fields, so ours are set below that.
MAX_TARGET_BYTES = 8192
MAX_HEADER_FIELDS = 64
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class Limits:
    max_body: int          # bytes (MAX_CONTENT_LENGTH); more answers 413
    body_timeout: float    # seconds to receive a whole body (SERVER_BODY_TIMEOUT); then 408


class Refusal(Exception):
    """A request answered by the bridge itself, before Flask."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


class Clock:
    """When the request now in Flask started (None: idle); serving/worker.py's watchdog reads it."""

    def __init__(self):
        self.running: dict[int, float] = {}

    def oldest(self) -> float | None:
        # list() copies in one step under the GIL: pool threads add and remove meanwhile.
        return min(list(self.running.values()), default=None)


class WsgiBridge:
    """An RSGI application serving a WSGI one (granian's --interface rsgi)."""

    def __init__(self, wsgi_app: Callable, limits: Limits, threads: int = 1):
        self.wsgi_app = wsgi_app
        self.limits = limits
        self.clock = Clock()
        self._pool = ThreadPoolExecutor(threads, "wsgi") if threads > 1 else None

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        started = time.perf_counter()
        try:
            check_head(scope)
            body = await self._body(scope, proto)
        except Refusal as refusal:
            refuse(scope, proto, refusal, started)
            return
        environ = wsgi_environ(scope, body)
        environ["wsgi.multithread"] = self._pool is not None
        if self._pool is None:
            status, headers, data = self._call(environ)
        else:
            loop = asyncio.get_running_loop()
            status, headers, data = await loop.run_in_executor(self._pool, self._call, environ)
        proto.response_bytes(status, headers, data)

    async def _body(self, scope: Any, proto: Any) -> bytes:
        """The whole body, or a Refusal: 413 past max_body, 408 past body_timeout."""
        headers = scope.headers
        # With both framings hyper keeps Transfer-Encoding, drops Content-Length and
        # closes the connection after the answer (RFC 9112 6.3): nothing to smuggle.
        chunked = "transfer-encoding" in headers
        length = headers.get("content-length")
        if not chunked:
            if length is None:
                return b""
            size = content_length(length)
            if size > self.limits.max_body:
                raise Refusal(413, f"The body is larger than {self.limits.max_body} bytes.")
            if size == 0:
                return b""
        try:
            return await asyncio.wait_for(self._read(proto), self.limits.body_timeout)
        except asyncio.TimeoutError:
            raise Refusal(408, f"The body did not arrive within {self.limits.body_timeout:g} s.") from None

    async def _read(self, proto: Any) -> bytes:
        # Chunk by chunk, so a chunked body over the cap stops being read at the cap.
        chunks, size = [], 0
        async for chunk in proto:
            size += len(chunk)
            if size > self.limits.max_body:
                raise Refusal(413, f"The body is larger than {self.limits.max_body} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    def _call(self, environ: dict) -> tuple[int, list, bytes]:
        """Run the WSGI app to the end: (status, headers, body)."""
        key = id(environ)
        self.clock.running[key] = time.monotonic()
        answer: list = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [int(status[:3]), headers]

        try:
            result = self.wsgi_app(environ, start_response)
            try:
                data = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            del self.clock.running[key]
        status, headers = answer
        return status, without_banner(headers), data


def check_head(scope: Any) -> None:
    """Refuse what Flask should never see: an oversized target or header block, HTTP/1.1 without Host."""
    if len(scope.path) + len(scope.query_string) > MAX_TARGET_BYTES:
        raise Refusal(414, f"The URL is longer than {MAX_TARGET_BYTES} bytes.")
    headers = scope.headers
    names = headers.keys()
    if len(names) > MAX_HEADER_FIELDS:
        raise Refusal(431, f"More than {MAX_HEADER_FIELDS} header fields.")
    size = 0
    for name in names:
        for value in headers.get_all(name):
            size += len(name) + len(value) + 4
    if size > MAX_HEADER_BYTES:
        raise Refusal(431, f"The header fields are larger than {MAX_HEADER_BYTES} bytes.")
    if scope.http_version == "1.1" and "host" not in headers:
        raise Refusal(400, "An HTTP/1.1 request must carry a Host header.")


def content_length(value: str) -> int:
    if not value.isdigit() or not value.isascii():
        raise Refusal(400, "Content-Length must be a number of bytes.")
    return int(value)


def wsgi_environ(scope: Any, body: bytes) -> dict:
    """PEP 3333's environ for a complete request."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # PEP 3333: the percent-decoded path, its bytes as latin-1 text.
        "PATH_INFO": unquote_to_bytes(scope.path).decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "REMOTE_ADDR": client_host.strip("[]"),
        "REMOTE_PORT": client_port,
        "SERVER_PROTOCOL": "HTTP/2" if scope.http_version == "2" else f"HTTP/{scope.http_version}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))  # a chunked body arrives whole
    headers = scope.headers
    for name in headers.keys():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_LENGTH" or key == "TRANSFER_ENCODING":
            continue
        values = headers.get_all(name)
        value = values[0] if len(values) == 1 else ("; " if key == "COOKIE" else ", ").join(values)
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    return environ


def without_banner(headers: list) -> list:
    """granian adds `server: granian` unless the app sent a Server field: send an empty one."""
    return [*headers, ("Server", "")]


def refuse(scope: Any, proto: Any, refusal: Refusal, started: float) -> None:
    """Answer a Refusal in the JSON error shape (rest/errors.py) and log it like any request."""
    request_id = uuid.uuid4().hex
    body = json.dumps({"status_code": refusal.status, "error": HTTPStatus(refusal.status).phrase,
                       "description": refusal.description}, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("X-Request-ID", request_id), ("Server", "")]
    if refusal.status in (408, 413) or refusal.status == 400:
        # The body was not read (or not all of it): the connection cannot carry another request.
        headers.append(("Connection", "close"))
    proto.response_bytes(refusal.status, headers, body)
    access_log.info("request", extra={"fields": {
        "method": scope.method, "path": scope.path[:200], "status": refusal.status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2), "user_id": None,
        "request_id": request_id}})
