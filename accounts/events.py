"""OWNS `security_event`: what happened to an account, for its owner and the admins.

One row per event: a kind from KINDS, a reason class in `detail` (never a
password, a token or a username), and where it came from (an Origin: the
client address, user agent and request id the HTTP layer read). Rows have
no foreign key: an account's history outlives the account (without its
username, which is never stored here). record() is one INSERT, part of the
caller's transaction when one is open; record_soon() (logins) is queued for
a background writer.
"""
import atexit
import datetime
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

from flask import current_app

import db

log = logging.getLogger(__name__)

KINDS = frozenset({
    "login_succeeded", "login_failed", "login_throttled", "refresh_reuse", "logout_all",
    "password_changed", "password_reset", "password_reset_requested",
    "email_changed", "email_verified", "admin_changed", "account_deleted",
    # Second factors (accounts/mfa.py, accounts/passkeys.py): detail is a method or a reason class.
    "totp_enabled", "totp_disabled", "recovery_codes_regenerated", "recovery_code_used",
    "passkey_added", "passkey_removed", "mfa_login_succeeded", "mfa_login_failed",
    "mfa_token_rejected", "mfa_reset",
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
RECENT = """
    SELECT COUNT(*) AS n FROM security_event
    WHERE user_id = %s AND kind = %s AND created > NOW() - INTERVAL %s SECOND"""
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


def recent(user_id, kind, seconds):
    """How many events of `kind` `user_id` had in the last `seconds` seconds."""
    return db.one(RECENT, (user_id, kind, seconds))["n"]


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


# --- logins: written in the background ----------------------------------------------
#
# Login events are the many (every attempt, a flood during an attack) and
# are not part of any change, so a login does not wait for their INSERT (on a
# disk that syncs every commit, about as long as the rest of the login's
# queries). The request puts the row, with its time, on this process's queue;
# a writer thread inserts what has gathered in one multi-row INSERT. The
# trade-off: a process killed with rows still queued (at most
# BACKGROUND_FLUSH seconds' worth) loses them. Events that belong to a change
# (password, email, admin flag, deletion...) are written in its transaction.

WRITER = "security_event_writer"
QUEUE_MAX = 10000         # rows; beyond that a flood's events are dropped (and counted in the log)
BACKGROUND_FLUSH = 0.05   # seconds the writer gathers rows before one INSERT
BATCH_MAX = 500
INSERT_MANY = """
    INSERT INTO security_event (user_id, kind, detail, ip, user_agent, request_id, created)
    VALUES """
ROW = "(%s, %s, %s, %s, %s, %s, %s)"


def record_soon(kind, user_id, origin=None, detail=None, username=None):
    """Like record(), but written by the background writer when the app runs one (else now).

    `username` instead of `user_id`: the writer finds the account (or none),
    so the request runs no query for it. The name itself is never stored.
    """
    writer = current_app.extensions.get(WRITER)
    if writer is None:
        if username is not None:
            user_id = _user_named(username)
        record(kind, user_id, origin, detail)
        return
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    origin = origin or here()
    writer.put((username, (user_id, kind, detail, _cut(origin.ip, IP_MAX),
                           _cut(origin.user_agent, USER_AGENT_MAX), _cut(origin.request_id, REQUEST_ID_MAX),
                           datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0))))


USER_NAMED = "SELECT id FROM user WHERE username = %s"


def _user_named(username):
    row = db.one(USER_NAMED, (username,))
    return None if row is None else row["id"]


class BackgroundWriter:
    """One thread per process that inserts queued event rows in batches."""

    def __init__(self, app):
        self.app = app
        self.pid = None
        self.rows = None
        self.dropped = 0

    def put(self, row):
        """Queue one row (starting this process's thread on first use)."""
        if self.pid != os.getpid():
            self._start()
        try:
            self.rows.put_nowait(row)
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("security events: queue full, %s login events dropped so far", self.dropped)

    def _start(self):
        self.pid = os.getpid()
        self.rows = queue.Queue(QUEUE_MAX)
        threading.Thread(target=self._run, args=(self.rows,), name="security-events", daemon=True).start()
        atexit.register(self.flush)  # a worker that stops cleanly writes what it queued

    def _run(self, rows):
        while True:
            batch = [rows.get()]
            deadline = time.monotonic() + BACKGROUND_FLUSH
            while len(batch) < BATCH_MAX:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(rows.get(timeout=remaining))
                except queue.Empty:
                    break
            self._write(batch)
            for _ in batch:
                rows.task_done()

    def _write(self, batch):
        try:
            with self.app.app_context():
                try:
                    rows = [row if name is None else (_user_named(name),) + row[1:] for name, row in batch]
                    # One statement, one commit: a row of placeholders per event, never a value.
                    db.execute(INSERT_MANY + ", ".join([ROW] * len(rows)),
                               [value for row in rows for value in row])
                finally:
                    db.close_db()
        except Exception:  # the database is down or refused: the rows are lost, the logins were not
            log.exception("security events: %s rows could not be written", len(batch))

    def flush(self):
        """Wait until every queued row is written (tests, shutdown)."""
        if self.rows is not None and self.pid == os.getpid():
            self.rows.join()


def init_app(app):
    """Run the background writer unless SECURITY_EVENTS_BACKGROUND is off (default: off under TESTING)."""
    background = app.config.get("SECURITY_EVENTS_BACKGROUND")
    if background is None:
        background = not app.testing
    if background:
        app.extensions[WRITER] = BackgroundWriter(app)


def flush():
    """Wait until the background writer has written every queued row (no-op without one)."""
    writer = current_app.extensions.get(WRITER)
    if writer is not None:
        writer.flush()
