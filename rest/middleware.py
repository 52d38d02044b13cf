"""What wraps every request: a request id, one JSON access-log line, security headers, CORS, metrics.

RequestLog and SecurityHeaders are WSGI middleware; CORS and the metrics
count are Flask hooks registered only when configured (CORS_ORIGINS,
METRICS_ENABLED). Health, readiness and /metrics themselves are
rest/health.py.

RequestLog runs on every request, so it does little: a regex match, three clock
reads, and what the line will say handed to the access log's batched stream
(rest/log_batch.py), which makes and writes the lines of a batch together
(0.05 s apart at most). The log line names the URL path only (never the
query string, which may carry ?token=), the status, the duration, the caller's
user id when known and the request id; never a token, password or hash.

Security headers: every response carries `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and a
Content-Security-Policy: HTML gets the page policy (our own static script and
style, nothing inline, no framing); everything else (JSON) gets
`default-src 'none'`, so a response opened as a document runs nothing.
HTTPS requests also get Strict-Transport-Security.

CORS is a few lines here rather than flask-cors: all the API needs is an
exact-match allowlist without cookies (tokens travel in headers), and
flask-cors's regex origins, credentials mode and path rules are surface this
service does not use (that library had several security advisories in 2024).
"""
import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timezone

from flask import current_app, has_request_context, request

import db
from accounts import events
from rest.log_batch import BatchedStream

access_log = logging.getLogger("jwt_api.access")
# Unhandled errors (rest/errors.py): one JSON line each, the traceback a string field.
error_log = logging.getLogger("jwt_api.error")

# Letters, digits and . _ : - only: safe to echo in a header and a log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "<unmatched>"
STARTED_KEY = "jwt_api.started"


# One encoder, reused: json.dumps() with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def json_line(created, level, logger, message, fields):
    """The text of one log line: ts, level, logger, msg, then `fields`."""
    line = {
        "ts": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "msg": message,
    }
    line.update(fields)
    return _encode(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and the record's `fields`."""

    def format(self, record):
        fields = dict(getattr(record, "fields", {}))
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname.lower(), record.name,
                         record.getMessage(), fields)


# The handler _setup_access_log() installs; while it is the logger's only
# handler, lines are written to it directly (see _log_request).
_default_handler = None


def _setup_access_log():
    # Once per process: create_app() may run many times (tests) on one logger.
    global _default_handler
    if access_log.handlers:
        return
    handler = logging.StreamHandler(BatchedStream(sys.stderr))  # one write() per batch of lines
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    _default_handler = handler


_error_handler = None


def _setup_error_log():
    """Give jwt_api.error, and an unconfigured root logger, the JSON formatter (once per process).

    jwt_api.error has a handler of its own, as the access log has, so that a
    server's logging setup cannot print a crash's traceback as bare lines in
    the JSON stream. Every other logger of the app propagates to the root;
    when nothing configured it (gunicorn does not), Python's last-resort
    handler would print message and traceback as plain text, so the root gets
    the same JSON handler. Its level stays the default WARNING.
    """
    global _error_handler
    if _error_handler is not None:
        return
    handler = _error_handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    error_log.addHandler(handler)
    error_log.propagate = False
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)


REQUEST_ID_KEY = "jwt_api.request_id"  # in the WSGI environ
USER_ID_KEY = "jwt_api.user_id"        # set by token_auth.token_required


