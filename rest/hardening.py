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
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
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


def security_headers(response):
    """Set the security headers every response carries (after_request)."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Content-Security-Policy"] = PAGE_POLICY if response.mimetype == "text/html" else API_POLICY
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    _cors(response)
    return response


def _cors(response):
    """Allow a configured Origin to read the response; nothing when CORS_ORIGINS is empty."""
    allowed = current_app.config["CORS_ORIGINS"]
    if not allowed:
        return
    response.vary.add("Origin")  # the answer depends on Origin: caches must key on it
    origin = request.headers.get("Origin")
    if origin is None or ("*" not in allowed and origin not in allowed):
        return
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers["Access-Control-Allow-Methods"] = CORS_METHODS
        headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE


def init_app(app):
    """Register the headers hook for every response, errors included."""
    app.after_request(security_headers)
