"""Personal access tokens at /tokens: create (shown once), list, delete.

- POST /tokens {"name", "scopes": [...], "expires_in"} -> 201 + Location, the
  token in the body this once; `expires_in` (seconds) defaults to
  PAT_DEFAULT_TTL and may not exceed PAT_MAX_TTL.
- GET /tokens[?user_id=] -> the caller's live tokens (an admin: anyone's):
  id, name, scopes, created, expires, last_used, last_used_ip; never the token.
- GET /tokens/<id> -> one of them; DELETE /tokens/<id> -> 204; another user's token is a 404 unless an admin asks.
Only a login's access token may manage tokens: a PAT gets 403 (rest/scopes.py).
"""
from flask import Blueprint, current_app, jsonify, url_for

from accounts import personal_tokens, users
from rest import inputs
from rest.errors import ApiError
from rest.factors import recent_auth_required
from rest.responses import no_content, no_store, utc_iso
from rest.token_auth import current_user, token_required

bp = Blueprint("personal_tokens", __name__)
FIELDS = ("name", "scopes", "expires_in")


def token_json(row: dict) -> dict:
    """A token's public description (the token itself is never stored, so never shown)."""
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "name": row["name"],
        "scopes": row["scopes"].split(),
        "created": utc_iso(row["created"]),
        "expires": utc_iso(row["expires_at"]),
        "last_used": utc_iso(row["last_used_at"]) if row["last_used_at"] else None,
        "last_used_ip": row["last_used_ip"],
    }


def _expires_in(body) -> int:
    config = current_app.config
    value = body.get("expires_in", config["PAT_DEFAULT_TTL"])
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "'expires_in' must be a whole number of seconds.", field="expires_in")
    if not 60 <= value <= config["PAT_MAX_TTL"]:
        raise ApiError(422, f"'expires_in' must be between 60 and {config['PAT_MAX_TTL']} seconds.",
                       field="expires_in")
    return value


def _name(body) -> str:
    name = inputs.optional_string(body, "name", personal_tokens.NAME_MAX)
    if name is None or not name.strip():
        raise ApiError(400, "'name' is required: say what the token is for.", field="name")
    return name.strip()


@bp.post("/tokens")
@token_required
@recent_auth_required  # a token that outlives the session is minted only after a recent login
def create_token():
    """Create a personal access token for the caller; the token is in this response only."""
    body = inputs.json_object()
    inputs.only_fields(body, FIELDS)
    row, token = personal_tokens.create(current_user.id, current_user.is_admin, _name(body),
                                        body.get("scopes"), _expires_in(body))
    answer = token_json(row)
    answer["token"] = token
    response = no_store(jsonify(answer))
    response.status_code = 201
    response.headers["Location"] = url_for("personal_tokens.get_token", token_id=row["id"])
    return response


@bp.get("/tokens")
@token_required
def list_tokens():
    """The live tokens of the caller, or of ?user_id= for an admin."""
    user_id = inputs.user_id_arg()
    if user_id is None or user_id == current_user.id:
        user_id = current_user.id
    elif not current_user.is_admin:
        raise ApiError(403, "Only an admin may list another user's tokens.", field="user_id")
    elif users.get(user_id) is None:
        raise ApiError(404, "No such user.", field="user_id")
    return no_store(jsonify(tokens=[token_json(row) for row in personal_tokens.live(user_id)]))


@bp.get("/tokens/<id:token_id>")
@token_required
def get_token(token_id):
    """One live token's description: the caller's own, or any user's for an admin."""
    row = personal_tokens.get(token_id, None if current_user.is_admin else current_user.id)
    if row is None:
        raise ApiError(404, "No such token.")
    return no_store(jsonify(token_json(row)))


@bp.delete("/tokens/<id:token_id>")
@token_required
def delete_token(token_id):
    """Delete one of the caller's tokens (any user's for an admin); 404 when there is none."""
    owner = None if current_user.is_admin else current_user.id
    if personal_tokens.delete(token_id, owner) is None:
        raise ApiError(404, "No such token.")
    return no_content()