class RequestLog:
    """WSGI middleware: a request id and one access-log line for every request.

    It runs around Flask rather than as before/after_request hooks because it
    then costs a function call, not a Flask hook dispatch, and it also sees
    the answers Flask's own error handling builds. The id is the client's
    X-Request-ID when it is safe to echo, else a new one; it goes back in the
    response's X-Request-ID and into the log line.
    """

    def __init__(self, wsgi_app, log_requests):
        self.wsgi_app = wsgi_app
        self.log_requests = log_requests

    def __call__(self, environ, start_response):
        started = environ[STARTED_KEY] = time.perf_counter()  # /metrics durations too
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        # 32 random hex digits, as uuid4().hex gave, in a third of its time.
        request_id = incoming if incoming and REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        environ[REQUEST_ID_KEY] = request_id

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-ID", request_id))
            if self.log_requests:
                _log_request(environ, int(status[:3]), time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _path(environ):
    return _path_of(environ.get("PATH_INFO", ""))


def _path_of(raw):
    # What request.path gives: PEP 3333 hands PATH_INFO over as latin-1.
    if not raw.isascii():  # ASCII (nearly every path) reads the same either way
        raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return "/" + raw.lstrip("/")


def _log_request(environ, status, seconds):
    if not access_log.isEnabledFor(logging.INFO):
        return
    handler = _default_handler
    if (type(handler.stream) is BatchedStream and access_log.handlers == [handler]
            and not access_log.filters and not handler.filters):
        # Only our own handler, on its batched stream: the line is made when
        # its batch is written (rest/log_batch.py), from what it says now.
        handler.stream.defer(_request_line, (time.time(), environ.get("REQUEST_METHOD"),
                                             environ.get("PATH_INFO", ""), status, seconds,
                                             environ.get(USER_ID_KEY), environ.get(REQUEST_ID_KEY)))
        return
    method = environ.get("REQUEST_METHOD")
    path = _path(environ)  # never the query: it may hold a token
    duration_ms = round(seconds * 1000, 2)
    user_id = environ.get(USER_ID_KEY)
    request_id = environ.get(REQUEST_ID_KEY)
    if access_log.handlers == [handler] and not access_log.filters and not handler.filters:
        # Only our own handler: write its line straight to its stream. A
        # LogRecord, the handler chain and the formatter cost 8 % of a worker's
        # CPU on GET /rest-auth (bench/profile.py); the line is json_line()'s.
        line = _access_line(_utc_timestamp(time.time()), method, path, status, duration_ms, user_id,
                            request_id)
        with handler.lock:
            handler.stream.write(line + "\n")
        return
    fields = {"method": method, "path": path, "status": status, "duration_ms": duration_ms,
              "user_id": user_id, "request_id": request_id}
    # Other handlers are attached (an operator's, a test's): the logging way,
    # minus the stack walk that would look up this function's file and line.
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "request", None, None,
                                   extra={"fields": fields})
    access_log.handle(record)


ACCESS_LOGGER = access_log.name
_LINE_HEAD = '{"ts":"%s","level":"info","logger":' + json.dumps(ACCESS_LOGGER) + ',"msg":"request",'
_string = json.encoder.encode_basestring_ascii  # a string as _encode writes it: quoted, ASCII


def _access_line(ts, method, path, status, duration_ms, user_id, request_id):
    """What json_line(now, "info", ACCESS_LOGGER, "request", fields) writes, byte for byte.

    Formatted by hand when the fields have their usual types (0.6 us; the
    encoder takes 2.7 us, most of it building itself anew at each call):
    strings escaped by the encoder's own function, the int and float as it
    writes them (repr). Anything else goes through the encoder.
    """
    if (type(method) is str and type(path) is str and type(status) is int
            and type(duration_ms) is float and type(request_id) is str
            and (user_id is None or type(user_id) is int)):
        return (_LINE_HEAD % ts + f'"method":{_string(method)},"path":{_string(path)},"status":{status},'
                f'"duration_ms":{duration_ms!r},"user_id":{"null" if user_id is None else user_id},'
                f'"request_id":{_string(request_id)}}}')
    return _encode({"ts": ts, "level": "info", "logger": ACCESS_LOGGER, "msg": "request",
                    "method": method, "path": path, "status": status, "duration_ms": duration_ms,
                    "user_id": user_id, "request_id": request_id})


def _request_line(now, method, raw_path, status, seconds, user_id, request_id):
    """The access line, with a newline, of a request that ended at `now` (time.time())."""
    return _access_line(_utc_timestamp(now), method, _path_of(raw_path), status, round(seconds * 1000, 2),
                        user_id, request_id) + "\n"


