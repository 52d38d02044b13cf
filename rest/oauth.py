"""OAuth endpoints for gateways: introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414).

- POST /introspect (form `token`, optional `token_type_hint`): for callers
  holding a personal access token with the `introspect` scope (only an admin
  can grant it, so only an admin's gateway can ask about anyone's tokens).
  A live access, refresh or personal token: {"active": true, "sub",
  "username", "scope", "exp", "iat", "token_type", "token_use", "cnf"?...};
  anything else: exactly {"active": false}. Never cached.
- POST /revoke (form `token`, optional `token_type_hint`): possessing a token
  is the proof that one may revoke it, as for OAuth public clients: no other
  credential is asked. A refresh token ends its session, an access token its
  jti, a personal token itself. 200 with an empty body whatever the token
  was, so the answer tells a guesser nothing.
- GET /.well-known/oauth-authorization-server: where the above are, the key
  set, the token endpoint (/auth) and the DPoP algorithms.
"""
from flask import Blueprint, current_app, g, jsonify, request, url_for

from accounts import auth, dpop, personal_tokens, revocation, sessions, tokens
from rest import scopes
from rest.errors import ApiError
from rest.responses import no_store
from rest.token_auth import token_required

bp = Blueprint("oauth", __name__)

HINTS = {"access_token": tokens.ACCESS, "refresh_token": tokens.REFRESH}
PAT_HINT = "personal_access_token"
FULL_SCOPE = " ".join(scope for scope in personal_tokens.SCOPES
                      if scope not in personal_tokens.ADMIN_ONLY_SCOPES)
INACTIVE = {"active": False}


def _form_token():
    """The form's `token` (400 invalid_request without one) and its `token_type_hint`."""
    if request.mimetype not in ("application/x-www-form-urlencoded", ""):
        raise ApiError(415, "Send the token form-encoded (Content-Type: application/x-www-form-urlencoded).")
    token = request.form.get("token")
    if not token:
        raise ApiError(400, "The form field 'token' is required.", error="invalid_request", field="token")
    if len(token) > current_app.config["JWT_MAX_LENGTH"]:
        return None, None  # no token we issue is this long
    return token, request.form.get("token_type_hint")


def _jwt_kinds(hint):
    """Access then refresh, or the hinted kind first."""
    first = HINTS.get(hint, tokens.ACCESS)
    return [first] + [kind for kind in (tokens.ACCESS, tokens.REFRESH) if kind != first]


def _decoded(token, hint):
    """(kind, payload) of a JWT we issued and that has not expired, else (None, None)."""
    for kind in _jwt_kinds(hint):
        try:
            return kind, tokens.decode(token, kind)
        except tokens.TokenError:
            continue
    return None, None


# --- introspection ----------------------------------------------------------------------

def _pat_answer(token):
    found = personal_tokens.lookup(token, touch=False)
    if found is None:
        return INACTIVE
    return {"active": True, "sub": str(found.user_id), "username": found.username,
            "scope": " ".join(found.scopes), "exp": found.expires, "iat": found.created,
            "token_type": "Bearer", "token_use": "personal"}


def _jwt_answer(token, hint):
    kind, payload = _decoded(token, hint)
    if payload is None:
        return INACTIVE
    user = auth.identity(payload)
    if user is None:
        return INACTIVE
    if kind == tokens.REFRESH and not sessions.is_current(payload.get("fam"), payload["jti"]):
        return INACTIVE  # already exchanged: it can never be used again
    answer = {"active": True, "sub": payload["sub"], "username": user.username,
              "exp": payload["exp"], "iat": payload["iat"], "jti": payload["jti"],
              "token_use": kind}
    cnf = payload.get("cnf")
    if kind == tokens.ACCESS:
        answer["scope"] = FULL_SCOPE
        answer["token_type"] = "DPoP" if cnf else "Bearer"
    for claim in ("iss", "aud"):
        if claim in payload:
            answer[claim] = payload[claim]
    if cnf:
        answer["cnf"] = cnf
    return answer


@bp.post("/introspect")
@token_required
def introspect():
    """RFC 7662: is this token live, and whose is it? Callers need a PAT with `introspect`."""
    if g.get("pat") is None:
        raise scopes.insufficient_scope("introspect")  # a login's token has no scopes
    token, hint = _form_token()
    if token is None:
        answer = INACTIVE
    elif personal_tokens.looks_like(token):
        answer = _pat_answer(token)
    else:
        answer = _jwt_answer(token, hint)
    return no_store(jsonify(answer))


# --- revocation --------------------------------------------------------------------------

@bp.post("/revoke")
def revoke():
    """RFC 7009: revoke the presented token; 200 whatever it was."""
    token, hint = _form_token()
    if token is not None:
        if personal_tokens.looks_like(token):
            personal_tokens.revoke(token)
        else:
            _revoke_jwt(token, hint)
    response = no_store(current_app.response_class(status=200))
    response.headers.pop("Content-Type", None)
    return response


def _revoke_jwt(token, hint):
    kind, payload = _decoded(token, hint)
    if payload is None:
        return  # forged, expired or not ours: nothing to revoke
    user_id = int(payload["sub"])
    if kind == tokens.REFRESH:
        if payload.get("fam"):
            sessions.revoke(payload["fam"], user_id)
    else:
        revocation.revoke_access(payload, user_id)


# --- metadata ----------------------------------------------------------------------------

@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    """RFC 8414 authorization server metadata: one URL a gateway can be pointed at."""
    issuer = current_app.config["JWT_ISSUER"] or request.url_root.rstrip("/")
    document = {
        "issuer": issuer,
        "jwks_uri": url_for("jwks.jwks_document", _external=True),
        "token_endpoint": url_for("login.create_token", _external=True),
        "introspection_endpoint": url_for("oauth.introspect", _external=True),
        "revocation_endpoint": url_for("oauth.revoke", _external=True),
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "scopes_supported": list(personal_tokens.SCOPES),
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "service_documentation": url_for("openapi.openapi_document", _external=True),
    }
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
