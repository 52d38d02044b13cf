"""Security headers on every response, and CORS only for the configured origins.

Every response carries `X-Content-Type-Options: nosniff`,
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
from flask import current_app, request

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"

CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, If-Match, X-Request-ID, x-access-tokens"
CORS_EXPOSED_HEADERS = "ETag, Location, Retry-After, WWW-Authenticate, X-Request-ID"
CORS_MAX_AGE = "600"


def no_store(response):
    """Never cache this response: tokens (RFC 6749 section 5.1), health and metrics."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


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


def init_app(app):
    """Add the security headers to every response; CORS only when CORS_ORIGINS lists origins."""
    app.wsgi_app = SecurityHeaders(app.wsgi_app)
    if app.config["CORS_ORIGINS"]:
        app.after_request(_cors)
