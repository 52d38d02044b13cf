"""Login throttling: who may have a password checked now (docs/security.md, "Throttling").

An attempt is judged *before* its password is checked, on three records kept in
the rate-limit storage (the shared Redis, or the single process's memory), by
one code path for a name with an account and a name without one, so that
neither the answers nor their timing tell the two apart:

- the pair (name, address): LOGIN_FREE_FAILURES free failures, then every
  attempt at least 2, 4, 8... seconds (at most LOGIN_MAX_DELAY) after the
  pair's previous failure, and at most MAX_FAILURES failures per WINDOW;
- the name: RATELIMIT_LOGIN_PER_USER password checks from every address that
  is not known for the name;
- known addresses: an address that logged in to the name within KNOWN_FOR
  seconds is exempt from the name's limit (never from its own pair's delay).

A refused attempt is not checked and not counted anywhere: hammering never
extends a wait, and one address's failures never delay the owner's address.
One attempt per pair is checked at a time (a gate taken with an atomic
increment), so a burst cannot slip several guesses into one delay.

Names are keyed the way the database compares them: by the weight string of
the name under the column's collation (MySQL's own WEIGHT_STRING), so every
spelling that finds a row ("ALICE ", "ali\u06dece", "cœur" for "coeur") shares
that row's counts, and every spelling of an unknown name shares one count.
"""
import hashlib
import logging
import time
from dataclasses import dataclass

from flask import current_app
from limits import parse_many
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter

import db
from accounts.errors import Throttled

log = logging.getLogger(__name__)

WINDOW = 3600  # seconds; the ASVS cap is per hour
MAX_FAILURES = 100
KNOWN_FOR = 30 * 24 * 3600  # an address stays known for a name this long after a login
GATE_SECONDS = 30  # longer than any password check; the gate is dropped when the check ends
# app.extensions key of a callable that returns the rate-limit storage (a
# limits Storage): rest/rate_limits.py sets it, so both share one Redis.
STORAGE = "throttle_storage"

# The column's collation decides which names are one; its weight string is that
# decision as bytes. A trailing space weighs 0x0209 (PAD SPACE ignores it; some
# servers keep it in WEIGHT_STRING), so those weights are dropped here.
WEIGHT = "SELECT HEX(WEIGHT_STRING(%s COLLATE utf8mb4_unicode_ci)) AS weight"
_SPACE_WEIGHT = "0209"


def username_key(username: str) -> str:
    """A fixed-size key naming `username` as the database compares it (utf8mb4_unicode_ci).

    Two names share a key when `a = b` holds for them in MySQL or MariaDB:
    case, accents, width, ignorable code points, expansions (œ = oe) and
    trailing spaces. The key is a hash: no name is stored.
    """
    row = db.one(WEIGHT, (username,))
    weight = (row or {}).get("weight")
    if weight is None:  # not text the server can weigh: key the name itself
        weight = "raw:" + username.encode("utf-8", "surrogatepass").hex()
    while weight.endswith(_SPACE_WEIGHT) and len(weight) % 4 == 0:
        weight = weight[:-4]
    return "user:" + hashlib.sha256(weight.encode()).hexdigest()[:32]


def delay_after(failures: int, free: int, cap: int) -> int:
    """Seconds the next attempt must wait after the last of `failures` failures."""
    if failures < free:
        return 0
    return min(cap, 2 ** min(failures - free + 1, 30))


@dataclass
class Claim:
    """An attempt allowed to have its password checked; finish it with succeeded() or failed()."""

    store: object
    keys: dict
    name_limits: list
    known: bool

    def succeeded(self):
        """The password was right: the pair starts afresh and the address becomes known."""
        self._safely(self._succeeded)

    def failed(self):
        """The password was wrong: one failure more for the pair, and its next delay."""
        self._safely(self._failed)

    def _succeeded(self):
        self._count_check()
        for name in ("failures", "wait"):
            self.store.clear(self.keys[name])
        self.store.incr(self.keys["known"], KNOWN_FOR)
        self.store.clear(self.keys["gate"])

    def _failed(self):
        self._count_check()
        failures = self.store.incr(self.keys["failures"], WINDOW)
        free, cap = _settings()
        delay = delay_after(failures, free, cap)
        if delay:
            self.store.clear(self.keys["wait"])
            self.store.incr(self.keys["wait"], delay)
        self.store.clear(self.keys["gate"])

    def _count_check(self):
        if not self.known:
            window = MovingWindowRateLimiter(self.store)
            for item in self.name_limits:
                window.hit(item, self.keys["name"])

    def release(self):
        """The check never finished (an error): let the pair's next attempt through the gate."""
        self._safely(lambda: self.store.clear(self.keys["gate"]))

    def _safely(self, step):
        try:
            step()
        except StorageError:
            log.warning("rate-limit storage failed; this login attempt was not recorded",
                        exc_info=True)


class _Free:
    """The claim when throttling is off: nothing to record."""

    def succeeded(self):
        pass

    def failed(self):
        pass

    def release(self):
        pass


def _settings():
    config = current_app.config
    return config["LOGIN_FREE_FAILURES"], config["LOGIN_MAX_DELAY"]


def enabled() -> bool:
    """True when throttling (rate limits and login delays) is on."""
    return bool(current_app.config["RATELIMIT_ENABLED"])


def _storage():
    if not enabled():
        return None
    source = current_app.extensions.get(STORAGE)
    return source() if source is not None else None


def _keys(name_key, address):
    prefix = current_app.config["RATELIMIT_KEY_PREFIX"]
    pair = f"{name_key}/{address}"
    return {"name": f"{prefix}/login-user/{name_key}",
            "failures": f"{prefix}/failures/{pair}", "wait": f"{prefix}/wait/{pair}",
            "known": f"{prefix}/known/{pair}", "gate": f"{prefix}/gate/{pair}"}


def claim(username: str, address: str | None) -> "Claim | _Free":
    """Let one attempt for `username` from `address` have its password checked, or raise Throttled.

    Returns a claim whose succeeded() or failed() must follow the check. If
    the storage fails, logs it and lets the attempt through (the per-IP
    limits still apply).
    """
    store = _storage()
    if store is None:
        return _Free()
    keys = _keys(username_key(username), address or "-")
    try:
        return _claim(store, keys)
    except StorageError:
        log.warning("rate-limit storage failed; login attempt let through", exc_info=True)
        return _Free()


def _claim(store, keys):
    """The pair's delay and cap, then the name's limit (unless the address is known), then the gate."""
    now = time.time()
    failures = store.get(keys["failures"])
    if store.get(keys["wait"]):
        # Redis rounds a TTL to whole seconds: never announce more than the delay itself.
        free, cap = _settings()
        raise Throttled(min(store.get_expiry(keys["wait"]) - now, delay_after(failures, free, cap)))
    if failures >= MAX_FAILURES:
        raise Throttled(store.get_expiry(keys["failures"]) - now)
    known = bool(store.get(keys["known"]))
    name_limits = parse_many(current_app.config["RATELIMIT_LOGIN_PER_USER"])
    if not known:
        window = MovingWindowRateLimiter(store)
        for item in name_limits:
            if not window.test(item, keys["name"]):
                raise Throttled(window.get_window_stats(item, keys["name"]).reset_time - now)
    if store.incr(keys["gate"], GATE_SECONDS) != 1:  # another attempt of this pair is being checked
        raise Throttled(1)
    return Claim(store, keys, name_limits, known)
