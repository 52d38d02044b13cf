"""Giving, changing and verifying an account's email address.

An address counts (password resets go to it) only once its link was
followed. A change keeps the verified address in force until the new one is
verified, sends the verification to the new address and a notice to the old
one, so a hijacked session cannot quietly move the account's mail away.
"""
import db
from accounts import email_addresses, emails, events, mail_sender, one_time_tokens, users
from accounts.errors import RuleBroken

BAD_TOKEN = "This verification link is invalid or has expired. Ask for a new one."


def set_address(user_id, username, address, origin=None):
    """Give `user_id` the (normalised) `address`: pending until verified. Runs in the caller's transaction.

    Queues the verification message, and a notice to the verified address it
    replaces. The verified address again: nothing waits any more, nothing is sent.
    """
    current = emails.get(user_id)
    if current.verified is not None and current.verified.lower() == address.lower():
        emails.clear_pending(user_id)
        one_time_tokens.forget(user_id, one_time_tokens.VERIFY_EMAIL)
        return
    emails.set_pending(user_id, address)
    mail_sender.queue("verify_email", {"user_id": user_id, "email": address})
    if current.verified is not None:
        mail_sender.queue("email_changed", {"to": current.verified, "username": username,
                                            "new": email_addresses.masked(address)})
    if current.shown is not None:
        events.record("email_changed", user_id, origin)


def resend(user_id):
    """Queue a new verification message for the pending address; RuleBroken when none waits."""
    pending = emails.get(user_id).pending
    if pending is None:
        raise RuleBroken("No email address is waiting for verification.", field="email")
    with db.transaction():
        mail_sender.queue("verify_email", {"user_id": user_id, "email": pending})


def verify(token, origin=None):
    """Verify the address the `token` was sent to; return the user id.

    Raises RuleBroken (field "token") when the token is unknown, used, expired,
    superseded or its address is no longer the one waiting, and Conflict when
    another account verified the address first.
    """
    with db.transaction():
        taken = one_time_tokens.take(token, one_time_tokens.VERIFY_EMAIL)
        if taken is None:
            raise RuleBroken(BAD_TOKEN, field="token")
        user_id, binding = taken
        pending = emails.get(user_id).pending
        if pending is None or binding != one_time_tokens.digest(mail_sender.email_binding(pending)):
            raise RuleBroken(BAD_TOKEN, field="token")
        emails.confirm(user_id, pending)
        events.record("email_verified", user_id, origin)
    return user_id


def resource_fields(user_id):
    """{"email", "email_verified"} for the user resource (shown to the owner and admins only)."""
    addresses = emails.get(user_id)
    return {"email": addresses.shown, "email_verified": addresses.shown_verified}



def create_account(username, password, address=None):
    """users.create() and, when `address` is given, set_address(), as one transaction; the user row.

    Re-run whole after a write conflict (db.retrying); Conflict when the name is taken.
    """
    try:
        return db.retrying(_create_account, username, password, address)
    except db.WriteConflict:
        users.raise_if_taken(username)
        raise


def _create_account(username, password, address):
    row = users.create(username, password)
    if address is not None:
        set_address(row["id"], username, address)
    return row


def change_account(user_id, changes, address=None):
    """users.update(**changes) and, when `address` is given, set_address(), as one transaction; the row."""
    with db.transaction():
        row = users.update(user_id, **changes)
        if address is not None:
            set_address(user_id, row["username"], address)
    return row
