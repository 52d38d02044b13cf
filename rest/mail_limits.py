"""Rate limits of the mail routes, added to the app's Limiter (rest/limits.py).

/password/forgot and /email/verify/resend: RATELIMIT_FORGOT per client IP and
RATELIMIT_FORGOT_PER_ACCOUNT per account named (the username or address in
the body, folded like the collation compares; counted whether or not the
account exists, so a 429 says nothing about it). /password/reset and
/email/verify: RATELIMIT_TOKEN per client IP (tokens are 256-bit: this only
keeps the endpoints cheap).
"""
from flask import request
from limits import parse_many

from config import ConfigError
from rest import limits

SETTINGS = ("RATELIMIT_FORGOT", "RATELIMIT_FORGOT_PER_ACCOUNT", "RATELIMIT_TOKEN")


def forgot_limit(view):
    """Limit requests that send mail, per IP and per account named."""
    return limits._limited(view, "forgot")


def token_limit(view):
    """Limit token redemptions per IP."""
    return limits._limited(view, "token")


def _account_key():
    body = request.get_json(silent=True)
    name = None
    if isinstance(body, dict):
        name = body.get("email") or body.get("username")
    return limits.username_key(name if isinstance(name, str) else "")


def _no_account():
    body = request.get_json(silent=True)
    return not (isinstance(body, dict) and isinstance(body.get("email") or body.get("username"), str))


def init_app(app):
    """Add the "forgot" and "token" kinds to the app's limits; ConfigError on a malformed setting."""
    config = app.config
    for name in SETTINGS:
        try:
            parse_many(config[name])
        except ValueError:
            raise ConfigError(f"{name} must be a rate limit such as '5/minute;20/hour', "
                              f"got {config[name]!r}") from None
    state = app.extensions[limits.EXTENSION]
    limiter = state.limiter

    def shared(setting, scope, **kwargs):
        return limiter.shared_limit(config[setting], scope=scope,
                                    error_message=limits.TOO_MANY, **kwargs)

    state.route_limits["forgot"] = [
        shared("RATELIMIT_FORGOT", "forgot-ip"),
        shared("RATELIMIT_FORGOT_PER_ACCOUNT", "forgot-account",
               key_func=_account_key, exempt_when=_no_account),
    ]
    state.route_limits["token"] = [shared("RATELIMIT_TOKEN", "token-ip")]
