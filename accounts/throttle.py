"""Failed logins per account: a growing delay, counted in MySQL (OWASP ASVS).

Within an hour that starts at an account's first failure, LOGIN_FREE_FAILURES
attempts are free; after that each attempt must come at least 2, 4, 8...
seconds (capped at LOGIN_MAX_DELAY) after the previous failure, or it is
refused with Throttled(retry_after) *without* checking the password, and without
counting, so hammering never extends the wait. The window ends an hour after
its first failure and a successful login clears it: nobody is locked out for
good, and no more than 100 failures per hour per account are possible.

An attempt is claimed before the password is checked, in one conditional
UPDATE of the account's row, whose statements accounts/users.py holds (the
row lock serializes concurrent attempts, so a burst cannot slip through
between a check and a count); a success then clears the counters.

Unknown usernames have no row to count in. They follow the same schedule in
the rate-limit storage (memory, or the shared Redis), keyed by the folded
username, so a refusal arrives after as many attempts, looks the same and costs
the same for a name that does not exist as for one that does.
"""
import hashlib
import logging
import time
import unicodedata

from flask import current_app
from limits.errors import StorageError

from accounts import users
from accounts.errors import Throttled

log = logging.getLogger(__name__)

WINDOW = 3600  # seconds; the ASVS cap is per hour
MAX_FAILURES = 100
# app.extensions key of a callable that returns the rate-limit storage (a
# limits Storage): rest/rate_limits.py sets it, so both share one Redis.
STORAGE = "throttle_storage"


def enabled() -> bool:
    """True when throttling (rate limits and account delays) is on."""
    return bool(current_app.config["RATELIMIT_ENABLED"])


def _storage():
    if not enabled():
        return None
    get = current_app.extensions.get(STORAGE)
    return get() if get is not None else None


# Combining marks (accents after NFKD), controls and format characters: the
# collation gives them no weight.
_IGNORED_CATEGORIES = {"Mn", "Mc", "Me", "Cc", "Cf"}


def username_key(username: str) -> str:
    """A fixed-size storage key for `username`, folded as MySQL's _ci collation compares.

    utf8mb4_unicode_ci ignores case, accents, width, trailing spaces and
    control/format characters, so "Alice", "ALICE ", "Alicé", "ａｌｉｃｅ" and
    "alice\\0" name one account and must share one count (an approximation of
    the collation; the per-account count in MySQL is exact).
    """
    decomposed = unicodedata.normalize("NFKD", username)
    kept = (c for c in decomposed if unicodedata.category(c) not in _IGNORED_CATEGORIES)
    folded = "".join(kept).casefold().rstrip(" ")
    return "user:" + hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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


def claim_attempt(user_id: int) -> None:
    """Count one login attempt for the account; raise Throttled if it must wait."""
    if not enabled():
        return
    free, cap = _settings()
    if users.claim_attempt(user_id, WINDOW, MAX_FAILURES, free, cap):
        return
    row = users.attempt_state(user_id)
    wait = wait_for(row["failed_logins"], row["window_age"], row["since_last"]) if row else 1
    raise Throttled(wait)


def clear_failures(user_id: int) -> None:
    """A successful login: the account starts afresh."""
    if enabled():
        users.clear_failures(user_id)


def claim_unknown(username: str) -> None:
    """The same schedule for a username with no account, kept in the rate-limit storage.

    Raises the same Throttled a known account gets. If the storage fails,
    logs it and lets the attempt through (the per-IP limits still apply).
    """
    store = _storage()
    if store is None:
        return
    prefix = current_app.config["RATELIMIT_KEY_PREFIX"]
    key = username_key(username)
    count_key, wait_key = f"{prefix}/failures/{key}", f"{prefix}/wait/{key}"
    try:
        if store.get(wait_key):
            raise Throttled(store.get_expiry(wait_key) - time.time())
        if store.get(count_key) >= MAX_FAILURES:
            raise Throttled(store.get_expiry(count_key) - time.time())
        failures = store.incr(count_key, WINDOW)
        free, cap = _settings()
        delay = delay_after(failures, free, cap)
        if delay:
            store.clear(wait_key)
            store.incr(wait_key, delay)
    except StorageError:
        log.warning("rate-limit storage failed; unknown-user delay skipped", exc_info=True)
