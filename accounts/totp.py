"""TOTP (RFC 6238) for authenticator apps: the `mfa_totp` table.

30-second steps, 6 digits, SHA-1 (what every authenticator app reads). A code
is accepted for the step before, the current step and the step after (clock
skew), and only once: accepting it stores its step, and a code of that step
or an older one is refused from then on, even inside its window. The
compare-and-set UPDATE decides, so two requests racing with one code cannot
both win.

Secrets are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under
MFA_ENCRYPTION_KEY; MFA_ENCRYPTION_KEY_PREVIOUS keys still decrypt, so the key
can be rotated. Outside production, with no key set, one is derived from
SECRET_KEY (production refuses to start without a key: config.py).
"""
import base64
import hashlib
import hmac
import io
import logging
import time
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

import db
from accounts.errors import Conflict, NotFound, RuleBroken

log = logging.getLogger(__name__)

STEP = 30
DIGITS = 6
SKEW = 1  # steps accepted either side of now

SELECT = "SELECT secret, confirmed_at, last_step FROM mfa_totp WHERE user_id = %s"
SELECT_FOR_UPDATE = SELECT + " FOR UPDATE"
INSERT_PENDING = "INSERT INTO mfa_totp (user_id, secret) VALUES (%s, %s)"
REPLACE_PENDING = "UPDATE mfa_totp SET secret = %s, created = NOW() WHERE user_id = %s AND confirmed_at IS NULL"
# The compare-and-set that makes a code single use (and turns TOTP on when confirming).
ACCEPT_STEP = """
    UPDATE mfa_totp SET last_step = %s, confirmed_at = COALESCE(confirmed_at, NOW())
    WHERE user_id = %s AND (last_step IS NULL OR last_step < %s)"""
DELETE = "DELETE FROM mfa_totp WHERE user_id = %s"
IS_ON = "SELECT 1 AS here FROM mfa_totp WHERE user_id = %s AND confirmed_at IS NOT NULL"


@dataclass(frozen=True)
class Enrollment:
    """What a user needs to add the account to an app: shown once, never stored in clear."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def _cipher() -> MultiFernet:
    """The Fernet keys from the settings, current first (built once per app)."""
    cached = current_app.extensions.get("mfa_cipher")
    if cached is not None:
        return cached
    config = current_app.config
    key = config.get("MFA_ENCRYPTION_KEY") or _derived_key(config.get("SECRET_KEY") or "")
    keys = [key] + [k for k in config.get("MFA_ENCRYPTION_KEY_PREVIOUS", []) if k]
    cipher = MultiFernet([Fernet(k) for k in keys])
    current_app.extensions["mfa_cipher"] = cipher
    return cipher


def _derived_key(secret: str) -> bytes:
    """Development only (production requires MFA_ENCRYPTION_KEY): a key from SECRET_KEY."""
    if not secret:
        log.warning("neither MFA_ENCRYPTION_KEY nor SECRET_KEY is set: TOTP secrets die with this process")
        return Fernet.generate_key()
    return base64.urlsafe_b64encode(hashlib.sha256(b"mfa-totp:" + secret.encode()).digest())


def _encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode("ascii")


def _decrypt(stored: str) -> str:
    try:
        return _cipher().decrypt(stored.encode("ascii")).decode()
    except InvalidToken:
        # A key was removed from the settings too early: say so, never guess.
        raise RuntimeError("a TOTP secret cannot be decrypted with MFA_ENCRYPTION_KEY(_PREVIOUS)") from None


def begin(user_id: int, username: str) -> Enrollment:
    """Start (or restart) enrollment: a new secret, stored encrypted, not yet on.

    Raises Conflict when TOTP is already on (turn it off first).
    """
    secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
    with db.transaction():
        row = db.one(SELECT_FOR_UPDATE, (user_id,))
        if row is not None and row["confirmed_at"] is not None:
            raise Conflict("An authenticator app is already set up; turn it off first.")
        if row is None:
            db.execute(INSERT_PENDING, (user_id, _encrypt(secret)))
        else:
            db.execute(REPLACE_PENDING, (_encrypt(secret), user_id))
    issuer = current_app.config["MFA_ISSUER"]
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=username, issuer_name=issuer)
    return Enrollment(secret, uri, _qr_svg(uri))


def _qr_svg(text: str) -> str:
    """`text` as an SVG QR code, with its namespace so a page can parse it as SVG."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", xmldecl=False, nl=False, scale=4, border=2)
    return out.getvalue().decode("ascii")


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step within ±SKEW of `now` whose code is `code`, newest first; else None."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now) // STEP
    for step in (current + 1, current, current - 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def well_formed(code: object) -> bool:
    """True for six ASCII digits (anything else is never a code)."""
    return isinstance(code, str) and len(code) == DIGITS and code.isascii() and code.isdigit()


def _accept(user_id: int, code: object, pending: bool) -> bool:
    """Check `code` against the stored secret and consume its step; True if accepted."""
    if not well_formed(code):
        return False
    row = db.one(SELECT, (user_id,))
    if row is None or (row["confirmed_at"] is None) != pending:
        return False
    step = _matching_step(_decrypt(row["secret"]), code, time.time())
    if step is None or (row["last_step"] is not None and step <= row["last_step"]):
        return False
    return db.execute(ACCEPT_STEP, (step, user_id, step)).rowcount == 1


def confirm(user_id: int, code: object) -> None:
    """Turn TOTP on with a first code from the app.

    Raises NotFound with no enrollment started, Conflict when already on,
    RuleBroken (field "code") when the code is wrong.
    """
    row = db.one(SELECT, (user_id,))
    if row is None:
        raise NotFound("No authenticator app enrollment was started: POST /mfa/totp first.")
    if row["confirmed_at"] is not None:
        raise Conflict("An authenticator app is already set up.")
    if not _accept(user_id, code, pending=True):
        raise RuleBroken("The code is not valid. Check the app's clock and enter the current code.",
                         field="code")


def verify(user_id: int, code: object) -> bool:
    """True (once) when `code` is valid now for the user's confirmed TOTP; consumes its step."""
    return _accept(user_id, code, pending=False)


def is_on(user_id: int) -> bool:
    """True when the user has a confirmed authenticator app."""
    return db.one(IS_ON, (user_id,)) is not None


def remove(user_id: int) -> bool:
    """Delete the user's TOTP (pending or on); True if there was one."""
    return db.execute(DELETE, (user_id,)).rowcount > 0
