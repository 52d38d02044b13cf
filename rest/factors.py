"""Second factors on the HTTP side: finishing a password login, and step-up for sensitive operations.

- `password_login(user, otp)`: what POST /auth and POST /login answer once
  the password was right. An account without a second factor gets the token
  body exactly as before (amr ["pwd"]). An account with one gets a 401 in
  Flask-JWT's error shape plus `mfa_required: true`, a single-use `mfa_token`
  and the `methods` it may use at POST /auth/mfa; or, when the body carried
  `otp` (a one-step login), the token body with amr ["pwd", "otp"].
- `recent_auth_required`: the view runs only when the access token's
  `auth_time` is within STEP_UP_SECONDS; otherwise a 401 that says to
  re-authenticate (POST /auth/reauth).
"""
import time
from functools import wraps

from flask import current_app, g

from accounts import mfa
from accounts.errors import Throttled
from rest.errors import ApiError
from rest.token_auth import token_body

MFA_REQUIRED = "A second factor is required: POST /auth/mfa with the mfa_token and a code."
BAD_CODE = "Invalid second factor code"


def mfa_required(user_id: int, first_amr: str = "pwd") -> ApiError:
    """The 401 that opens a second step: Flask-JWT's shape plus mfa_required, mfa_token, methods."""
    return ApiError(401, MFA_REQUIRED, error="MFA Required", extra={
        "mfa_required": True,
        "mfa_token": mfa.start(user_id, first_amr),
        "mfa_token_expires_in": current_app.config["MFA_TOKEN_TTL"],
        "methods": mfa.methods(user_id),
    })


def bad_code() -> ApiError:
    """The 401 for a wrong, replayed or malformed second-factor code."""
    return ApiError(401, BAD_CODE, error="Bad Request")


def password_login(user, otp: str | None = None) -> dict:
    """The token body for `user`, whose password was right, or the 401 that asks for a factor.

    The password is never checked again in this flow: the mfa_token stands for it.
    """
    if otp is not None:
        try:
            method = mfa.verify_code(user.id, code=otp)
        except Throttled:  # the account must wait: answered 429
            mfa.login_failed(user.id, "throttled")
            raise
        if method is None:
            mfa.login_failed(user.id, "bad_code")
            raise bad_code()
        mfa.login_succeeded(user.id, mfa.TOTP)
        return token_body(user, amr=["pwd", mfa.AMR[mfa.TOTP]])
    if mfa.required(user.id):
        raise mfa_required(user.id)
    return token_body(user)


def reauth_required() -> ApiError:
    """The 401 for a sensitive operation with a login older than STEP_UP_SECONDS."""
    seconds = current_app.config["STEP_UP_SECONDS"]
    return ApiError(
        401, f"Re-authenticate: this operation needs a login within the last {seconds} seconds. "
             "POST /auth/reauth with your password or a second factor, then retry with the new token.",
        error="Re-authentication Required", extra={"reauth_required": True})


def recent_auth_required(view):
    """Let the view run only for an access token with a recent `auth_time` (inside token_required)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        require_recent_auth()
        return view(*args, **kwargs)
    return wrapper


def require_recent_auth() -> None:
    """401 (reauth_required) unless the request's token shows an authentication within STEP_UP_SECONDS."""
    auth_time = g.token.get("auth_time")
    if type(auth_time) is not int:  # noqa: E721 - tokens from before amr carry none
        raise reauth_required()
    if time.time() - auth_time > current_app.config["STEP_UP_SECONDS"]:
        raise reauth_required()
