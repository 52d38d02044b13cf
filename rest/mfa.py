"""Second factors: /mfa (TOTP, recovery codes), the second login step and re-authentication.

- GET /mfa: which factors the caller has on.
- POST /mfa/totp: start enrolling an authenticator app -> {secret, otpauth_uri, qr_svg}.
- POST /mfa/totp/confirm {"code"}: turn it on -> {"recovery_codes": [ten, shown once]}.
- DELETE /mfa/totp {"password", "code" | "recovery_code"}: turn it off (recent login needed).
- POST /mfa/recovery-codes: ten new codes, the old ones die (recent login needed).
- POST /auth/mfa {"mfa_token", "code" | "recovery_code" | "credential"}: the second
  step of a login -> the token body, amr ["pwd", "otp" | "rc" | "hwk"].
- POST /auth/reauth {"password" | "code" | "recovery_code" | "credential"}: prove
  yourself again -> a new access token of the same session with auth_time now.
"""
import time

from flask import Blueprint, current_app, g, jsonify

from accounts import auth, mfa, passkeys, session_auth, tokens, totp, users
from accounts.errors import Conflict, TokenError
from rest import inputs, rate_limits
from rest.errors import ApiError
from rest.factors import bad_code, recent_auth_required
from rest.responses import no_content, no_store
from rest.token_auth import current_user, token_body, token_required

bp = Blueprint("mfa", __name__)

CODE_MAX = 64


@bp.get("/mfa")
@token_required
def factors():
    """The caller's factors: {"methods", "totp", "passkeys", "recovery_codes_left"}."""
    return jsonify(methods=mfa.methods(current_user.id), **mfa.summary(current_user.id))


@bp.post("/mfa/totp")
@token_required
def start_totp():
    """Start (or restart) enrolling an authenticator app; the secret is shown this once."""
    enrollment = totp.begin(current_user.id, current_user.username)
    return no_store(jsonify(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri,
                            qr_svg=enrollment.qr_svg))


@bp.post("/mfa/totp/confirm")
@token_required
def confirm_totp():
    """Turn the authenticator app on with its current code; answers ten recovery codes."""
    body = inputs.json_object()
    inputs.only_fields(body, ("code",))
    code = inputs.present_string(body, "code")
    mfa.claim_account(current_user.id)  # guessing the first code is throttled too
    codes = mfa.enable_totp(current_user.id, code)
    mfa.clear_account(current_user.id)
    return no_store(jsonify(recovery_codes=codes))


def _password_ok(password) -> bool:
    return auth.authenticate(current_user.username, password) is not None


@bp.delete("/mfa/totp")
@token_required
@recent_auth_required
def stop_totp():
    """Turn the authenticator app off: needs the password and a current code (or a recovery code)."""
    body = inputs.json_object()
    inputs.only_fields(body, ("password", "code", "recovery_code"))
    password = inputs.present_string(body, "password")
    code = inputs.optional_string(body, "code", CODE_MAX)
    recovery = inputs.optional_string(body, "recovery_code", CODE_MAX)
    if code is None and recovery is None:
        raise ApiError(400, "Send 'code' (from the app) or 'recovery_code'.", field="code")
    if not totp.is_on(current_user.id):
        raise ApiError(404, "No authenticator app is set up.")
    if not _password_ok(password):
        raise ApiError(403, "'password' is not correct.", field="password")
    if mfa.verify_code(current_user.id, code, recovery) is None:
        raise bad_code()
    mfa.turn_off_totp(current_user.id)
    return no_content()


@bp.post("/mfa/recovery-codes")
@token_required
@recent_auth_required
def new_recovery_codes():
    """Ten new recovery codes; every earlier code stops working."""
    if not mfa.required(current_user.id):
        raise Conflict("Turn on a second factor first: recovery codes stand in for one.")
    return no_store(jsonify(recovery_codes=mfa.new_recovery_codes(current_user.id)))


# --- the second step of a login -----------------------------------------------------

STEP_FIELDS = ("mfa_token", "code", "recovery_code", "credential")


