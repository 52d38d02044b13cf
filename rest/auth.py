"""Authentication, Flask-JWT style: authenticate(), identity(), /auth and /rest-auth.

`authenticate(username, password)` returns the User or None, `identity(payload)`
returns the User behind a verified token or None, as in Flask-JWT 0.3.2.
`token_required` protects a view and exposes the caller as `current_user`
(alias `current_identity`, Flask-JWT's name).
"""
import time
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

import db
from accounts import events
from rest import inputs, limits, observability, passwords, refresh, throttle, tokens, user_cache
from rest.errors import ApiError
from rest.hardening import no_store

bp = Blueprint("auth", __name__)


@dataclass(frozen=True)
class User:
    """The authenticated caller. Never carries the password hash."""

    id: int
    username: str
    is_admin: bool
    token_version: int

    def to_json(self):
        return {"id": self.id, "username": self.username}

    def __str__(self):
        return f"User(id='{self.id}')"


current_user = LocalProxy(lambda: g.get("user"))
current_identity = current_user  # Flask-JWT's name for the same thing

# The one query that reads the hash.
USER_WITH_HASH_BY_NAME = """
    SELECT id, username, password, is_admin, token_version
    FROM user WHERE username = %s"""
REPLACE_HASH = "UPDATE user SET password = %s WHERE id = %s AND password = %s"
# Identity and revocation in one round trip: the user row, and whether this
# token's jti was revoked by a logout or its session (refresh family) was
# revoked (logout, DELETE /sessions/<id>, refresh-token reuse).
USER_FOR_TOKEN = """
    SELECT u.id, u.username, u.is_admin, u.token_version,
           EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = %s)
           OR EXISTS (SELECT 1 FROM refresh_family f
                      WHERE f.id = %s AND f.revoked_at IS NOT NULL) AS revoked
    FROM user u WHERE u.id = %s"""


def _user(row):
    return User(row["id"], row["username"], bool(row["is_admin"]), row["token_version"])


def authenticate(username, password):
    """Return the User whose password matches, else None.

    Both arguments must be strings (anything else is None, never a query: MySQL
    would compare a number to every username as a float). An unknown username
    costs the same argon2id work as a known one. A successful login replaces a
    legacy or weaker hash with a current argon2id hash. Raises a 429 ApiError
    while the account (or the unknown name) must wait (rest/throttle.py).
    """
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if not username or not password:
        return None
    row = db.one(USER_WITH_HASH_BY_NAME, (username,))
    user_id = None if row is None else row["id"]
    try:
        if row is None:
            throttle.claim_unknown(username)  # may raise the 429 a known user gets
        else:
            throttle.claim_attempt(row["id"])  # 429 ApiError while the account must wait
    except ApiError:
        events.record_soon("login_throttled", user_id)
        raise
    if row is None:
        passwords.burn_hash_work(password)
        events.record_soon("login_failed", None, detail="unknown_user")
        return None
    if not passwords.verify_password(row["password"], password):
        events.record_soon("login_failed", user_id, detail="bad_password")
        return None
    throttle.clear_failures(row["id"])
    events.record_soon("login_succeeded", user_id)
    if passwords.needs_rehash(row["password"]):
        db.execute(REPLACE_HASH, (passwords.hash_password(password), row["id"], row["password"]))
    return _user(row)


def identity(payload):
    """Return the User behind a verified token's payload, else None.

    None when the user was deleted, the token's jti or its session (`fam`) was
    revoked, or the user's token version moved on (logout-all, password or
    admin change). With REDIS_URL set, a worker answers what it has read
    before and no change was announced for since (rest/user_cache.py);
    otherwise, and on a miss, one MySQL query.
    """
    # The answer depends on exactly these claims (and the rows USER_FOR_TOKEN reads).
    key = (payload["jti"], payload.get("fam"), payload.get("ver", 0))
    return user_cache.read_through(user_cache.IDENTITY, payload["sub"], key,
                                   lambda: _identity_from_database(payload))


def _identity_from_database(payload):
    row = db.one(USER_FOR_TOKEN, (payload["jti"], payload.get("fam"), int(payload["sub"])))
    if row is None or row["revoked"] or row["token_version"] != payload.get("ver", 0):
        return None
    return _user(row)


# --- reading the token from the request --------------------------------------

REALM = 'realm="Login Required"'
EXPECTED = "Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"


def _unauthorized(error, description, invalid=True):
    challenge = f'Bearer {REALM}, error="invalid_token"' if invalid else f"JWT {REALM}, Bearer {REALM}"
    return ApiError(401, description, error=error, headers={"WWW-Authenticate": challenge})