# (a second since the epoch, its "YYYY-MM-DDTHH:MM:SS" in UTC): one tuple, replaced
# whole, so a thread never reads one second's number with another's text.
_second = (None, "")


def _utc_timestamp(now):
    """datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"), 6 times faster.

    The date and time of day change once a second: they are formatted then,
    and only the milliseconds per call. Rounded to the microsecond first, as
    datetime rounds (half to even), then cut to milliseconds, as isoformat cuts.
    """
    second = int(now)
    micro = round((now - second) * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    global _second
    cached = _second
    if cached[0] != second:
        cached = _second = (second, datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{micro // 1000:03d}+00:00"


def request_id():
    """The current request's id (for log lines about it)."""
    return request.environ.get(REQUEST_ID_KEY, "-")


def _observe(response):
    """Count the request in the Prometheus metrics (after_request, only when METRICS_ENABLED)."""
    from rest import metrics  # imported only when metrics are on: see rest/metrics.py

    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    seconds = time.perf_counter() - request.environ.get(STARTED_KEY, time.perf_counter())
    metrics.observe(request.method, rule, response.status_code, seconds)
    metrics.set_pool(*db.pool_stats())
    return response


def login_failed():
    """Count a refused log-in (called where 'Invalid credentials' is raised)."""
    if current_app.config["METRICS_ENABLED"]:
        from rest import metrics

        metrics.LOGIN_FAILURES.inc()


# --- security headers and CORS ------------------------------------------------------

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, DPoP, If-Match, X-Request-ID, x-access-tokens"
CORS_EXPOSED_HEADERS = "DPoP-Nonce, ETag, Location, Retry-After, WWW-Authenticate, X-Request-ID"
CORS_MAX_AGE = "600"


_COMMON = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
_HSTS = [("Strict-Transport-Security", HSTS)]
# (is HTML, is HTTPS) -> the headers to add; built once.
_HEADERS = {
    (html, https): _COMMON + [("Content-Security-Policy", PAGE_POLICY if html else API_POLICY)]
    + (_HSTS if https else [])
    for html in (False, True) for https in (False, True)
}


class SecurityHeaders:
    """WSGI middleware: the security headers on every response, errors included.

    A middleware rather than an after_request hook: the headers are constants,
    so appending them to the WSGI header list is all it takes (a hook would
    go through Werkzeug's Headers for each one).
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            html = any(name == "Content-Type" and value.startswith("text/html") for name, value in headers)
            # Read now, not on the way in: ProxyFix, inside, may have set it from X-Forwarded-Proto.
            https = environ.get("wsgi.url_scheme") == "https"
            headers.extend(_HEADERS[html, https])
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def _cors(response):
    """Allow a configured Origin to read the response (after_request)."""
    allowed = current_app.config["CORS_ORIGINS"]
    response.vary.add("Origin")  # the answer depends on Origin: caches must key on it
    origin = request.headers.get("Origin")
    if origin is None or ("*" not in allowed and origin not in allowed):
        return response
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers["Access-Control-Allow-Methods"] = CORS_METHODS
        headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def request_origin():
    """Where the current request comes from, for security events: client address, user agent, request id.

    Outside a request (CLI, sender thread) it is events.NOWHERE.
    """
    if not has_request_context():
        return events.NOWHERE
    rid = request.environ.get(REQUEST_ID_KEY)
    return events.Origin(ip=request.remote_addr or None,
                         user_agent=request.headers.get("User-Agent") or None, request_id=rid)


def init_app(app):
    """Wrap the app in RequestLog and SecurityHeaders; CORS and metrics hooks only when configured."""
    _setup_access_log()
    _setup_error_log()
    events.read_origin_with(request_origin)  # the domain records events without reading the request
    app.wsgi_app = RequestLog(app.wsgi_app, app.config["ACCESS_LOG"])
    if app.config["METRICS_ENABLED"]:
        app.after_request(_observe)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)
    if app.config["CORS_ORIGINS"]:
        app.after_request(_cors)
