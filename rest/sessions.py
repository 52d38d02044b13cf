"""Sessions: refresh (rotation), logout, logout everywhere, and listing/revoking sessions.

A session is a refresh family (accounts/sessions.py). Contracts:
- POST /refresh: the refresh token in the JSON body {"refresh_token": ...},
  or, when the body has none, in `Authorization: Bearer|JWT <token>` (the
  body wins, so clients that add the access token to every request still
  work). 200 with the body of /auth, or 401 invalid_token.
- POST /logout, POST /logout-all: access token required; 204.
- GET /sessions[?user_id=] (user_id: admins only), DELETE /sessions/<id>:
  the caller's own sessions, any user's for an admin; another user's is a 404.
"""
import re

from flask import Blueprint, current_app, g, jsonify, request

from accounts import auth, revocation, sessions, tokens, users
from rest import dpop_proofs, inputs, rate_limits
from rest.errors import REALM, ApiError, invalid_token
from rest.responses import no_content, no_store, utc_iso
from rest.token_auth import authorization_token, current_user, token_body, token_required

bp = Blueprint("sessions", __name__)

_FAMILY_ID = re.compile(r"[0-9a-f]{32}")


@bp.post("/refresh")
@rate_limits.refresh_limit
def refresh_tokens():
    """Exchange a refresh token for a new access and refresh token (single use)."""
    try:
        payload = tokens.decode(_presented_refresh_token(), tokens.REFRESH)
    except tokens.TokenError as exc:
        raise invalid_token(str(exc)) from None
    user = auth.identity(payload)
    if user is None:
        raise invalid_token("User does not exist or the token was revoked", error="Invalid JWT")
    # Before the rotation spends the token: a bound refresh token needs a proof by its key.
    cnf = payload.get("cnf")
    dpop_proofs.token_request_key(bound_to=cnf.get("jkt") if isinstance(cnf, dict) else None)
    family = sessions.rotate(payload)  # RefreshRejected: the error module's 401 invalid_token
    revocation.maybe_purge()
    return no_store(jsonify(token_body(user, family)))


def _presented_refresh_token():
    """The raw refresh token: from the JSON body if it has one, else the Authorization header."""
    if request.get_data(cache=True):
        body = inputs.json_object()
        inputs.only_fields(body, ("refresh_token",))
        token = inputs.optional_string(body, "refresh_token", current_app.config["MAX_CONTENT_LENGTH"])
        if token:
            return token
    token = authorization_token()
    if token is None:
        raise ApiError(401, "Request does not contain a refresh token",
                       error="Authorization Required",
                       headers={"WWW-Authenticate": f"Bearer {REALM}"})
    return token


@bp.post("/logout")
@token_required
def logout():
    """Revoke the presented access token and its session."""
    revocation.logout(g.token, current_user.id)
    return no_content()


@bp.post("/logout-all")
@token_required
def logout_all():
    """Revoke every token and session of the caller."""
    users.revoke_everything(current_user.id)
    return no_content()


@bp.get("/sessions")
@token_required
def list_sessions():
    """The live sessions of the caller (or, for an admin, of ?user_id=)."""
    user_id = _sessions_owner()
    current = g.token.get("fam") if user_id == current_user.id else None
    return jsonify(sessions=[_session_json(row, current) for row in sessions.live(user_id)])


def _sessions_owner():
    """The user whose sessions are listed: the caller, or ?user_id= for an admin."""
    user_id = inputs.user_id_arg()
    if user_id is None or user_id == current_user.id:
        return current_user.id
    if not current_user.is_admin:
        raise ApiError(403, "Only an admin may list another user's sessions.", field="user_id")
    if users.get(user_id) is None:
        raise ApiError(404, "No such user.", field="user_id")
    return user_id


def _session_json(row, current_family):
    return {
        "id": row["id"],
        "created": utc_iso(row["created"]),
        "last_used": utc_iso(row["last_used"]),
        "user_agent": row["user_agent"],
        "ip": row["ip"],
        "expires_at": utc_iso(row["expires_at"]),
        "current": row["id"] == current_family,
    }


@bp.delete("/sessions/<session_id>")
@token_required
def revoke_session(session_id):
    """Revoke one live session of the caller (any user's for an admin)."""
    owner = None if current_user.is_admin else current_user.id
    if not _FAMILY_ID.fullmatch(session_id) or not sessions.revoke_live(session_id, owner):
        raise ApiError(404, "No such session.")
    return no_content()
