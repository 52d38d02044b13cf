"""OWNS `security_event`: what happened to an account, for its owner and the admins.

One row per event: a kind from KINDS, a reason class in `detail` (never a
password, a token or a username), and where it came from (an Origin: the
client address, user agent and request id the HTTP layer read). Rows have
no foreign key: an account's history outlives the account (without its
username, which is never stored here). Writes are one autocommit INSERT, or
part of the caller's transaction when one is open.
"""
from dataclasses import dataclass

import db

KINDS = frozenset({
    "login_succeeded", "login_failed", "login_throttled", "refresh_reuse", "logout_all",
    "password_changed", "password_reset", "password_reset_requested",
    "email_changed", "email_verified", "admin_changed", "account_deleted",
})
USER_AGENT_MAX = 255
IP_MAX = 45
REQUEST_ID_MAX = 64

INSERT = """
    INSERT INTO security_event (user_id, kind, detail, ip, user_agent, request_id, created)
    VALUES (%s, %s, %s, %s, %s, %s, NOW())"""
COLUMNS = "id, user_id, kind, detail, ip, user_agent, request_id, created"
OF_USER = f"""
    SELECT {COLUMNS} FROM security_event
    WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s"""
ALL = f"SELECT {COLUMNS} FROM security_event WHERE id < %s ORDER BY id DESC LIMIT %s"
ALL_OF_KIND = f"""
    SELECT {COLUMNS} FROM security_event
    WHERE kind = %s AND id < %s ORDER BY id DESC LIMIT %s"""
PURGE = "DELETE FROM security_event WHERE created < NOW() - INTERVAL %s DAY LIMIT %s"
NO_ID = 2 ** 64  # above every BIGINT UNSIGNED id: the first page's "before"


@dataclass(frozen=True)
class Origin:
    """Where a request came from; every field may be None (the CLI, the sender)."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


NOWHERE = Origin()
_origin_of_request = None


def read_origin_with(provider):
    """Install the HTTP layer's `provider()` -> Origin of the current request (NOWHERE outside one).

    The domain never reads the request itself: the HTTP layer tells it how.
    """
    global _origin_of_request
    _origin_of_request = provider


def here():
    """The Origin of the current request, or NOWHERE (CLI, sender thread, no provider)."""
    return NOWHERE if _origin_of_request is None else _origin_of_request()


def record(kind, user_id, origin=None, detail=None):
    """Write one event of `kind` (in KINDS) about `user_id` (None: no such account).

    `origin` defaults to the current request's (here()).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    origin = origin or here()
    db.execute(INSERT, (user_id, kind, detail,
                        _cut(origin.ip, IP_MAX), _cut(origin.user_agent, USER_AGENT_MAX),
                        _cut(origin.request_id, REQUEST_ID_MAX)))


def of_user(user_id, before, limit):
    """Up to `limit` events of `user_id` with id < `before` (None: from the newest), newest first."""
    return db.many(OF_USER, (user_id, before or NO_ID, limit))


def everyone(before, limit, kind=None):
    """Up to `limit` events of all accounts (optionally of one `kind`), newest first."""
    if kind is not None:
        return db.many(ALL_OF_KIND, (kind, before or NO_ID, limit))
    return db.many(ALL, (before or NO_ID, limit))


def purge(older_than_days, batch=10000):
    """Delete events older than `older_than_days` days, in batches; return how many."""
    total = 0
    while True:
        deleted = db.execute(PURGE, (older_than_days, batch)).rowcount
        total += deleted
        if deleted < batch:
            return total


def _cut(value, size):
    return None if value is None else (value[:size] or None)
