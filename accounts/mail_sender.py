"""The sender: delivers the outbox (accounts/outbox.py) in a background thread of each worker.

Every server worker runs one sender thread. Senders claim due rows with
SELECT ... FOR UPDATE SKIP LOCKED and a lease, so they never take the same
row; a row is marked in the database only after the SMTP server accepted the
message. While the server is down a row is retried with exponential backoff
(1, 2, 4... seconds, at most MAIL_RETRY_MAX) until MAIL_GIVE_UP_AFTER seconds
after it was queued; a 5xx refusal fails it at once.

Crash window (at-least-once): if the process dies after the server accepted
a message and before the row is marked `sent`, the lease runs out and the row
is sent again. For a link message the resend carries a new token, which
kills the first one (a newer token kills the older): the user may get two
messages, and only the newest link works. Nothing is lost; nothing is sent
twice outside that window.

Handlers turn a row into a message: they mint the tokens then (so no usable
token is ever stored) and return None when there is nothing to send (an
unknown account, an address no longer pending): the row is `skipped`.
"""
import logging
import os
import random
import threading

from flask import current_app

import db
from accounts import emails, events, mail, one_time_tokens, outbox, users

log = logging.getLogger(__name__)

EXTENSION = "mail_sender"
BATCH = 5
# A claim must outlast the batch's deliveries (each socket operation may take
# MAIL_TIMEOUT; a message needs a handful), or a second sender would take rows
# the first is still sending. A crashed sender's rows wait this long.
LEASE_SLACK = 60
OPERATIONS_PER_MESSAGE = 3
IDLE_WAIT = 5.0     # seconds between polls when nothing is queued (other processes may queue)
KEEP_DONE = 7 * 24 * 3600  # finished rows kept this long for operators, then purged
PURGE_ONE_IN = 100


# --- what each kind of row sends --------------------------------------------------

def _account(payload):
    """(user row with its password_state, verified address) the reset request names, or None."""
    if "email" in payload:
        user_id = emails.user_with_verified(payload["email"])
        user = None if user_id is None else users.reset_target(user_id)
    else:
        user = users.reset_target(username=payload.get("username") or "")
    if user is None:
        return None
    address = emails.get(user["id"]).verified
    return None if address is None else (user, address)