def invalid_token(description, error="Invalid token"):
    """The 401 for a token that was presented but is not accepted (RFC 6750 invalid_token)."""
    return _unauthorized(error, description)


def authorization_token():
    """The token of the Authorization header (JWT or Bearer scheme), or None; 401 if malformed."""
    return _from_authorization()


def _from_authorization():
    header = request.headers.get("Authorization")
    if header is None:
        return None
    parts = header.split()
    if not parts or parts[0].lower() not in ("jwt", "bearer"):
        raise _unauthorized("Invalid JWT header", f"Unsupported authorization type. {EXPECTED}")
    if len(parts) == 1:
        raise _unauthorized("Invalid JWT header", f"Token missing. {EXPECTED}")
    if len(parts) > 2:
        raise _unauthorized("Invalid JWT header", f"Token contains spaces. {EXPECTED}")
    return parts[1]


def _from_x_access_tokens():
    token = request.headers.get("x-access-tokens")
    if token is None:
        return None
    token = token.strip()
    if not token or " " in token:
        raise _unauthorized("Invalid JWT header", "Expected 'x-access-tokens: <JWT>'")
    return token


def _from_query():
    return request.args.get("token") or None


_LOCATIONS = {
    "authorization": _from_authorization,
    "x-access-tokens": _from_x_access_tokens,
    "query": _from_query,
}


def request_token():
    """Return the raw token from the first configured location that has one.

    Raises a 401 ApiError when no location has one or a header is malformed.
    """
    for location in current_app.config["TOKEN_LOCATIONS"]:
        token = _LOCATIONS[location]()
        if token is not None:
            return token
    raise _unauthorized("Authorization Required",
                        "Request does not contain an access token", invalid=False)


def load_user(token_type=tokens.ACCESS):
    """Verify the request's token and return its User; 401 ApiError otherwise."""
    try:
        payload = tokens.decode(request_token(), token_type)
    except tokens.TokenError as exc:
        raise _unauthorized("Invalid token", str(exc)) from None
    user = identity(payload)
    if user is None:
        raise _unauthorized("Invalid JWT", "User does not exist or the token was revoked")
    g.token = payload
    return user


def token_required(view):
    """Let the view run only for a caller with a valid access token."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user = load_user()
        request.environ[observability.USER_ID_KEY] = g.user.id  # for the access log
        return view(*args, **kwargs)
    return wrapper


# --- routes ---------------------------------------------------------------------

def token_body(user, family=None):
    """The JSON body of every token response: an access and a refresh token.

    Without `family` this starts a new session (a refresh family row, see
    rest/refresh.py); POST /refresh passes the family it just rotated. Both
    tokens carry the family id (`fam`) so logout can revoke the session; the
    refresh token expires with its family, and so at the latest does the access token.
    """
    if family is None:
        family = refresh.start(user)
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


LOGIN_FIELDS = ("username", "password")


def credentials_from_json():
    """Return (username, password) from a JSON login body; 4xx on a bad body.

    A missing or empty field is "Invalid credentials" (Flask-JWT's answer); a
    field of the wrong type or over the length cap, or any other field (the
    API's one unknown-field policy), is a 400 naming the field.
    """
    body = inputs.json_object()
    inputs.only_fields(body, LOGIN_FIELDS)
    cap = current_app.config["PASSWORD_MAX_LENGTH"]
    username = inputs.optional_string(body, "username", cap)
    password = inputs.optional_string(body, "password", cap)
    return username, password


def invalid_credentials():
    """The one answer for an unknown user and a wrong password alike."""
    observability.login_failed()
    return ApiError(401, "Invalid credentials", error="Bad Request")


@bp.post("/auth")
@limits.login_limit
def create_token():
    """Exchange a username and password for an access token (Flask-JWT's /auth)."""
    user = authenticate(*credentials_from_json())
    if user is None:
        raise invalid_credentials()
    return no_store(jsonify(token_body(user)))


@bp.get("/auth")
@token_required
def who_am_i():
    """Who the caller is (seed 001's dashboard route); POST /auth still issues tokens."""
    return jsonify(message="You are verified. Welcome to your dashboard!",
                   user=current_user.to_json())


@bp.get("/rest-auth")
@token_required
def rest_auth():
    """A protected resource: answers only a caller with a valid token."""
    return jsonify(
        message="You are an authenticated person to see this message",
        user=current_user.to_json(),
    )
