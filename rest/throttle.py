"""Failed logins per account: a growing delay, counted in MySQL (OWASP ASVS).

Within an hour that starts at an account's first failure, LOGIN_FREE_FAILURES
attempts are free; after that each attempt must come at least 2, 4, 8...
seconds (capped at LOGIN_MAX_DELAY) after the previous failure, or it is
answered 429 with Retry-After *without* checking the password, and without
counting, so hammering never extends the wait. The window ends an hour after
its first failure and a successful login clears it: nobody is locked out for
good, and no more than 100 failures per hour per account are possible.

An attempt is claimed before the password is checked, in one conditional
UPDATE (the row lock serializes concurrent attempts, so a burst cannot slip
through between a check and a count); a success then clears the counters.

Unknown usernames have no row to count in. They follow the same schedule in
the rate-limit storage (memory, or the shared Redis), keyed by the folded
username, so a 429 arrives after as many attempts, looks the same and costs
the same for a name that does not exist as for one that does.
"""
import logging
import time

from flask import current_app
from limits.errors import StorageError

import db
from rest import limits

log = logging.getLogger(__name__)

WINDOW = 3600  # seconds; the ASVS cap is per hour
MAX_FAILURES = 100

# The window is over (or never began) when failed_since is NULL or an hour old.
_FRESH = "(failed_since IS NULL OR failed_since <= NOW() - INTERVAL %(window)s SECOND)"
# Claim one attempt: counts it as a failure now, in one statement, only when the
# account's delay has passed. rowcount 0: throttled (or no such id).
# Assignments run left to right; each reads only columns not yet assigned.
CLAIM_ATTEMPT = f"""
    UPDATE user SET
      failed_logins  = IF({_FRESH}, 1, failed_logins + 1),
      failed_since   = IF({_FRESH}, NOW(), failed_since),
      last_failed_at = NOW()
    WHERE id = %(id)s AND (
      {_FRESH}
      OR (failed_logins < %(max)s AND (
            failed_logins < %(free)s
            OR last_failed_at <= NOW() - INTERVAL LEAST(%(cap)s,
                 POW(2, LEAST(CAST(failed_logins AS SIGNED) - %(free)s + 1, 30))) SECOND)))"""
ATTEMPT_STATE = """
    SELECT failed_logins,
           TIMESTAMPDIFF(SECOND, failed_since, NOW())   AS window_age,
           TIMESTAMPDIFF(SECOND, last_failed_at, NOW()) AS since_last
    FROM user WHERE id = %s"""
CLEAR_FAILURES = """
    UPDATE user SET failed_logins = 0, failed_since = NULL, last_failed_at = NULL
    WHERE id = %s AND failed_logins > 0"""


def delay_after(failures, free, cap):
    """Seconds the next attempt must wait after the last of `failures` failures."""
    if failures < free:
        return 0
    return min(cap, 2 ** min(failures - free + 1, 30))


def _settings():
    config = current_app.config
    return config["LOGIN_FREE_FAILURES"], config["LOGIN_MAX_DELAY"]


def wait_for(failures, window_age, since_last):
    """Seconds until an account with this state may try again (<= 0: now)."""
    if window_age is None or window_age >= WINDOW:
        return 0
    if failures >= MAX_FAILURES:
        return WINDOW - window_age
    free, cap = _settings()
    return delay_after(failures, free, cap) - (since_last or 0)


def claim_attempt(user_id):
    """Count one login attempt for the account; raise the 429 ApiError if it must wait."""
    if not limits.enabled():
        return
    free, cap = _settings()
    params = {"id": user_id, "window": WINDOW, "max": MAX_FAILURES, "free": free, "cap": cap}
    if db.execute(CLAIM_ATTEMPT, params).rowcount:
        return
    row = db.one(ATTEMPT_STATE, (user_id,))
    wait = wait_for(row["failed_logins"], row["window_age"], row["since_last"]) if row else 1
    raise limits.too_many_requests(wait)


def clear_failures(user_id):
    """A successful login: the account starts afresh."""
    if limits.enabled():
        db.execute(CLEAR_FAILURES, (user_id,))


def claim_unknown(username):
    """The same schedule for a username with no account, kept in the rate-limit storage.

    Raises the same 429 ApiError a known account gets. If the storage fails,
    logs it and lets the attempt through (the per-IP limits still apply).
    """
    store = limits.storage()
    if store is None:
        return
    prefix = current_app.config["RATELIMIT_KEY_PREFIX"]
    key = limits.username_key(username)
    count_key, wait_key = f"{prefix}/failures/{key}", f"{prefix}/wait/{key}"
    try:
        if store.get(wait_key):
            raise limits.too_many_requests(store.get_expiry(wait_key) - time.time())
        if store.get(count_key) >= MAX_FAILURES:
            raise limits.too_many_requests(store.get_expiry(count_key) - time.time())
        failures = store.incr(count_key, WINDOW)
        free, cap = _settings()
        delay = delay_after(failures, free, cap)
        if delay:
            store.clear(wait_key)
            store.incr(wait_key, delay)
    except StorageError:
        log.warning("rate-limit storage failed; unknown-user delay skipped", exc_info=True)