def password_reset(payload, first_attempt=True):
    """A reset link to the account's verified address; None if the account or the address is unknown.

    The request is counted (a `password_reset_requested` event) at its first
    attempt only: retries while the server is down are the same request.
    """
    found = _account(payload)
    if found is None:
        return None
    user, address = found
    with db.transaction():
        if first_attempt:
            # However the requests were spread (addresses, username or email), an
            # account gets at most PASSWORD_RESET_MAILS_PER_HOUR links: no mail bombing.
            if events.recent(user["id"], "password_reset_requested", 3600) >= \
                    current_app.config["PASSWORD_RESET_MAILS_PER_HOUR"]:
                return None
            events.record("password_reset_requested", user["id"],
                          events.Origin(*(payload.get("origin") or [None, None, None])))
        token = one_time_tokens.issue(user["id"], one_time_tokens.PASSWORD_RESET,
                                      password_binding(user["password_state"]),
                                      current_app.config["PASSWORD_RESET_TTL"])
    return mail.compose(address, "password_reset", username=user["username"], token=token,
                        minutes=current_app.config["PASSWORD_RESET_TTL"] // 60)


def password_binding(password_state):
    """What a reset token is tied to: the password_state of users.reset_target()."""
    return f"password:{password_state}"


def verify_email(payload, first_attempt=True):
    """A verification link to the pending address; None when it is no longer the one pending."""
    user = users.get(payload["user_id"])
    if user is None or emails.get(user["id"]).pending != payload["email"]:
        return None
    with db.transaction():
        token = one_time_tokens.issue(user["id"], one_time_tokens.VERIFY_EMAIL,
                                      email_binding(payload["email"]),
                                      current_app.config["EMAIL_VERIFY_TTL"])
    return mail.compose(payload["email"], "verify_email", username=user["username"], token=token,
                        hours=current_app.config["EMAIL_VERIFY_TTL"] // 3600)


def email_binding(address):
    """What a verification token is tied to: the address (compared without case, like the index)."""
    return "email:" + address.lower()


def notice(template):
    """A handler for a notice (no token) to payload["to"]."""
    def handler(payload, first_attempt=True):
        return mail.compose(payload["to"], template, username=payload["username"],
                            new_address=payload.get("new"))
    return handler


def recovery_code_used(payload, first_attempt=True):
    """A recovery code was used: how many are left (accounts/factor_mail.py)."""
    return mail.compose(payload["to"], "recovery_code_used", username=payload["username"],
                        left=payload["left"])


def factor_removed(payload, first_attempt=True):
    """A second factor was turned off, by the user or an operator (accounts/factor_mail.py)."""
    return mail.compose(payload["to"], "factor_removed", username=payload["username"],
                        reason=payload["reason"], left=payload["left"])


HANDLERS = {
    "password_reset": password_reset,
    "verify_email": verify_email,
    "password_changed": notice("password_changed"),
    "email_changed": notice("email_changed"),
    "recovery_code_used": recovery_code_used,
    "factor_removed": factor_removed,
}


# --- delivering ---------------------------------------------------------------------

def backoff(attempts):
    """Seconds to wait after the `attempts`-th failed attempt: 1, 2, 4... capped at MAIL_RETRY_MAX."""
    return min(current_app.config["MAIL_RETRY_MAX"], 2 ** min(max(attempts - 1, 0), 20))


def deliver_due(batch=BATCH):
    """Claim and process up to `batch` due rows; return how many were claimed."""
    items = outbox.claim(batch, lease_seconds(batch))
    unreachable = None
    for item in items:
        if unreachable is not None:
            # The server did not answer a moment ago: do not spend a timeout per row.
            _retry_or_give_up(item, f"not tried: {unreachable}")
            continue
        unreachable = _process(item)
    return len(items)


def lease_seconds(batch):
    """How long a claim of `batch` rows lasts: longer than delivering them can take."""
    return LEASE_SLACK + batch * OPERATIONS_PER_MESSAGE * current_app.config["MAIL_TIMEOUT"]


def _process(item):
    """Send one claimed row and mark it; the failure text when the server is unreachable, else None."""
    try:
        message = HANDLERS[item.kind](item.payload, first_attempt=item.attempts == 1)
    except db.DatabaseUnavailable as exc:
        outbox.retry(item, backoff(item.attempts), f"database: {exc}")
        return
    except Exception as exc:  # a bug must not stop the queue; the row says why it failed
        log.exception("outbox row %s (%s) could not be composed", item.id, item.kind)
        outbox.finish(item, outbox.FAILED, f"compose: {type(exc).__name__}")
        return
    if message is None:
        outbox.finish(item, outbox.SKIPPED)
        return
    try:
        mail.deliver(message)
    except mail.PermanentFailure as exc:
        log.warning("outbox row %s refused for good: %s", item.id, exc)
        outbox.finish(item, outbox.FAILED, str(exc))
        return
    except mail.TransientFailure as exc:
        _retry_or_give_up(item, str(exc))
        return str(exc) if exc.unreachable else None
    outbox.finish(item, outbox.SENT)


def _retry_or_give_up(item, error):
    if outbox.age(item) >= current_app.config["MAIL_GIVE_UP_AFTER"]:
        log.warning("outbox row %s given up after %s attempts: %s", item.id, item.attempts, error)
        outbox.finish(item, outbox.FAILED, f"gave up: {error}")
        return
    delay = backoff(item.attempts)
    log.info("outbox row %s: attempt %s failed (%s); next in %ss", item.id, item.attempts, error, delay)
    outbox.retry(item, delay, error)


def housekeeping():
    """Purge finished rows and expired tokens (bounded batches)."""
    outbox.purge_done(KEEP_DONE)
    one_time_tokens.purge()


# --- the thread ---------------------------------------------------------------------

class Sender:
    """One background thread per process: delivers, then sleeps until woken or something is due."""

    def __init__(self, app):
        self.app = app
        self.pid = None
        self.wakeup = threading.Event()

    def ensure_started(self):
        """Start the thread in this process (after a fork the parent's thread is gone)."""
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.wakeup = threading.Event()
        threading.Thread(target=self._run, name="mail-sender", daemon=True).start()

    def wake(self):
        """Something was queued by this process: deliver now rather than at the next poll."""
        self.wakeup.set()

    def _run(self):
        while True:
            self.wakeup.clear()
            wait = IDLE_WAIT
            try:
                with self.app.app_context():
                    try:
                        while deliver_due():
                            pass
                        if random.randrange(PURGE_ONE_IN) == 0:
                            housekeeping()
                        due = outbox.seconds_to_next()
                        if due is not None:
                            wait = min(wait, max(due, 0.2))
                    finally:
                        db.close_db()
            except db.DatabaseUnavailable as exc:
                log.warning("mail sender: database unavailable (%s)", exc)
            except Exception:  # noqa: BLE001 - the thread must outlive one bad batch
                # Nothing else would restart this thread: a bug in one message
                # must not stop every later one. The traceback is logged.
                log.exception("mail sender: unexpected error; continuing")
            self.wakeup.wait(wait)


def init_app(app):
    """Attach the sender; its thread starts in each worker on first use (never in tests' apps)."""
    sender = Sender(app)
    app.extensions[EXTENSION] = sender
    if app.config["ACCOUNT_EMAIL"] and app.config["MAIL_SENDER"] and not app.testing:
        app.before_request(sender.ensure_started)


def start_in(app):
    """Start the sender of `app` in this process now (serving/worker.py, as a worker starts), if it runs one."""
    sender = app.extensions.get(EXTENSION) if hasattr(app, "extensions") else None
    if sender is not None and app.config["ACCOUNT_EMAIL"] and app.config["MAIL_SENDER"] and not app.testing:
        sender.ensure_started()


def queue(kind, payload):
    """Queue a message in the open transaction; this process's sender is woken once it commits."""
    outbox.enqueue(kind, payload)
    sender = current_app.extensions.get(EXTENSION)
    if sender is not None:
        db.on_commit("mail_sender.wake", sender.wake)