def _one_factor(body):
    """(code, recovery_code, credential) with exactly one of them sent; 400 otherwise."""
    code = inputs.optional_string(body, "code", CODE_MAX)
    recovery = inputs.optional_string(body, "recovery_code", CODE_MAX)
    credential = body.get("credential")
    if credential is not None and not isinstance(credential, dict):
        raise ApiError(400, "'credential' must be the object credential.toJSON() returns.",
                       field="credential")
    if sum(v is not None for v in (code, recovery, credential)) != 1:
        raise ApiError(400, "Send exactly one of 'code', 'recovery_code' or 'credential'.")
    return code, recovery, credential


def _check_factor(user_id, code, recovery, credential, purpose):
    """The amr value of the factor sent, or the 401 for a wrong one (attempts already claimed)."""
    if credential is not None:
        try:
            passkeys.authenticate(credential, purpose, user_id)
        except passkeys.AssertionRejected as exc:
            raise ApiError(401, exc.message, error="Bad Request") from None
        return mfa.AMR[mfa.PASSKEY]
    method = mfa.check_code(user_id, code, recovery)
    if method is None:
        raise bad_code()
    return method


def _method(code, recovery):
    """The factor sent, as GET /mfa names it (the detail of a second-step event)."""
    return mfa.TOTP if code is not None else mfa.RECOVERY_CODE if recovery is not None else mfa.PASSKEY


def _failure(code, recovery):
    """The reason class of a refused second step (never the code)."""
    return {mfa.TOTP: "bad_code", mfa.RECOVERY_CODE: "bad_recovery_code",
            mfa.PASSKEY: "bad_passkey"}[_method(code, recovery)]


@bp.post("/auth/mfa")
@rate_limits.login_limit
def second_step():
    """Finish a login with a second factor; answers /auth's token body."""
    body = inputs.json_object()
    inputs.only_fields(body, STEP_FIELDS)
    token = inputs.present_string(body, "mfa_token")
    code, recovery, credential = _one_factor(body)
    try:
        challenge = mfa.claim(token)  # Throttled / TokenError
    except TokenError as exc:
        raise ApiError(401, exc.message, error="Bad Request") from None
    try:
        method = _check_factor(challenge.user_id, code, recovery, credential, passkeys.SECOND_FACTOR)
    except ApiError:
        mfa.login_failed(challenge.user_id, _failure(code, recovery))
        raise
    try:
        mfa.complete(challenge)
    except TokenError as exc:
        raise ApiError(401, exc.message, error="Bad Request") from None
    user = users.to_log_in(challenge.user_id)
    if user is None:  # deleted between the two steps
        raise ApiError(401, mfa.BAD_TOKEN, error="Bad Request")
    mfa.login_succeeded(user.id, _method(code, recovery))
    return no_store(jsonify(token_body(user, amr=[challenge.first_amr, method])))


# --- re-authentication ----------------------------------------------------------------

@bp.post("/auth/reauth")
@token_required
def reauthenticate():
    """Prove yourself again; answers a new access token of this session with auth_time now."""
    body = inputs.json_object()
    inputs.only_fields(body, ("password", "code", "recovery_code", "credential"))
    family = g.token.get("fam")
    if family is None:
        raise ApiError(400, "This token has no session to re-authenticate: log in again.")
    if "password" in body:
        if len(body) != 1:
            raise ApiError(400, "Send 'password' alone, or one second factor.")
        if not _password_ok(inputs.present_string(body, "password")):
            raise ApiError(401, "Invalid credentials", error="Bad Request")
        method = "pwd"
    else:
        code, recovery, credential = _one_factor(body)
        mfa.claim_account(current_user.id)
        method = _check_factor(current_user.id, code, recovery, credential, passkeys.REAUTH)
        mfa.clear_account(current_user.id)
    claims = session_auth.reauthenticated(family, method)
    exp = g.token["exp"]  # the session's access tokens never outlive what the old one allowed
    ttl = max(1, min(current_app.config["JWT_ACCESS_TTL"], exp - int(time.time())))
    # A DPoP-bound token is replaced by one bound to the same key, never by a bearer token.
    bound = {"cnf": g.token["cnf"]} if "cnf" in g.token else {}
    user = current_user._get_current_object()
    access = tokens.issue(user, tokens.ACCESS, ttl, fam=family, **claims, **bound)
    return no_store(jsonify(access_token=access, token_type="DPoP" if bound else "Bearer",
                            expires_in=ttl, amr=claims["amr"], auth_time=claims["auth_time"]))
