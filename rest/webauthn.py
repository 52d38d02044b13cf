"""Passkeys over HTTP: register, list, rename, delete, and log in with one.

Options are WebAuthn's JSON (feed them to PublicKeyCredential.parse*OptionsFromJSON()),
and every verify takes the object the browser's `credential.toJSON()` returns.
- POST /webauthn/register/options, POST /webauthn/register/verify (body: the
  credential, plus an optional "name") -> 201 the passkey, and ten
  `recovery_codes` when it is the account's first factor.
- GET /webauthn/credentials, PATCH|DELETE /webauthn/credentials/<id>
  (deleting needs a recent login: it turns a factor off).
- POST /webauthn/login/options, POST /webauthn/login/verify: a passkey alone
  (discoverable credential, user verification required) -> the token body, amr ["hwk"].
- POST /webauthn/mfa/options {"mfa_token"}: options for the second step of a
  password login (then POST /auth/mfa with "credential").
- POST /webauthn/reauth/options: options for POST /auth/reauth with "credential".
"""
from flask import Blueprint, jsonify, url_for

from accounts import events, mfa, passkeys, recovery_codes, users
from accounts.errors import TokenError
from rest import inputs, rate_limits
from rest.errors import ApiError
from rest.factors import recent_auth_required
from rest.responses import no_content, no_store, utc_iso
from rest.token_auth import current_user, token_body, token_required

bp = Blueprint("webauthn", __name__)


def passkey_json(row):
    return {"id": row["id"], "name": row["name"], "created": utc_iso(row["created"]),
            "last_used": utc_iso(row["last_used"]) if row["last_used"] else None}


def _credential(body):
    """The credential object from a verify body (all of it but "name")."""
    credential = {k: v for k, v in body.items() if k != "name"}
    if not credential:
        raise ApiError(400, "Send the object credential.toJSON() returns.", field="credential")
    return credential


@bp.post("/webauthn/register/options")
@token_required
def registration_options():
    """Options for navigator.credentials.create() (a discoverable passkey)."""
    return no_store(jsonify(passkeys.registration_options(current_user.id, current_user.username)))


@bp.post("/webauthn/register/verify")
@token_required
def register():
    """Store the passkey the browser created; 201 with it (and recovery codes when it is the first factor)."""
    body = inputs.json_object()
    first = not mfa.required(current_user.id)
    row = passkeys.register(current_user.id, _credential(body), body.get("name"))
    answer = passkey_json(row)
    if first or not recovery_codes.remaining(current_user.id):
        answer["recovery_codes"] = recovery_codes.regenerate(current_user.id)
    response = no_store(jsonify(answer))
    response.status_code = 201
    response.headers["Location"] = url_for("webauthn.list_credentials")
    return response


@bp.get("/webauthn/credentials")
@token_required
def list_credentials():
    """The caller's passkeys (names and dates, never key material)."""
    return jsonify(credentials=[passkey_json(r) for r in passkeys.credentials(current_user.id)])


@bp.patch("/webauthn/credentials/<id:credential_id>")
@token_required
def rename(credential_id):
    """Rename one of the caller's passkeys: {"name"}."""
    body = inputs.json_object()
    inputs.only_fields(body, ("name",))
    return jsonify(passkey_json(passkeys.rename(current_user.id, credential_id, body.get("name"))))


@bp.delete("/webauthn/credentials/<id:credential_id>")
@token_required
@recent_auth_required
def delete(credential_id):
    """Delete one of the caller's passkeys; 204."""
    mfa.remove_passkey(current_user.id, credential_id)
    return no_content()


@bp.post("/webauthn/login/options")
@rate_limits.login_limit
def login_options():
    """Options for navigator.credentials.get() with any passkey of this site."""
    return no_store(jsonify(passkeys.authentication_options(passkeys.LOGIN)))


@bp.post("/webauthn/login/verify")
@rate_limits.login_limit
def login():
    """Log in with a passkey alone: the token body, amr ["hwk"]; 401 when it does not verify."""
    try:
        user_id = passkeys.authenticate(_credential(inputs.json_object()), passkeys.LOGIN)
    except passkeys.AssertionRejected as exc:
        raise ApiError(401, exc.message, error="Bad Request") from None
    user = users.to_log_in(user_id)
    if user is None:
        raise ApiError(401, passkeys.REJECTED, error="Bad Request")
    events.record_soon("login_succeeded", user.id, detail="passkey")  # a password login's has none
    return no_store(jsonify(token_body(user, amr=[mfa.AMR[mfa.PASSKEY]])))


@bp.post("/webauthn/mfa/options")
@rate_limits.login_limit
def second_step_options():
    """Options for the second step of a password login: {"mfa_token"} -> the user's passkeys only."""
    body = inputs.json_object()
    inputs.only_fields(body, ("mfa_token",))
    try:
        user_id = mfa.pending_user(inputs.present_string(body, "mfa_token"))
    except TokenError as exc:
        raise ApiError(401, exc.message, error="Bad Request") from None
    return no_store(jsonify(passkeys.authentication_options(passkeys.SECOND_FACTOR, user_id)))


@bp.post("/webauthn/reauth/options")
@token_required
def reauth_options():
    """Options for re-authenticating with one of the caller's passkeys (POST /auth/reauth)."""
    return no_store(jsonify(passkeys.authentication_options(passkeys.REAUTH, current_user.id)))
