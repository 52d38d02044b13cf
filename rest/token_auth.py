"""Access tokens on requests: where a request carries one, `token_required`, and the token response.

`token_required` protects a view and exposes the caller as `current_user`
(alias `current_identity`, Flask-JWT's name). A token is read from the first
configured location that has one (TOKEN_LOCATIONS): `Authorization: JWT|Bearer`,
`x-access-tokens`, or `?token=`.
"""
import time
from functools import wraps

from flask import current_app, g, request
from werkzeug.local import LocalProxy

from accounts import auth, sessions, tokens
from accounts.users import User
from rest.errors import REALM, ApiError, invalid_token
from rest.middleware import USER_ID_KEY

current_user: User = LocalProxy(lambda: g.get("user"))
current_identity = current_user  # Flask-JWT's name for the same thing

EXPECTED = "Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"


def _malformed(description):
    return ApiError(401, description, error="Invalid JWT header",
                    headers={"WWW-Authenticate": f'Bearer {REALM}, error="invalid_token"'})


def authorization_token():
    """The token of the Authorization header (JWT or Bearer scheme), or None; 401 if malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split()
    if not parts or parts[0].lower() not in ("jwt", "bearer"):
        raise _malformed(f"Unsupported authorization type. {EXPECTED}")
    if len(parts) == 1:
        raise _malformed(f"Token missing. {EXPECTED}")
    if len(parts) > 2:
        raise _malformed(f"Token contains spaces. {EXPECTED}")
    return parts[1]


def _from_x_access_tokens():
    token = request.headers.get("x-access-tokens")
    if token is None:
        return None
    token = token.strip()
    if not token or " " in token:
        raise _malformed("Expected 'x-access-tokens: <JWT>'")
    return token


def _from_query():
    return request.args.get("token") or None


_LOCATIONS = {
    "authorization": authorization_token,
    "x-access-tokens": _from_x_access_tokens,
    "query": _from_query,
}


def no_token():
    """The 401 for a request without credentials (no RFC 6750 error code, both schemes offered)."""
    return ApiError(401, "Request does not contain an access token", error="Authorization Required",
                    headers={"WWW-Authenticate": f"JWT {REALM}, Bearer {REALM}"})


def request_token():
    """Return the raw token from the first configured location that has one.

    Raises a 401 ApiError when no location has one or a header is malformed.
    """
    for location in current_app.config["TOKEN_LOCATIONS"]:
        token = _LOCATIONS[location]()
        if token is not None:
            return token
    raise no_token()


def load_user(token_type=tokens.ACCESS):
    """Verify the request's token and return its User; 401 ApiError otherwise."""
    try:
        payload = tokens.decode(request_token(), token_type)
    except tokens.TokenError as exc:
        raise invalid_token(str(exc)) from None
    user = auth.identity(payload)
    if user is None:
        raise invalid_token("User does not exist or the token was revoked", error="Invalid JWT")
    g.token = payload
    return user


def token_required(view):
    """Let the view run only for a caller with a valid access token."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user = load_user()
        request.environ[USER_ID_KEY] = g.user.id  # for the access log
        return view(*args, **kwargs)
    return wrapper


def token_body(user: User, family: sessions.Family | None = None) -> dict:
    """The JSON body of every token response: an access and a refresh token.

    Without `family` this starts a new session (a refresh family row, see
    accounts/sessions.py) seen from this request's user agent and address;
    POST /refresh passes the family it just rotated. Both tokens carry the
    family id (`fam`) so logout can revoke the session; the refresh token
    expires with its family, and so at the latest does the access token.
    """
    if family is None:
        family = sessions.start(user.id, request.headers.get("User-Agent"), request.remote_addr)
    now = int(time.time())
    ttl = max(1, min(current_app.config["JWT_ACCESS_TTL"], family.exp - now))
    return {
        "access_token": tokens.issue(user, tokens.ACCESS, ttl, fam=family.id),
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": tokens.issue(user, tokens.REFRESH, family.exp - now,
                                      jti=family.jti, exp=family.exp, fam=family.id),
        "refresh_expires_in": max(0, family.exp - now),
    }
