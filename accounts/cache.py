"""What each worker remembers per user, and Redis pub/sub telling it what to forget.

Two reads dominate the service's work and change only when something is
written: identity()'s answer for a token (the user row and the revocation
state: one MySQL round trip on every request that carries a token), and a
page of a user's posts. So each worker keeps what it read, filed under the
user it belongs to, and every write that changes such a read announces the
user's id on a Redis channel.

Why a change still counts at once:
- A write calls `changed(user_id, kind)`: a logout, a revoked session,
  refresh-token reuse, a password, admin-flag or username change and a
  deletion say "everything of this user" (kind None); a post written or
  deleted says POSTS. The announcement is published when the write's
  transaction commits (db.on_commit), and followed by a PING whose answer
  means Redis has written it to every subscriber, all before the response
  goes out; the worker that wrote also forgets at once.
- Every worker subscribes to the channel and, before each lookup, applies
  what has arrived (a non-blocking poll of the socket, ~0.5 us when nothing
  came). A request sent after the writing response finds the message there
  already; across hosts the window is Redis's delivery time to that instance.
- No subscription, no cache: REDIS_URL unset, the subscription not yet
  confirmed, or the connection lost, and every lookup reads MySQL, as
  without a cache; a lost connection empties the cache, since messages may
  have been missed. A new subscription is tried at most every RETRY_SECONDS.
- An entry lives at most CACHE_SECONDS: the bound on staleness for a change
  nobody announced (SQL typed into the mysql CLI).
Only reads that let a request through are kept: a refused token asks MySQL
every time, and a caller's right to a page is checked before the page is
looked up.
"""
import itertools
import logging
import os
import select
import threading
import time

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

import db
import redis_client

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_app = current_app._get_current_object

log = logging.getLogger(__name__)

EXTENSION = "user_cache"
IDENTITY = "identity"
POSTS = "posts"
EVERYTHING = "*"
RETRY_SECONDS = 2.0
CONNECT_TIMEOUT = 0.5  # seconds; paid at most once per RETRY_SECONDS while Redis is away
READ_TIMEOUT = 1.0
# Per worker; the oldest entries go first when either bound is passed.
MAX_ENTRIES = 10_000
MAX_BYTES = 16 * 1024 * 1024
ENTRY_BYTES = 200  # what an entry without a body (a User) is counted as

_serial = itertools.count(1)


def channel(config):
    """The channel of one database: instances sharing its rows share their announcements."""
    return f"jwt-api:users-changed:{config['DB_NAME']}"


