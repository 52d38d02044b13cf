"""Rate limits for the credential endpoints.

Placeholder decorators until Flask-Limiter is wired in (issue «Token lifecycle
and hardening»): views already wear them, so that work changes only this module.
"""


def login_limit(view):
    """Limit log-in attempts (POST /auth, /login) per IP and per username."""
    return view


def refresh_limit(view):
    """Limit refresh-token exchanges per IP."""
    return view


def registration_limit(view):
    """Limit account creation per IP."""
    return view


def init_app(app):
    """Attach the limiter to the app."""
