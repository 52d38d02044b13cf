"""Passkeys (WebAuthn, with py_webauthn): the `webauthn_credential` and `webauthn_challenge` tables.

The relying party is PUBLIC_URL: its host is the RP ID and scheme://host[:port]
the only origin accepted. Options are answered in WebAuthn's JSON form
(PublicKeyCredentialCreationOptionsJSON / ...RequestOptionsJSON) and the
browser's `credential.toJSON()` comes back to verify. Every challenge is
stored server side, lives CHALLENGE_TTL seconds and is deleted by the one
verification that finds it (compare-and-delete): single use. The challenge
is found again from the clientDataJSON the authenticator signed, so the
client carries no extra handle.

An assertion must move the credential's sign counter forward (unless the
authenticator keeps none: both 0); the new counter is stored with a
compare-and-set, so a cloned authenticator replaying an old counter loses.
User handles are the user id as ASCII digits: the credential row names the
user anyway, and a handle is checked against it.
"""
import base64
import json
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import webauthn
from flask import current_app
from webauthn.helpers import (bytes_to_base64url, options_to_json_dict,
                              parse_authentication_credential_json,
                              parse_registration_credential_json)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, AuthenticatorTransport,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)

import db
from accounts import events
from accounts.errors import Conflict, Forbidden, NotFound, RuleBroken

log = logging.getLogger(__name__)

CHALLENGE_TTL = 300  # seconds
TIMEOUT_MS = 120_000
NAME_MAX = 64
MAX_PER_USER = 20
REGISTER, LOGIN, SECOND_FACTOR, REAUTH = "register", "login", "mfa", "reauth"
REJECTED = "The passkey could not be verified."


class AssertionRejected(Forbidden):
    """An assertion (passkey login or second step) failed; the message is safe to show."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str


def relying_party() -> RelyingParty:
    """The RP from PUBLIC_URL and MFA_ISSUER."""
    config = current_app.config
    parts = urlsplit(config["PUBLIC_URL"])
    return RelyingParty(parts.hostname, f"{parts.scheme}://{parts.netloc}", config["MFA_ISSUER"])


# --- challenges -------------------------------------------------------------------

INSERT_CHALLENGE = """
    INSERT INTO webauthn_challenge (challenge, user_id, purpose, expires_at)
    VALUES (%s, %s, %s, NOW() + INTERVAL %s SECOND)"""
# Compare-and-delete: exactly one verification consumes a challenge.
TAKE_CHALLENGE = """
    DELETE FROM webauthn_challenge
    WHERE challenge = %s AND purpose = %s AND expires_at > NOW()
      AND (user_id <=> %s)"""
PURGE_CHALLENGES = "DELETE FROM webauthn_challenge WHERE expires_at < NOW() LIMIT 1000"


def _new_challenge(user_id: int | None, purpose: str) -> bytes:
    challenge = secrets.token_bytes(32)
    db.execute(INSERT_CHALLENGE, (challenge, user_id, purpose, CHALLENGE_TTL))
    if secrets.randbelow(64) == 0:
        purge()  # now and then: options asked for and never used leave a row each
    return challenge


def _signed_challenge(client_data_json: bytes) -> bytes:
    """The challenge inside clientDataJSON (verified later against what we stored)."""
    try:
        value = json.loads(client_data_json)["challenge"]
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, KeyError, TypeError, RecursionError):
        # RecursionError: JSON nested thousands deep inside the base64, where the
        # request body's depth cap (rest/json_body.py) cannot see it.
        raise AssertionRejected(REJECTED) from None


def _take_challenge(client_data_json: bytes, purpose: str, user_id: int | None) -> bytes:
    challenge = _signed_challenge(client_data_json)
    if db.execute(TAKE_CHALLENGE, (challenge, purpose, user_id)).rowcount != 1:
        raise AssertionRejected("The challenge is unknown, used or expired: ask for new options.")
    return challenge


def purge() -> int:
    """Delete expired challenges; returns how many."""
    return db.execute(PURGE_CHALLENGES).rowcount


# --- credentials ------------------------------------------------------------------

LIST = """
    SELECT id, name, created, last_used FROM webauthn_credential
    WHERE user_id = %s ORDER BY id LIMIT %s"""
IDS_OF_USER = "SELECT credential_id, transports FROM webauthn_credential WHERE user_id = %s"
COUNT = "SELECT COUNT(*) AS n FROM webauthn_credential WHERE user_id = %s"
ANY = "SELECT 1 FROM webauthn_credential WHERE user_id = %s"  # inside EXISTS (accounts/mfa.py)
INSERT = """
    INSERT INTO webauthn_credential (user_id, credential_id, public_key, sign_count, name, transports)
    VALUES (%s, %s, %s, %s, %s, %s)"""
BY_CREDENTIAL_ID = """
    SELECT id, user_id, public_key, sign_count FROM webauthn_credential WHERE credential_id = %s"""
ONE = "SELECT id, name, created, last_used FROM webauthn_credential WHERE id = %s AND user_id = %s"
RENAME = "UPDATE webauthn_credential SET name = %s WHERE id = %s AND user_id = %s"
DELETE = "DELETE FROM webauthn_credential WHERE id = %s AND user_id = %s"
DELETE_ALL = "DELETE FROM webauthn_credential WHERE user_id = %s"
# The counter only moves forward (0 -> 0 for authenticators that keep none).
ADVANCE = """
    UPDATE webauthn_credential SET sign_count = %s, last_used = NOW()
    WHERE id = %s AND (sign_count < %s OR (sign_count = 0 AND %s = 0))"""


def _descriptors(user_id: int) -> list[PublicKeyCredentialDescriptor]:
    found = []
    for row in db.many(IDS_OF_USER, (user_id,)):
        transports = []
        for name in (row["transports"] or "").split():
            try:
                transports.append(AuthenticatorTransport(name))
            except ValueError:
                pass  # a transport this library version does not know
        found.append(PublicKeyCredentialDescriptor(id=bytes(row["credential_id"]), transports=transports or None))
    return found


def count(user_id: int) -> int:
    """How many passkeys the user has."""
    return db.one(COUNT, (user_id,))["n"]


def credentials(user_id: int) -> list[dict]:
    """The user's passkeys: id, name, created, last_used (never key material)."""
    return db.many(LIST, (user_id, MAX_PER_USER))


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RuleBroken("'name' must be a non-empty string.", field="name")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise RuleBroken(f"'name' must be at most {NAME_MAX} characters.", field="name")
    return name