class UserCache:
    """One process's entries and subscription. Safe for threads (the dev server)."""

    def __init__(self, url, name, ttl):
        # No retries: redis-py's default (10, with backoff) would hold a
        # request for seconds while Redis is away; the cache just stays off.
        options = {"protocol": 2, "socket_connect_timeout": CONNECT_TIMEOUT,
                   "socket_timeout": READ_TIMEOUT, "retry": Retry(NoBackoff(), 0)}
        # Named, so that `CLIENT LIST` in redis-cli shows whose subscription it is.
        self.client_name = f"jwt-api-cache-{os.getpid()}-{next(_serial)}"
        # A redis+sentinel:// URL finds the primary through the sentinels at each new connection.
        self._subscriber_pool = redis_client.connection_pool(url, client_name=self.client_name, **options)
        self._publisher = redis_client.client(url, **options)
        self.channel = name
        self.ttl = ttl
        self._subscription = None
        self._readable = None  # a poll object on the subscription's socket: see _listening()
        self._drained = False  # redis-py's buffer holds nothing unread
        self._retry_at = 0.0
        self._off_logged = False  # one warning per outage, not one per retry
        self._entries = {}   # (kind, user id, key) -> (value, expires at (monotonic), bytes)
        self._by_user = {}   # (kind, user id) -> set of entry keys
        self._bytes = 0
        self._generation = 0  # moves whenever anything is forgotten: see put()
        self._lock = threading.RLock()

    # --- lookups -----------------------------------------------------------------

    def get(self, kind, user_id, key):
        """Return (value or None, ticket). Pass the ticket to put() after reading MySQL.

        The ticket is None when the cache cannot be trusted now (no
        subscription): put() then keeps nothing.
        """
        if self.ttl <= 0:
            return None, None
        with self._lock:
            if not self._listening():
                return None, None
            full_key = (kind, str(user_id), key)
            entry = self._entries.get(full_key)
            if entry is not None:
                if entry[1] > time.monotonic():
                    return entry[0], self._generation
                self._drop(full_key)
            return None, self._generation

    def put(self, kind, user_id, key, value, ticket, size=ENTRY_BYTES):
        """Keep `value`, unless anything was forgotten since get() handed out `ticket`."""
        if ticket is None or size > MAX_BYTES // 16:
            return
        with self._lock:
            if ticket != self._generation or self._subscription is None:
                return  # a change arrived meanwhile: what was read may predate it
            full_key = (kind, str(user_id), key)
            self._drop(full_key)
            self._entries[full_key] = (value, time.monotonic() + self.ttl, size)
            self._by_user.setdefault(full_key[:2], set()).add(full_key)
            self._bytes += size
            while len(self._entries) > MAX_ENTRIES or self._bytes > MAX_BYTES:
                self._drop(next(iter(self._entries)))

    # --- forgetting ----------------------------------------------------------------

    def forget(self, user_id, kind=None):
        """Drop this process's entries of `user_id`: of one kind, or all of them."""
        with self._lock:
            self._generation += 1
            for each in (IDENTITY, POSTS) if kind in (None, EVERYTHING) else (kind,):
                for full_key in list(self._by_user.get((each, str(user_id)), ())):
                    self._drop(full_key)

    def clear(self):
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_user.clear()
            self._bytes = 0

    def announce(self, user_id, kind=None):
        """Forget here, and tell every subscribed process to (run after the commit)."""
        self.forget(user_id, kind)
        try:
            try:
                self._publish(user_id, kind)
            except redis.ConnectionError:
                # Once: a pooled link to a Redis that restarted or lost its
                # primary role (Sentinel failover) fails at first use; a new
                # one goes to the current primary. Saying it twice is harmless.
                self._publish(user_id, kind)
        except redis.RedisError as exc:
            # The write is committed; processes that still hear Redis keep
            # the user's entries until they expire.
            log.error("could not announce a change of user %s to other workers (%s); "
                      "their cached reads expire within %s s", user_id, type(exc).__name__, self.ttl)

    def _publish(self, user_id, kind):
        # Redis may answer PUBLISH before it has written the message to
        # every subscriber (the same pass of its event loop); a PING sent
        # after that answer is served in a later pass. So once PING is
        # answered, the message sits in every subscriber's socket on this
        # host, before our response leaves.
        self._publisher.publish(self.channel, f"{kind or EVERYTHING}:{user_id}")
        self._publisher.ping()

    def _drop(self, full_key):
        entry = self._entries.pop(full_key, None)
        if entry is None:
            return
        self._bytes -= entry[2]
        keys = self._by_user.get(full_key[:2])
        if keys is not None:
            keys.discard(full_key)
            if not keys:
                del self._by_user[full_key[:2]]

    # --- the subscription ------------------------------------------------------------

    def _listening(self):
        """True when subscribed and every message that arrived has been applied."""
        if self._subscription is None and not self._subscribe():
            return False
        # Nothing on the socket (the usual case): done, in one poll() call.
        # redis-py's can_read(0) answers the same in ~7 us (a recv that fails
        # and two timeout changes); it is still what drains below, and once
        # it says False its buffer is empty, so from then on a poll that
        # finds nothing means nothing is waiting. A closed socket polls as ready.
        if self._drained and not self._readable.poll(0):
            return True
        try:
            while self._subscription.can_read(timeout=0):
                self._apply(self._subscription.read_response())
        except (redis.RedisError, OSError) as exc:
            self._cache_off(f"lost the Redis subscription ({type(exc).__name__})")
            self._unsubscribe()
            return False
        self._drained = True
        return True

    def _cache_off(self, why):
        if not self._off_logged:
            log.warning("cache off: %s; every read goes to MySQL until it can subscribe again", why)
            self._off_logged = True

    def _apply(self, message):
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return  # subscribe confirmations and the like
        kind, _, user_id = message[2].decode("ascii", "replace").partition(":")
        self.forget(user_id, kind)

    def _subscribe(self):
        now = time.monotonic()
        if now < self._retry_at:
            return False
        connection = self._subscriber_pool.make_connection()
        try:
            connection.connect()
            connection.send_command("SUBSCRIBE", self.channel)
            reply = connection.read_response()
            if not isinstance(reply, list) or reply[0] != b"subscribe":
                raise redis.ResponseError(f"unexpected reply to SUBSCRIBE: {reply!r}")
        except (redis.RedisError, OSError) as exc:
            connection.disconnect()
            self._retry_at = now + RETRY_SECONDS
            self._cache_off(f"cannot subscribe to Redis ({type(exc).__name__})")
            return False
        self.clear()  # nothing kept from before the subscription can be trusted
        self._readable = select.poll()
        # redis-py keeps the socket private; this connection is ours alone (never pooled).
        self._readable.register(connection._sock, select.POLLIN | select.POLLPRI)
        self._drained = False  # the reply to SUBSCRIBE may have come with a message behind it
        self._subscription = connection
        if self._off_logged:
            log.warning("cache on again: subscribed to %s", self.channel)
            self._off_logged = False
        return True

    def _unsubscribe(self):
        self.clear()
        if self._subscription is not None:
            self._subscription.disconnect()
        self._subscription = None
        self._readable = None
        self._retry_at = time.monotonic() + RETRY_SECONDS

    def close(self):
        """Drop the subscription and the publisher's connections (tests, shutdown)."""
        with self._lock:
            self._unsubscribe()
            self._subscriber_pool.disconnect()
            self._publisher.close()


