"""Mail about second factors: a recovery code was used, a factor was turned off.

Queued through the outbox (accounts/mail_sender.py) in the caller's
transaction, so the mail exists exactly when the change committed. Sent only
to a verified address, and only while account email is on: an account
without one is told nothing (its security events still record it). The
payload names the user, never a code or a secret.
"""
from flask import current_app

from accounts import emails, mail_sender, users

# What factor_removed() can report; templates/mail/factor_removed.* word each one.
REMOVED = ("totp_disabled", "passkey_removed", "mfa_reset")


def _recipient(user_id: int) -> tuple[str, str] | None:
    """(verified address, username) of the user, or None when there is nobody to tell."""
    if not current_app.config.get("ACCOUNT_EMAIL"):
        return None
    address = emails.get(user_id).verified
    if address is None:
        return None
    row = users.get(user_id)
    return None if row is None else (address, row["username"])


def recovery_code_used(user_id: int, left: int) -> None:
    """Queue "a recovery code was used" (with how many are left) for the user, if they have an address."""
    found = _recipient(user_id)
    if found is not None:
        mail_sender.queue("recovery_code_used", {"to": found[0], "username": found[1], "left": left})


def factor_removed(user_id: int, reason: str, left: bool) -> None:
    """Queue "a second factor was turned off" (`reason` in REMOVED; `left`: another factor remains)."""
    if reason not in REMOVED:
        raise ValueError(f"unknown reason {reason!r}")
    found = _recipient(user_id)
    if found is not None:
        mail_sender.queue("factor_removed", {"to": found[0], "username": found[1], "reason": reason,
                                             "left": left})
