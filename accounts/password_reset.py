"""Forgot / reset password.

request_reset() does the same work whoever it names: it validates the input
and queues one outbox row, in one INSERT. Whether the account exists, and
has a verified address, is found out later by the sender (which mints the
token then), so neither the answer nor its timing says anything about the
account.

reset() takes a token (single use, expiring, dead once the password changed
by any path or a newer one was issued), sets the new password, logs the user
out everywhere, clears their login throttle and queues a notice.
"""
import db
from accounts import email_addresses, emails, events, mail_sender, one_time_tokens
from accounts.errors import RuleBroken
from accounts import user_store

BAD_TOKEN = "This reset link is invalid or has expired. Ask for a new one."
USERNAME_MAX = 64


def request_reset(username=None, email=None, origin=None):
    """Queue a reset for the account named by `username` or `email` (exactly one, strings).

    Raises RuleBroken for a malformed address; otherwise always succeeds the
    same way, whether or not there is such an account.
    """
    if email is not None:
        payload = {"email": email_addresses.normalise(email)}
    else:
        payload = {"username": username[:USERNAME_MAX]}
    # For the event the sender records if the account exists (wiped with the payload).
    origin = origin or events.here()
    payload["origin"] = [origin.ip, origin.user_agent, origin.request_id]
    with db.transaction():
        mail_sender.queue("password_reset", payload)


def reset(token, new_password, origin=None):
    """Set `new_password` for the account of the reset `token`; return its user id.

    Raises RuleBroken (field "token") when the token is unknown, used,
    expired, superseded or issued before the password last changed, and
    RuleBroken (field "password") when the password breaks the rules (the
    token then stays usable).
    """
    problem = user_store.password_problem(new_password)
    # Hashed before the transaction: the user row stays locked for a query, not an argon2id run.
    new_hash = None if problem else user_store.hash_password(new_password)
    with db.transaction():
        taken = one_time_tokens.take(token, one_time_tokens.PASSWORD_RESET)
        if taken is None:
            raise RuleBroken(BAD_TOKEN, field="token")
        user_id, binding = taken
        user = user_store.lock(user_id)
        if user is None or binding != one_time_tokens.digest(
                mail_sender.password_binding(user.password_state)):
            raise RuleBroken(BAD_TOKEN, field="token")
        if problem:
            raise RuleBroken(f"'password' {problem}.", field="password")
        user_store.set_password_hash(user_id, new_hash)  # bumps token_version: every token dies
        user_store.end_sessions(user_id)
        user_store.clear_login_failures(user_id)
        one_time_tokens.forget(user_id, one_time_tokens.PASSWORD_RESET)
        address = emails.get(user_id).verified
        if address:
            mail_sender.queue("password_changed", {"to": address, "username": user.username})
        events.record("password_reset", user_id, origin)
    return user_id
