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
from flask import current_app

import db
from accounts import email_addresses, emails, events, mail_sender, one_time_tokens, throttle, users, validation
from accounts.errors import RuleBroken

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
    problem = validation.password_problem(new_password, current_app.config["PASSWORD_MAX_LENGTH"])
    with db.transaction():
        taken = one_time_tokens.take(token, one_time_tokens.PASSWORD_RESET)
        if taken is None:
            raise RuleBroken(BAD_TOKEN, field="token")
        user_id, binding = taken
        user = users.reset_target(user_id, lock=True)
        if user is None or binding != one_time_tokens.digest(
                mail_sender.password_binding(user["password_state"])):
            raise RuleBroken(BAD_TOKEN, field="token")
        if problem:
            raise RuleBroken(f"'password' {problem}.", field="password")
        # A new password logs the user out everywhere (users.revoke_everything).
        users.update(user_id, password=new_password)
        throttle.forgive(user["username"], (origin or events.here()).ip)
        one_time_tokens.forget(user_id, one_time_tokens.PASSWORD_RESET)
        address = emails.get(user_id).verified
        if address:
            mail_sender.queue("password_changed", {"to": address, "username": user["username"]})
        events.record("password_reset", user_id, origin)
    return user_id