# --- the application's cache --------------------------------------------------------

_create_lock = threading.Lock()


def current():
    """This process's UserCache for the current app, or None when REDIS_URL is unset.

    Created on first use and keyed by PID, like the database pool: a server
    worker forked from the master never shares the master's sockets.
    """
    app = _app()
    extensions = app.extensions
    entry = extensions.get(EXTENSION)
    if entry is not None and entry[0] == os.getpid():
        return entry[1]
    config = app.config
    if not config["REDIS_URL"]:
        return None
    with _create_lock:
        entry = extensions.get(EXTENSION)
        if entry is None or entry[0] != os.getpid():
            cache = UserCache(config["REDIS_URL"], channel(config), config["CACHE_SECONDS"])
            entry = extensions[EXTENSION] = (os.getpid(), cache)
    return entry[1]


def read_through(kind, user_id, key, load):
    """`load()`'s value for `key` of `user_id`: this worker's kept copy when it can be trusted, else loaded.

    A loaded value is kept unless it is None (what must not be kept: a
    refused token) or a change was announced while it was loading. With
    REDIS_URL unset this is just `load()`.
    """
    cache = current()
    if cache is None:
        return load()
    value, ticket = cache.get(kind, user_id, key)
    if value is not None:
        return value
    value = load()
    if value is not None:
        cache.put(kind, user_id, key, value, ticket,
                  size=len(value) if isinstance(value, str) else ENTRY_BYTES)
    return value


def changed(user_id, kind=None):
    """Say that the current write changes reads of `user_id`: of `kind` (POSTS), or all (None).

    Announced once the current transaction commits (at once outside one).
    With REDIS_URL unset nothing is cached anywhere, so nothing is announced.
    """
    cache = current()
    if cache is None:
        return
    cache.forget(user_id, kind)
    db.on_commit(("user_cache", str(user_id), kind), lambda: cache.announce(user_id, kind))


def close(app):
    """Close this process's cache of `app`, if it has one (tests)."""
    entry = app.extensions.pop(EXTENSION, None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()
