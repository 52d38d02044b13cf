"""Second factors as a whole: which ones an account has, and logins waiting for one.

Tables: `mfa_challenge` (a login whose password was right, waiting for its
second step: the client holds the `mfa_token`, only its SHA-256 is stored)
and `mfa_failure` (failed second steps per account).

The second step is throttled twice. Each mfa_token allows MAX_ATTEMPTS codes
and then dies, and lives MFA_TOKEN_TTL seconds. Each account has its own
growing delay for failed codes (the login throttle's schedule: free
failures, then 2, 4, 8... s, at most LOGIN_MAX_DELAY; at most 100 per hour),
kept apart from the password counter so that knowing the password, which
clears that counter, does not buy more guesses at the code. An attempt is
counted before the code is checked and cleared after a success, in one
conditional UPDATE each, so a burst cannot slip between a check and a count.
"""
import hashlib
import logging
import secrets
from dataclasses import dataclass

from flask import current_app

import db
from accounts import events, factor_mail, passkeys, recovery_codes, totp
from accounts.errors import Throttled, TokenError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # codes per mfa_token
WINDOW = 3600
MAX_FAILURES = 100  # per account per hour (OWASP ASVS)
TOTP, PASSKEY, RECOVERY_CODE = "totp", "webauthn", "recovery_code"
# amr values (RFC 8176) of each second factor; "rc" is ours: RFC 8176 has none for recovery codes.
AMR = {TOTP: "otp", PASSKEY: "hwk", RECOVERY_CODE: "rc"}
BAD_TOKEN = "The mfa_token is invalid, used or expired: log in again."
PURGE_ONE_IN = 64


@dataclass(frozen=True)
class Challenge:
    """A login waiting for its second step."""

    token_hash: str
    user_id: int
    first_amr: str


# --- which factors ------------------------------------------------------------

def methods(user_id: int) -> list[str]:
    """The second factors the account can use now, e.g. ["totp", "webauthn", "recovery_code"]."""
    found = []
    if totp.is_on(user_id):
        found.append(TOTP)
    if passkeys.count(user_id):
        found.append(PASSKEY)
    if found and recovery_codes.remaining(user_id):
        found.append(RECOVERY_CODE)
    return found


# Asked after every right password: one round trip for both factors, each
# condition the SQL of the module that owns its table.
FACTOR_ON = f"SELECT EXISTS ({totp.IS_ON}) OR EXISTS ({passkeys.ANY}) AS found"


def required(user_id: int) -> bool:
    """True when a password alone no longer logs the account in: a confirmed TOTP or a passkey."""
    return db.one(FACTOR_ON, (user_id, user_id))["found"] == 1


def summary(user_id: int) -> dict:
    """Which factors are on, for GET /users/<id> (never a secret)."""
    return {"totp": totp.is_on(user_id), "passkeys": passkeys.count(user_id),
            "recovery_codes_left": recovery_codes.remaining(user_id)}


# Every change to an account's factors is one transaction with its security
# event (accounts/events.py) and, when it weakens the account, the notice mail
# (accounts/factor_mail.py): the three exist together or not at all.

def enable_totp(user_id: int, code: object) -> list[str]:
    """Turn the pending TOTP on with its first `code`; return ten new recovery codes.

    Raises what totp.confirm() raises (NotFound, Conflict, RuleBroken); then nothing changed.
    """
    with db.transaction():
        totp.confirm(user_id, code)
        codes = recovery_codes.regenerate(user_id)
        events.record("totp_enabled", user_id)
    return codes


def turn_off_totp(user_id: int) -> None:
    """Remove TOTP; the recovery codes go too when no factor is left. Recorded and mailed."""
    with db.transaction():
        totp.remove(user_id)
        left = passkeys.count(user_id) > 0
        if not left:
            recovery_codes.remove_all(user_id)
        events.record("totp_disabled", user_id)
        factor_mail.factor_removed(user_id, "totp_disabled", left)


def new_recovery_codes(user_id: int) -> list[str]:
    """Replace the user's recovery codes (the old ones die); return the new ones. Recorded."""
    with db.transaction():
        codes = recovery_codes.regenerate(user_id)
        events.record("recovery_codes_regenerated", user_id)
    return codes


def remove_passkey(user_id: int, credential_id: int) -> None:
    """Delete one of the user's passkeys (NotFound when not theirs); the recovery codes go when
    no factor is left. Recorded and mailed."""
    with db.transaction():
        passkeys.delete(user_id, credential_id)
        left = required(user_id)
        if not left:
            recovery_codes.remove_all(user_id)
        events.record("passkey_removed", user_id)
        factor_mail.factor_removed(user_id, "passkey_removed", left)


