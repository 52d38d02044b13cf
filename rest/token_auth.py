"""Access tokens on requests: where a request carries one, `token_required`, and the token response.

`token_required` protects a view and exposes the caller as `current_user`
(alias `current_identity`, Flask-JWT's name). A token is read from the first
configured location that has one (TOKEN_LOCATIONS): `Authorization: JWT|Bearer`,
`x-access-tokens`, or `?token=`. A token is a JWT we signed or a personal
access token (accounts/personal_tokens.py, recognised by its prefix); a PAT
only reaches the routes its scopes cover (rest/scopes.py). A DPoP-bound JWT
(`cnf.jkt`) comes as `Authorization: DPoP <token>` with a proof
(rest/dpop_proofs.py).
"""
import time
from functools import wraps

from flask import current_app, g, request
from werkzeug.local import LocalProxy

from accounts import auth, personal_tokens, session_auth, sessions, tokens
from accounts.users import User
from rest import dpop_proofs, scopes
from rest.errors import REALM, ApiError, invalid_token
from rest.middleware import USER_ID_KEY

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_app, _g, _request = current_app._get_current_object, g._get_current_object, request._get_current_object

current_user: User = LocalProxy(lambda: _g().get("user"))
current_identity = current_user  # Flask-JWT's name for the same thing

EXPECTED = "Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"
SCHEMES = ("jwt", "bearer", "dpop")


def _malformed(description):
    return ApiError(401, description, error="Invalid JWT header",
                    headers={"WWW-Authenticate": f'Bearer {REALM}, error="invalid_token"'})


def authorization_token():
    """The token of the Authorization header (JWT or Bearer scheme), or None; 401 if malformed."""
    presented = _authorization(("jwt", "bearer"))
    return None if presented is None else presented[1]


def _authorization(schemes=SCHEMES):
    """(scheme in lower case, token) of the Authorization header, or None; 401 if malformed."""
    # What request.headers.get("Authorization") returns, without folding the name at each request.
    header = _request().environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    parts = header.split()
    if not parts or parts[0].lower() not in schemes:
        raise _malformed(f"Unsupported authorization type. {EXPECTED}")
    if len(parts) == 1:
        raise _malformed(f"Token missing. {EXPECTED}")
    if len(parts) > 2:
        raise _malformed(f"Token contains spaces. {EXPECTED}")
    return parts[0].lower(), parts[1]


def _from_x_access_tokens():
    token = request.headers.get("x-access-tokens")
    if token is None:
        return None
    token = token.strip()
    if not token or " " in token:
        raise _malformed("Expected 'x-access-tokens: <JWT>'")
    return "bearer", token


def _from_query():
    token = request.args.get("token") or None
    return None if token is None else ("bearer", token)


_LOCATIONS = {
    "authorization": _authorization,
    "x-access-tokens": _from_x_access_tokens,
    "query": _from_query,
}


def no_token():
    """The 401 for a request without credentials (no RFC 6750 error code, every scheme offered).

    DPoP's challenge names the proof algorithms accepted (RFC 9449 section 7.1).
    """
    return ApiError(401, "Request does not contain an access token", error="Authorization Required",
                    headers={"WWW-Authenticate": f'JWT {REALM}, Bearer {REALM}, DPoP algs="{dpop_proofs.ALGS}"'})


def presented_token():
    """(scheme, raw token) from the first configured location that has one.

    The scheme is "dpop" only for `Authorization: DPoP`; every other way of
    sending a token counts as "bearer". Raises a 401 ApiError when no
    location has one or a header is malformed.
    """
    for location in _app().config["TOKEN_LOCATIONS"]:
        found = _LOCATIONS[location]()
        if found is not None:
            return found
    raise no_token()


def request_token():
    """Return the raw token from the first configured location that has one (401 if none)."""
    return presented_token()[1]


def load_user(token_type=tokens.ACCESS):
    """Verify the request's token and return its User; 401 ApiError otherwise."""
    scheme, raw = presented_token()
    if personal_tokens.looks_like(raw):
        return _personal_token_user(scheme, raw)
    try:
        payload = tokens.decode(raw, token_type)
    except tokens.TokenError as exc:
        raise invalid_token(str(exc)) from None
    dpop_proofs.check_binding(scheme, raw, payload)
    user = auth.identity(payload)
    if user is None:
        raise invalid_token("User does not exist or the token was revoked", error="Invalid JWT")
    _g().token = payload
    return user


def _personal_token_user(scheme, raw):
    """The User behind a personal access token (kept on g.pat for the scope check); 401 otherwise."""
    if scheme == "dpop":
        raise dpop_proofs.resource_error("Personal access tokens are not DPoP-bound; send them as Bearer",
                                         error="invalid_token")
    found = personal_tokens.lookup(raw, request.remote_addr)
    if found is None:
        raise invalid_token("The personal access token is invalid, expired or revoked")
    g.pat = found
    g.token = {"sub": str(found.user_id), "type": "personal"}
    return User(found.user_id, found.username, found.is_admin, found.token_version)


def caller() -> User:
    """The User whose token the current request carries (what current_user stands for), after token_required."""
    return _g().user


def token_required(view):
    """Let the view run only for a caller with a valid access token."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        context = _g()
        user = context.user = load_user()
        _request().environ[USER_ID_KEY] = user.id  # for the access log
        if context.get("pat") is not None:
            scopes.check(context.pat)
        return view(*args, **kwargs)
    return wrapper


def token_body(user: User, family: sessions.Family | None = None, amr: list[str] | None = None) -> dict:
    """The JSON body of every token response: an access and a refresh token.

    Without `family` this starts a new session (a refresh family row, see
    accounts/sessions.py) seen from this request's user agent and address,
    authenticated by `amr` (default ["pwd"]) now; POST /refresh passes the
    family it just rotated, whose amr and auth_time are kept
    (accounts/session_auth.py). Both tokens carry the family id (`fam`) so
    logout can revoke the session; the access token also carries `amr` and
    `auth_time`; the refresh token expires with its family, and so at the
    latest does the access token.
    """
    jkt = dpop_proofs.token_request_key()  # before anything is written: a bad proof issues nothing
    if family is None:
        family, how = session_auth.begin(user.id, request.headers.get("User-Agent"),
                                         request.remote_addr, amr or ["pwd"])
    else:
        how = session_auth.claims(family.id) or {}  # a session from before amr: none
    now = int(time.time())
    ttl = max(1, min(current_app.config["JWT_ACCESS_TTL"], family.exp - now))
    bound = {"cnf": {"jkt": jkt}} if jkt else {}  # RFC 9449: both tokens bound to the proof's key
    return {
        "access_token": tokens.issue(user, tokens.ACCESS, ttl, fam=family.id, **how, **bound),
        "token_type": "DPoP" if jkt else "Bearer",
        "expires_in": ttl,
        "refresh_token": tokens.issue(user, tokens.REFRESH, family.exp - now,
                                      jti=family.jti, exp=family.exp, fam=family.id, **bound),
        "refresh_expires_in": max(0, family.exp - now),
    }
