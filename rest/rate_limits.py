"""Request-rate limits for the credential endpoints, with Flask-Limiter.

Views wear `login_limit`, `refresh_limit`, `registration_limit` or
`rename_limit`; each app gets its own `Limiter` (tests build many apps, and a
Limiter keeps its storage and its on/off switch on itself), whose decorators
wrap each view at its first request. These limits are per client address
(RATELIMIT_LOGIN, RATELIMIT_REFRESH, RATELIMIT_REGISTER). What a login may
have checked per name and address, RATELIMIT_LOGIN_PER_USER included, is
judged by accounts/throttle.py on the credentials the view parsed, in the same
storage, which init_app() hands it. Counts live in RATELIMIT_STORAGE_URI, else
REDIS_URL's Redis, else memory (config.rate_limit_storage). A breach is the
service's JSON 429 with Retry-After. docs/security.md ("Throttling").
"""
import logging
import threading
import time
from functools import partial, wraps

from flask import current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from limits.errors import StorageError
from werkzeug.middleware.proxy_fix import ProxyFix

from accounts import throttle
from accounts.errors import Throttled
from config import ConfigError, rate_limit_storage
from rest import errors

log = logging.getLogger(__name__)

EXTENSION = "ratelimit"
LIMIT_SETTINGS = ("RATELIMIT_LOGIN", "RATELIMIT_LOGIN_PER_USER",
                  "RATELIMIT_REFRESH", "RATELIMIT_REGISTER",
                  "RATELIMIT_FORGOT", "RATELIMIT_FORGOT_PER_ACCOUNT", "RATELIMIT_TOKEN")
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
    """Limit log-in attempts (POST /auth and /login, counted together) per IP."""
    return _limited(view, "login")


def refresh_limit(view):
    """Limit refresh-token exchanges per IP."""
    return _limited(view, "refresh")


def registration_limit(view):
    """Limit account creation per IP."""
    return _limited(view, "register")


def forgot_limit(view):
    """Limit requests that send mail (/password/forgot, /email/verify/resend) per IP and per account named."""
    return _limited(view, "forgot")


def token_limit(view):
    """Limit redemptions of mailed tokens (/password/reset, /email/verify) per IP."""
    return _limited(view, "token")


def rename_limit(view):
    """Limit username changes per IP, in one count with registration: both tell whether a name is taken."""
    return _limited(view, "rename")


# --- keys -------------------------------------------------------------------------

def client_ip():
    """The client's address: the TCP peer, or what TRUSTED_PROXIES' ProxyFix set."""
    return request.remote_addr or "unknown"


def _not_renaming():
    """True unless the request's JSON body names a `username` (the view's own, cached, parse)."""
    body = request.get_json(silent=True) if request.is_json else None
    return not (isinstance(body, dict) and "username" in body)


def _named_account():
    """The username or address a mail request names (JSON), or None; never raises."""
    body = request.get_json(silent=True) if request.is_json else None
    name = (body.get("email") or body.get("username")) if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else None


def _account_key():
    # Folded like the collation compares, and counted whether or not the account
    # exists: a 429 says nothing about it.
    return throttle.username_key(_named_account() or "")


def _no_account():
    return _named_account() is None


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
    uri = rate_limit_storage(config)
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
        "login": [shared("RATELIMIT_LOGIN", "login-ip")],
        "refresh": [shared("RATELIMIT_REFRESH", "refresh-ip")],
        "register": [shared("RATELIMIT_REGISTER", "register-ip")],
        "forgot": [
            shared("RATELIMIT_FORGOT", "forgot-ip"),
            shared("RATELIMIT_FORGOT_PER_ACCOUNT", "forgot-account",
                   key_func=_account_key, exempt_when=_no_account),
        ],
        "token": [shared("RATELIMIT_TOKEN", "token-ip")],
        # A request that names no username reveals no name: not counted.
        "rename": [shared("RATELIMIT_REGISTER", "register-ip", exempt_when=_not_renaming)],
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


# Flask-Limiter's settings for limits on every request; this service sets none.
GLOBAL_LIMIT_SETTINGS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")


def _without_global_hooks(app, limiter):
    """Take out the three hooks Flask-Limiter runs at every request, for limits this service never sets.

    Its before_request checks default, application and meta limits (here
    every limit is a view's decorator, which checks itself inside the view),
    its after_request writes rate-limit headers (headers_enabled=False) and
    its teardown_request resets a context that dies with the request anyway.
    With limits on, as deployed, they cost 75 us of a GET /rest-auth's
    155 us in process (bench/hot_path.py). Kept when a global limit is set.
    """
    manager = limiter.limit_manager
    if (manager.default_limits or manager.application_limits
            or any(app.config.get(name) for name in GLOBAL_LIMIT_SETTINGS)):
        return

    def limiters(func):
        owner = func.args[0] if isinstance(func, partial) and func.args else getattr(func, "__self__", None)
        return owner is limiter

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        if None in hooks:
            hooks[None] = [func for func in hooks[None] if not limiters(func)]


def init_app(app):
    """Attach a Limiter to the app; ConfigError on a malformed limit setting."""
    _check_settings(app.config)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Only the last `proxies` hops of X-Forwarded-For are trusted: what a
        # client writes further left cannot pick its own rate-limit key.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    limiter = _limiter(app)
    _without_global_hooks(app, limiter)
    app.extensions[EXTENSION] = _State(limiter, _route_limits(limiter, app.config))
    # While Redis is unreachable this is the in-memory fallback Flask-Limiter
    # itself uses (its `limiter` strategy switches), so the account delay
    # never waits on a dead Redis either.
    app.extensions[throttle.STORAGE] = lambda: limiter.limiter.storage
    app.register_error_handler(RateLimitExceeded, _rate_limited)