def reset(user_id: int) -> None:
    """An operator's reset: every factor, recovery code and pending second step of the user goes.

    Recorded as `mfa_reset` (detail "operator"; from the CLI, with no address) and mailed.
    """
    with db.transaction():
        totp.remove(user_id)
        passkeys.remove_all(user_id)
        recovery_codes.remove_all(user_id)
        db.execute(DELETE_CHALLENGES_OF_USER, (user_id,))
        db.execute(CLEAR_ACCOUNT, (user_id,))
        events.record("mfa_reset", user_id, detail="operator")
        factor_mail.factor_removed(user_id, "mfa_reset", False)


# --- second-step login events (written in the background, like the password's) ------

def login_succeeded(user_id: int, method: str) -> None:
    """Record a second step that succeeded; `method` is TOTP, PASSKEY or RECOVERY_CODE."""
    events.record_soon("mfa_login_succeeded", user_id, detail=method)


def login_failed(user_id: int, reason: str) -> None:
    """Record a second step that failed, by reason class: bad_code, bad_recovery_code, bad_passkey, throttled."""
    events.record_soon("mfa_login_failed", user_id, detail=reason)


# --- the mfa_token ------------------------------------------------------------

INSERT_CHALLENGE = """
    INSERT INTO mfa_challenge (token_hash, user_id, first_amr, expires_at)
    VALUES (%s, %s, %s, NOW() + INTERVAL %s SECOND)"""
SELECT_LIVE_CHALLENGE = """
    SELECT user_id, first_amr FROM mfa_challenge
    WHERE token_hash = %s AND used_at IS NULL AND expires_at > NOW() AND failures < %s"""
COUNT_ATTEMPT = """
    UPDATE mfa_challenge SET failures = failures + 1
    WHERE token_hash = %s AND used_at IS NULL AND expires_at > NOW() AND failures < %s"""
USE_CHALLENGE = "UPDATE mfa_challenge SET used_at = NOW() WHERE token_hash = %s AND used_at IS NULL"
DELETE_CHALLENGES_OF_USER = "DELETE FROM mfa_challenge WHERE user_id = %s"
PURGE_CHALLENGES = "DELETE FROM mfa_challenge WHERE expires_at < NOW() - INTERVAL 1 HOUR LIMIT 1000"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(user_id: int, first_amr: str = "pwd") -> str:
    """Open a second step for `user_id` after `first_amr` succeeded; return the mfa_token."""
    token = secrets.token_urlsafe(32)
    db.execute(INSERT_CHALLENGE, (_hash(token), user_id, first_amr,
                                  current_app.config["MFA_TOKEN_TTL"]))
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        purge()  # now and then, so dead rows never pile up without a cron job
    return token


def claim(token: object) -> Challenge:
    """Count one attempt at the second step of `token` and return its Challenge.

    Raises TokenError when the token is unknown, used, expired or out of
    attempts (an `mfa_token_rejected` event); Throttled while the account
    must wait (an `mfa_login_failed` event, "throttled").
    """
    token_hash = _live_hash(token)
    row = db.one(SELECT_LIVE_CHALLENGE, (token_hash, MAX_ATTEMPTS))
    if row is None:
        raise _rejected(token_hash)
    try:
        claim_account(row["user_id"])
    except Throttled:
        login_failed(row["user_id"], "throttled")
        raise
    if db.execute(COUNT_ATTEMPT, (token_hash, MAX_ATTEMPTS)).rowcount != 1:
        raise _rejected(token_hash)
    return Challenge(token_hash, row["user_id"], row["first_amr"])


def pending_user(token: object) -> int:
    """The user a live mfa_token waits for (no attempt counted); TokenError otherwise (recorded)."""
    token_hash = _live_hash(token)
    row = db.one(SELECT_LIVE_CHALLENGE, (token_hash, MAX_ATTEMPTS))
    if row is None:
        raise _rejected(token_hash)
    return row["user_id"]


def complete(challenge: Challenge) -> None:
    """The second step succeeded: the token is spent (TokenError if another request spent it)."""
    if db.execute(USE_CHALLENGE, (challenge.token_hash,)).rowcount != 1:
        raise _rejected(challenge.token_hash)
    clear_account(challenge.user_id)


# Why a token was refused, for its event: the row is read whatever its state.
WHY_REJECTED = """
    SELECT user_id,
           CASE WHEN used_at IS NOT NULL THEN 'used'
                WHEN expires_at <= NOW() THEN 'expired'
                WHEN failures >= %s THEN 'too_many_attempts'
                ELSE 'raced' END AS reason
    FROM mfa_challenge WHERE token_hash = %s"""


