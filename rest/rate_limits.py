"""Rate limits for the credential endpoints, with Flask-Limiter.

Views wear `login_limit`, `refresh_limit` or `registration_limit`; each app
gets its own `Limiter` (tests build many apps, and a Limiter keeps its storage
and its on/off switch on itself), whose decorators wrap each view at its first
request. Limits come from the config (RATELIMIT_LOGIN,
RATELIMIT_LOGIN_PER_USER, RATELIMIT_REFRESH, RATELIMIT_REGISTER); counts live
in memory, or in Redis when RATELIMIT_STORAGE_URI is set so that every gunicorn
worker and instance shares them. A breach is the service's JSON 429 with
Retry-After. docs/security.md ("Throttling") explains the design. The
per-account delay (accounts/throttle.py) counts unknown names in the same
storage, which init_app() hands it.
"""
import logging
import threading
import time
from functools import wraps

from flask import current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from limits.errors import StorageError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from accounts import throttle
from accounts.errors import Throttled
from config import ConfigError
from rest import errors, inputs

log = logging.getLogger(__name__)

EXTENSION = "ratelimit"
LIMIT_SETTINGS = ("RATELIMIT_LOGIN", "RATELIMIT_LOGIN_PER_USER",
                  "RATELIMIT_REFRESH", "RATELIMIT_REGISTER")
# One answer for every throttled request: a per-IP limit, a per-username
# limit, an account's growing delay, known or unknown user alike.
TOO_MANY = Throttled.MESSAGE


def _limited(view, kind):
    # The app's Limiter is only known at request time (one per app), so the
    # view is wrapped by Flask-Limiter's decorators there, once per app.
    @wraps(view)
    def wrapper(*args, **kwargs):
        return current_app.extensions[EXTENSION].limited(view, kind)(*args, **kwargs)
    return wrapper


def login_limit(view):
    """Limit log-in attempts (POST /auth and /login, counted together) per IP and per username."""
    return _limited(view, "login")


def refresh_limit(view):
    """Limit refresh-token exchanges per IP."""
    return _limited(view, "refresh")


def registration_limit(view):
    """Limit account creation per IP."""
    return _limited(view, "register")


# --- keys -------------------------------------------------------------------------

def client_ip():
    """The client's address: the TCP peer, or what TRUSTED_PROXIES' ProxyFix set."""
    return request.remote_addr or "unknown"


def login_username():
    """The username a login request names (JSON, form or Basic), or None.

    Reads the body the way the view will (cached), and never raises: a body
    that is too large, malformed or of another type is the view's 4xx to give.
    """
    try:
        basic = request.authorization
        if basic is not None and basic.type == "basic":
            name = basic.username
        elif request.is_json:
            body = request.get_json(silent=True)
            name = body.get("username") if isinstance(body, dict) else None
        elif request.mimetype in inputs.FORM_TYPES:
            name = request.form.get("username")
        else:
            name = None
    except (HTTPException, ValueError, UnicodeError):
        return None
    return name if isinstance(name, str) and name else None


def _username_key():
    return throttle.username_key(login_username() or "")


def _no_username():
    return login_username() is None


# --- the extension ----------------------------------------------------------------

def _check_settings(config):
    for name in LIMIT_SETTINGS:
        try:
            parse_many(config[name])
        except ValueError:
            raise ConfigError(f"{name} must be a rate limit such as '10/minute;100/hour', "
                              f"got {config[name]!r}") from None


def _limiter(app):
    config = app.config
    uri = config["RATELIMIT_STORAGE_URI"] or "memory://"
    options = {"wrap_exceptions": True}
    if uri.startswith(("redis", "rediss")):
        # A Redis that hangs must not hang logins: fail over to memory quickly.
        options.update(socket_connect_timeout=1, socket_timeout=1)
    if uri.startswith("redis+sentinel"):
        # The same bound for asking the sentinels which server is the primary.
        options["sentinel_kwargs"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    return Limiter(
        client_ip, app=app, storage_uri=uri, storage_options=options,
        enabled=config["RATELIMIT_ENABLED"],
        # Storage down: count in this process's memory rather than answer 500.
        in_memory_fallback_enabled=True, swallow_errors=True,
        headers_enabled=False,  # the 429 carries Retry-After; no per-request headers
    )


def _route_limits(limiter, config):
    """The limits each kind of view wears, shared across views of that kind."""
    def shared(setting, scope, **kwargs):
        return limiter.shared_limit(config[setting], scope=scope,
                                    error_message=TOO_MANY, **kwargs)
    return {
        "login": [
            shared("RATELIMIT_LOGIN", "login-ip"),
            shared("RATELIMIT_LOGIN_PER_USER", "login-user",
                   key_func=_username_key, exempt_when=_no_username),
        ],
        "refresh": [shared("RATELIMIT_REFRESH", "refresh-ip")],
        "register": [shared("RATELIMIT_REGISTER", "register-ip")],
    }


class _State:
    """Per app: the Limiter, its limits, and each view wrapped by them (built on first use)."""

    def __init__(self, limiter, route_limits):
        self.limiter = limiter
        self.route_limits = route_limits
        self._wrapped = {}
        self._lock = threading.Lock()

    def limited(self, view, kind):
        """`view` wrapped by this app's limits of `kind` (Flask-Limiter's own decorators)."""
        wrapped = self._wrapped.get(view)
        if wrapped is None:
            with self._lock:
                wrapped = self._wrapped.get(view)
                if wrapped is None:
                    wrapped = view
                    for limit in self.route_limits[kind]:
                        wrapped = limit(wrapped)
                    self._wrapped[view] = wrapped
        return wrapped


def _rate_limited(exc):
    limiter = current_app.extensions[EXTENSION].limiter
    retry = 1
    breached = limiter.current_limit
    if breached is not None:
        try:
            retry = breached.reset_at - time.time()
        except StorageError:  # storage failed while answering a 429: 1 s will do
            log.warning("rate-limit storage failed computing Retry-After", exc_info=True)
    error = errors.too_many_requests(retry)
    return errors.error_response(error.status, error.error, error.description, headers=error.headers)


def init_app(app):
    """Attach a Limiter to the app; ConfigError on a malformed limit setting."""
    _check_settings(app.config)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Only the last `proxies` hops of X-Forwarded-For are trusted: what a
        # client writes further left cannot pick its own rate-limit key.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    limiter = _limiter(app)
    app.extensions[EXTENSION] = _State(limiter, _route_limits(limiter, app.config))
    # While Redis is unreachable this is the in-memory fallback Flask-Limiter
    # itself uses (its `limiter` strategy switches), so the account delay
    # never waits on a dead Redis either.
    app.extensions[throttle.STORAGE] = lambda: limiter.limiter.storage
    app.register_error_handler(RateLimitExceeded, _rate_limited)