def registration_options(user_id: int, username: str) -> dict:
    """PublicKeyCredentialCreationOptionsJSON for a new passkey of the user (a discoverable one)."""
    if count(user_id) >= MAX_PER_USER:
        raise Conflict(f"At most {MAX_PER_USER} passkeys per account: delete one first.")
    rp = relying_party()
    options = webauthn.generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_name=username, user_display_name=username,
        user_id=str(user_id).encode(), challenge=_new_challenge(user_id, REGISTER), timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(user_id),
    )
    return options_to_json_dict(options)


def register(user_id: int, credential: dict, name: object = None) -> dict:
    """Verify a registration response (the browser's credential.toJSON()) and store the passkey.

    Raises RuleBroken (field "credential") when it does not verify, Conflict
    when the credential is already registered.
    """
    name = "Passkey" if name is None else _name(name)
    try:
        parsed = parse_registration_credential_json(credential)
        challenge = _take_challenge(parsed.response.client_data_json, REGISTER, user_id)
        rp = relying_party()
        verified = webauthn.verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin)
    except (WebAuthnException, AssertionRejected) as exc:
        raise RuleBroken(f"The passkey was not registered: {exc}", field="credential") from None
    transports = " ".join(t.value for t in (parsed.response.transports or []))[:255] or None
    try:
        with db.transaction():  # the passkey and its security event, together
            result = db.execute(INSERT, (user_id, verified.credential_id, verified.credential_public_key,
                                         verified.sign_count, name, transports))
            events.record("passkey_added", user_id)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise Conflict("This passkey is already registered.") from None
        raise
    return db.one(ONE, (result.lastrowid, user_id))


def rename(user_id: int, credential_id: int, name: object) -> dict:
    """Rename one of the user's passkeys; NotFound when it is not theirs."""
    name = _name(name)
    if db.one(ONE, (credential_id, user_id)) is None:
        raise NotFound("No such passkey.")
    db.execute(RENAME, (name, credential_id, user_id))
    return db.one(ONE, (credential_id, user_id))


def delete(user_id: int, credential_id: int) -> None:
    """Delete one of the user's passkeys; NotFound when it is not theirs."""
    if db.execute(DELETE, (credential_id, user_id)).rowcount != 1:
        raise NotFound("No such passkey.")


def remove_all(user_id: int) -> None:
    """Delete every passkey of the user (an operator's reset)."""
    db.execute(DELETE_ALL, (user_id,))


# --- assertions ---------------------------------------------------------------------

def authentication_options(purpose: str, user_id: int | None = None) -> dict:
    """PublicKeyCredentialRequestOptionsJSON.

    Without a user (a passkey login) the browser offers any discoverable
    credential for this RP and user verification is required; with one (a
    second step, re-authentication) only that user's credentials are allowed.
    """
    rp = relying_party()
    allowed = _descriptors(user_id) if user_id is not None else []
    if user_id is not None and not allowed:
        raise NotFound("This account has no passkey.")
    options = webauthn.generate_authentication_options(
        rp_id=rp.id, challenge=_new_challenge(user_id, purpose), timeout=TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=(UserVerificationRequirement.REQUIRED if user_id is None
                           else UserVerificationRequirement.PREFERRED))
    return options_to_json_dict(options)


def authenticate(credential: object, purpose: str, user_id: int | None = None) -> int:
    """Verify an assertion and return the user id it proves.

    `user_id` None: a passkey login (the credential names the user; user
    verification required). Otherwise the assertion must be by one of that
    user's credentials. Raises AssertionRejected for anything that does not
    verify: unknown, used or expired challenge, another user's credential,
    wrong origin or RP ID, bad signature, counter not moving forward.
    """
    try:
        parsed = parse_authentication_credential_json(credential)
    except WebAuthnException:
        raise AssertionRejected(REJECTED) from None
    challenge = _take_challenge(parsed.response.client_data_json, purpose, user_id)
    row = db.one(BY_CREDENTIAL_ID, (parsed.raw_id,))
    if row is None or (user_id is not None and row["user_id"] != user_id):
        raise AssertionRejected(REJECTED)
    handle = parsed.response.user_handle
    if handle is not None and handle != str(row["user_id"]).encode():
        raise AssertionRejected(REJECTED)
    rp = relying_party()
    try:
        verified = webauthn.verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=bytes(row["public_key"]),
            credential_current_sign_count=row["sign_count"],
            require_user_verification=user_id is None)
    except WebAuthnException as exc:
        log.info("passkey assertion refused for credential %s: %s", row["id"], exc)
        raise AssertionRejected(REJECTED) from None
    new = verified.new_sign_count
    if db.execute(ADVANCE, (new, row["id"], new, new)).rowcount != 1:
        raise AssertionRejected(REJECTED)  # a concurrent assertion moved the counter first
    return row["user_id"]


def credential_id_text(raw: bytes) -> str:
    """base64url of a raw credential id (how browsers name it)."""
    return bytes_to_base64url(raw)