def _live_hash(token: object) -> str:
    """The hash of a well-formed `token`; TokenError (recorded as "malformed") otherwise."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        events.record_soon("mfa_token_rejected", None, detail="malformed")
        raise TokenError(BAD_TOKEN)
    return _hash(token)


def _rejected(token_hash: str) -> TokenError:
    """Record an `mfa_token_rejected` event (its account when the token had one) and return the error."""
    row = db.one(WHY_REJECTED, (MAX_ATTEMPTS, token_hash))
    if row is None:
        events.record_soon("mfa_token_rejected", None, detail="unknown")
    else:
        events.record_soon("mfa_token_rejected", row["user_id"], detail=row["reason"])
    return TokenError(BAD_TOKEN)


def purge() -> int:
    """Delete challenges expired for an hour (and the passkey challenges that expired); how many."""
    return db.execute(PURGE_CHALLENGES).rowcount + passkeys.purge()


# --- the per-account delay --------------------------------------------------------

ENSURE_ACCOUNT = "INSERT IGNORE INTO mfa_failure (user_id) VALUES (%s)"
_FRESH = "(failed_since IS NULL OR failed_since <= NOW() - INTERVAL %(window)s SECOND)"
# Same shape as the password throttle's claim (accounts/throttle.py): counts a
# failure now, only when the delay has passed; rowcount 0 means wait.
CLAIM_ACCOUNT = f"""
    UPDATE mfa_failure SET
      failures       = IF({_FRESH}, 1, failures + 1),
      failed_since   = IF({_FRESH}, NOW(), failed_since),
      last_failed_at = NOW()
    WHERE user_id = %(id)s AND (
      {_FRESH}
      OR (failures < %(max)s AND (
            failures < %(free)s
            OR last_failed_at <= NOW() - INTERVAL LEAST(%(cap)s,
                 POW(2, LEAST(CAST(failures AS SIGNED) - %(free)s + 1, 30))) SECOND)))"""
ACCOUNT_STATE = """
    SELECT failures, TIMESTAMPDIFF(SECOND, failed_since, NOW()) AS window_age,
           TIMESTAMPDIFF(SECOND, last_failed_at, NOW()) AS since_last
    FROM mfa_failure WHERE user_id = %s"""
CLEAR_ACCOUNT = """
    UPDATE mfa_failure SET failures = 0, failed_since = NULL, last_failed_at = NULL
    WHERE user_id = %s AND failures > 0"""


def _delay_settings():
    config = current_app.config
    return config["LOGIN_FREE_FAILURES"], config["LOGIN_MAX_DELAY"]


def _wait(row) -> float:
    free, cap = _delay_settings()
    if row is None or row["window_age"] is None or row["window_age"] >= WINDOW:
        return 1
    if row["failures"] >= MAX_FAILURES:
        return WINDOW - row["window_age"]
    delay = 0 if row["failures"] < free else min(cap, 2 ** min(row["failures"] - free + 1, 30))
    return delay - (row["since_last"] or 0)


def claim_account(user_id: int) -> None:
    """Count one second-step attempt for the account; Throttled while it must wait.

    Off with the rest of the throttling (RATELIMIT_ENABLED=false); the
    per-token cap of MAX_ATTEMPTS always holds.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    free, cap = _delay_settings()
    db.execute(ENSURE_ACCOUNT, (user_id,))
    params = {"id": user_id, "window": WINDOW, "max": MAX_FAILURES, "free": free, "cap": cap}
    if db.execute(CLAIM_ACCOUNT, params).rowcount:
        return
    raise Throttled(max(1, _wait(db.one(ACCOUNT_STATE, (user_id,)))))


def clear_account(user_id: int) -> None:
    """A second step succeeded: the account's failed-code count starts afresh."""
    if current_app.config["RATELIMIT_ENABLED"]:
        db.execute(CLEAR_ACCOUNT, (user_id,))


# --- checking a code ----------------------------------------------------------------

def check_code(user_id: int, code: object = None, recovery_code: object = None) -> str | None:
    """Check a TOTP `code` or a `recovery_code` (each single use); return its amr value or None.

    Does not throttle: callers claim an attempt first (claim() or claim_account()).
    """
    if code is not None:
        return AMR[TOTP] if totp.verify(user_id, code) else None
    if recovery_code is not None and required(user_id):
        return AMR[RECOVERY_CODE] if use_recovery_code(user_id, recovery_code) else None
    return None


def use_recovery_code(user_id: int, code: object) -> bool:
    """Consume `code` if it is one of the user's unused recovery codes; True then.

    The use, its `recovery_code_used` event (detail: how many are left) and
    the mail telling the user (when they have a verified address) commit
    together: the user may have lost their device, or someone else has a code.
    Never the code itself.
    """
    with db.transaction():
        if not recovery_codes.use(user_id, code):
            return False
        left = recovery_codes.remaining(user_id)
        events.record("recovery_code_used", user_id, detail=f"{left} left")
        factor_mail.recovery_code_used(user_id, left)
    log.warning("security event: recovery code used by user %s (%s left)", user_id, left)
    return True


def verify_code(user_id: int, code: object = None, recovery_code: object = None) -> str | None:
    """check_code() behind the account's delay (Throttled); clears the delay on success."""
    claim_account(user_id)
    method = check_code(user_id, code, recovery_code)
    if method is not None:
        clear_account(user_id)
    return method
