"""What a personal access token may reach: one scope per resource and verb.

`check(pat)` runs in `token_required` for every request that a personal access
token authenticated. The policy is a table keyed by blueprint, so it reads in
one place and a new blueprint is refused to PATs until it is listed here:
- posts, authors, users: `<resource>:read` for GET and HEAD, `<resource>:write`
  for the other methods (the token's user's own rights still apply on top);
- GET /auth and GET /rest-auth only say who the caller is: any PAT;
- /introspect: the `introspect` scope (which only an admin can grant);
- everything else, above all what manages authentication (/tokens, /sessions,
  /logout, /logout-all, password, email, factors), refuses a PAT outright:
  a leaked script token must not be able to mint, extend or lock out.
"""
from flask import request

from rest.errors import REALM, ApiError

READ_METHODS = ("GET", "HEAD", "OPTIONS")
RESOURCES = ("posts", "authors", "users")
ANY = "*"
# endpoint -> the scope it needs (ANY: no particular scope).
ENDPOINTS = {
    "login.who_am_i": ANY,
    "login.rest_auth": ANY,
    "oauth.introspect": "introspect",
}
# Fields of a users-route body that manage authentication.
AUTHENTICATION_FIELDS = ("password", "current_password")


def needed_scope(endpoint: str | None, blueprint: str | None, method: str) -> str | None:
    """The scope a PAT needs for this route; None when no PAT may use it."""
    if endpoint in ENDPOINTS:
        return ENDPOINTS[endpoint]
    if blueprint in RESOURCES:
        return f"{blueprint}:{'read' if method in READ_METHODS else 'write'}"
    return None


def refused():
    """403 for a route that never accepts a personal access token."""
    return ApiError(403, "A personal access token cannot be used here; log in for this.",
                    error="insufficient_scope",
                    headers={"WWW-Authenticate": f'Bearer {REALM}, error="insufficient_scope", '
                             'error_description="personal access tokens cannot manage authentication"'})


def insufficient_scope(scope: str):
    """403 with RFC 6750's insufficient_scope, naming the scope that would do."""
    return ApiError(403, f"This token lacks the scope '{scope}'.", error="insufficient_scope",
                    headers={"WWW-Authenticate": f'Bearer {REALM}, error="insufficient_scope", '
                             f'scope="{scope}"'})


def check(pat) -> None:
    """Let the request through only if the PAT `pat` (accounts.personal_tokens.Found) covers it."""
    scope = needed_scope(request.endpoint, request.blueprint, request.method)
    if scope is None:
        raise refused()
    if request.blueprint == "users" and request.method not in READ_METHODS:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and any(name in body for name in AUTHENTICATION_FIELDS):
            raise refused()
    if scope != ANY and not pat.has(scope):
        raise insufficient_scope(scope)
