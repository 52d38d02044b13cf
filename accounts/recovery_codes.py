"""Recovery codes: the `mfa_recovery_code` table. Ten at a time, single use, stored as SHA-256.

Each code carries 128 random bits (26 base32 characters, shown in five
groups). A new set replaces the old one whole: after regenerate(), no old code
works. Input is compared after dropping spaces and dashes and folding case,
so a code copied from paper in any layout still matches.
"""
import base64
import hashlib
import secrets

import db

COUNT = 10
BYTES = 16  # 128 bits

DELETE_ALL = "DELETE FROM mfa_recovery_code WHERE user_id = %s"
INSERT = "INSERT INTO mfa_recovery_code (user_id, code_hash) VALUES (%s, %s)"
# The compare-and-set that makes a code single use.
USE = """
    UPDATE mfa_recovery_code SET used_at = NOW()
    WHERE user_id = %s AND code_hash = %s AND used_at IS NULL"""
REMAINING = "SELECT COUNT(*) AS n FROM mfa_recovery_code WHERE user_id = %s AND used_at IS NULL"


def _new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(BYTES)).decode("ascii").rstrip("=").lower()
    return "-".join([raw[0:5], raw[5:10], raw[10:15], raw[15:20], raw[20:]])  # 5-5-5-5-6


def _normalized(code: str) -> str:
    return "".join(c for c in code if c not in " -").lower()


def _hash(code: str) -> str:
    return hashlib.sha256(_normalized(code).encode()).hexdigest()


def regenerate(user_id: int) -> list[str]:
    """Replace the user's codes with COUNT new ones and return them (the only time they are seen).

    Runs in the caller's transaction when there is one, else in its own.
    """
    codes = [_new_code() for _ in range(COUNT)]
    with db.transaction():
        db.execute(DELETE_ALL, (user_id,))
        for code in codes:
            db.execute(INSERT, (user_id, _hash(code)))
    return codes


def use(user_id: int, code: object) -> bool:
    """True (once) when `code` is one of the user's unused codes; marks it used."""
    if not isinstance(code, str) or not 1 <= len(code) <= 64 or not code.isascii():
        return False
    return db.execute(USE, (user_id, _hash(code))).rowcount == 1


def remaining(user_id: int) -> int:
    """How many unused codes the user has."""
    return db.one(REMAINING, (user_id,))["n"]


def remove_all(user_id: int) -> None:
    """Delete every code of the user (the last factor was turned off, or an operator reset)."""
    db.execute(DELETE_ALL, (user_id,))
