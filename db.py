"""The database layer: a PyMySQL connection pool and a few query helpers.

This is the only module that imports PyMySQL. A request borrows one pooled
connection on first use (`get_db`) and returns it at teardown. Connections run
in autocommit mode, so a read costs one round trip and never pins a stale
REPEATABLE READ snapshot on a pooled connection; every write that touches more
than one row runs inside `transaction()` (or `retrying()`), which commits or
rolls back as one.

Errors are told apart by what they say about the statement (docs/operations.md,
"Running on a cluster"):
- Connection errors (server down, gone away, lost, timed out, shutting down,
  a Galera node not ready): the connection is closed, never pooled again, and
  the caller gets `DatabaseUnavailable` (503 + Retry-After). A read is re-run
  once on a new connection first (it changes nothing); a write is NOT, since
  it may have committed before the link broke (2013 after sending an INSERT),
  except when the server refused it before running it (1047: node not ready).
- Deadlock and lock-wait timeout (1213, 1205; Galera reports a certification
  conflict as 1213): the server rolled the work back, so it is safe to run
  again. A single autocommit statement is re-run; `retrying(fn)` re-runs a
  whole transaction; each a bounded number of times (DB_WRITE_RETRIES), then
  `WriteConflict` (a DatabaseUnavailable: 503 with its own message).
- Everything else (syntax, constraints) is raised as it is.

DB_HOST may name several servers ("h1:3306,h2:3306"): new connections go to
the first one that accepts and, on Galera, is Synced in the primary
component; a host that failed is skipped for HOST_RETRY_SECONDS, then tried
again, so traffic returns to it. With DB_CAUSAL_READS on (auto: when the
server runs Galera), each connection sets wsrep_sync_wait=1: every read
waits until the node has applied what the cluster committed before it.
"""
import contextlib
import datetime
import os
import random
import select
import threading
import time
from typing import NamedTuple

import pymysql
import pymysql.converters
import pymysql.cursors
from flask import current_app, g

IntegrityError = pymysql.err.IntegrityError
# Above every INT UNSIGNED id: the "before" of a first page in keyset pagination.
ABOVE_ALL_IDS = 4294967296
DUPLICATE_KEY = 1062
# Errors that mean "the database cannot answer now", not "the query is wrong".
_UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
# Codes of those that leave the connection unusable (client codes 2xxx,
# 0 = PyMySQL's "connection already closed"; server: 1047 node not ready
# (Galera), 1053 shutdown in progress, 1927 connection killed, 4031 idle
# disconnect (MySQL 8), 1040 too many connections, 1129/1130 refused host).
CONNECTION_LOST = {0, 1040, 1047, 1053, 1129, 1130, 1927, 4031,
                   2002, 2003, 2005, 2006, 2013, 2026, 2055}
# The server refused these before running anything: safe to send elsewhere.
NOT_RUN = {1047, 1040, 1129, 1130, 2002, 2003, 2005, 2026}
# The server rolled the statement (1205) or the transaction (1213) back.
DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205
CONFLICTS = {DEADLOCK, LOCK_WAIT_TIMEOUT}
HOST_RETRY_SECONDS = 5.0  # a host that failed is skipped this long, then tried again
STATE_CHECK_SECONDS = 2.0  # a pooled connection's Galera node is checked again after this long
BACKOFF_SECONDS = 0.02    # first pause before a conflicting write is re-run (doubles, jittered)
# The request's g itself, not its proxy: close_db runs after every request
# (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_g = g._get_current_object


class Result(NamedTuple):
    """What a write reports: rows changed, and the AUTO_INCREMENT id it made (0 if none)."""

    rowcount: int
    lastrowid: int


class DatabaseUnavailable(Exception):
    """The database could not be reached or did not answer in time."""

    # What the HTTP layer tells the client (503); the exception's own text stays in the log.
    client_message = "The database is unavailable. Retry shortly."


class WriteConflict(DatabaseUnavailable):
    """A write kept meeting deadlocks or certification conflicts and was given up (503)."""

    client_message = ("The write met concurrent writes to the same rows and was retried without success; "
                      "nothing was changed. Retry shortly.")


class OutcomeUnknown(DatabaseUnavailable):
    """The connection broke after a write was sent: it may or may not have committed (503).

    Never re-run automatically: the client, who knows what it asked, decides.
    """

    client_message = ("The database connection was lost while the write was being applied; it may or may "
                      "not have been saved. Check before retrying.")


def error_code(exc):
    """The MySQL error number of a PyMySQL exception, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_connection_error(exc):
    """True if `exc` means the connection is unusable (see CONNECTION_LOST)."""
    return isinstance(exc, _UNAVAILABLE) and (
        isinstance(exc, pymysql.err.InterfaceError) or error_code(exc) in CONNECTION_LOST)


def is_conflict(exc):
    """True for a deadlock or lock-wait timeout (Galera: certification failure): rolled back, re-runnable."""
    return isinstance(exc, _UNAVAILABLE) and error_code(exc) in CONFLICTS


# The server answered and refused the account: wrong user or password (1045),
# no access to the database (1044), unix-socket-only account (1698).
_CREDENTIALS_REFUSED = (1044, 1045, 1698)


def credentials_refused(exc):
    """The server's message if DatabaseUnavailable `exc` is a refused login, else "" (out of reach)."""
    cause = exc.__cause__
    if isinstance(cause, pymysql.err.OperationalError) and len(cause.args) == 2 \
            and cause.args[0] in _CREDENTIALS_REFUSED:
        return f"{cause.args[0]} {cause.args[1]}"
    return ""


def is_duplicate(exc):
    """True if `exc` is a unique-key violation (MySQL error 1062)."""
    return isinstance(exc, IntegrityError) and exc.args and exc.args[0] == DUPLICATE_KEY


def _datetime(value):
    """PyMySQL's DATETIME decoder, with a fast path for the one form MySQL sends.

    PyMySQL parses every DATETIME with a regular expression (2.5 us; a page
    of 20 posts has 42 of them); datetime.fromisoformat() reads
    'YYYY-MM-DD HH:MM:SS' in 0.35 us and gives the same datetime. Anything
    else (fractions, zero dates, invalid dates) goes to PyMySQL unchanged.
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("ascii")
    if len(value) == 19:
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    return pymysql.converters.convert_datetime(value)


_CONVERSIONS = dict(pymysql.converters.conversions)
_CONVERSIONS[pymysql.constants.FIELD_TYPE.DATETIME] = _datetime
_CONVERSIONS[pymysql.constants.FIELD_TYPE.TIMESTAMP] = _datetime


def hosts(config):
    """DB_HOST as a list of (host, port): 'a,b:3307' -> [('a', DB_PORT), ('b', 3307)].

    An IPv6 address goes in brackets: '[::1]:3306'.
    """
    found = []
    for item in str(config["DB_HOST"]).split(","):
        item = item.strip()
        if not item:
            continue
        host, port = item, config["DB_PORT"]
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif item.count(":") == 1:
            host, port = item.split(":")
            port = int(port)
        found.append((host, int(port)))
    return found or [("127.0.0.1", config["DB_PORT"])]


def connect_args(config, database=True):
    """Keyword arguments for pymysql.connect() built from the app config (the first DB_HOST).

    TLS is off unless DB_SSL_MODE asks for it: PyMySQL >= 1.2 spends 20-30 ms
    building a TLS context per new connection otherwise. The pool pays that
    once per connection, never per request.
    """
    host, port = hosts(config)[0]
    args = {
        "host": host,
        "port": port,
        "user": config["DB_USER"],
        "password": config["DB_PASSWORD"],
        "charset": "utf8mb4",
        "cursorclass": pymysql.cursors.DictCursor,
        "conv": _CONVERSIONS,
        "autocommit": True,
        "connect_timeout": config["DB_CONNECT_TIMEOUT"],
        "read_timeout": config["DB_READ_TIMEOUT"],
        "write_timeout": config["DB_WRITE_TIMEOUT"],
        # Store and compare every DATETIME in UTC whatever the server's zone.
        "init_command": "SET time_zone = '+00:00'",
    }
    if database:
        args["database"] = config["DB_NAME"]
    mode = config.get("DB_SSL_MODE", "disabled")
    if mode == "disabled":
        args["ssl_disabled"] = True
    else:
        ssl = {"ca": config["DB_SSL_CA"]} if config.get("DB_SSL_CA") else {}
        args["ssl"] = ssl
        args["ssl_verify_cert"] = mode in ("verify-ca", "verify-identity")
        args["ssl_verify_identity"] = mode == "verify-identity"
    return args


def _connect_any(config, database=True):
    """A plain connection to the first DB_HOST that accepts one (scripts, CLI, tests)."""
    args = connect_args(config, database=database)
    error = None
    for host, port in hosts(config):
        try:
            return pymysql.connect(**dict(args, host=host, port=port))
        except _UNAVAILABLE as exc:
            error = exc
    raise DatabaseUnavailable(str(error)) from error


# --- the pool ------------------------------------------------------------------------

GALERA_STATE = """SHOW GLOBAL STATUS WHERE Variable_name IN
    ('wsrep_ready', 'wsrep_local_state_comment', 'wsrep_cluster_status')"""


def galera_state(conn):
    """{'wsrep_ready': 'ON', 'wsrep_local_state_comment': 'Synced', 'wsrep_cluster_status': 'Primary'}
    of a Galera node, or None when the server does not run Galera (MySQL, plain MariaDB)."""
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        row = cur.fetchone()
        if row is None or str(row["Value"]).upper() != "ON":
            return None
        cur.execute(GALERA_STATE)
        return {r["Variable_name"].lower(): r["Value"] for r in cur.fetchall()}


def not_ready_reason(state):
    """Why a Galera node must not serve (its state from galera_state()), or None when it may."""
    if state is None:
        return None
    if state.get("wsrep_cluster_status") != "Primary":
        return f"not in the primary component (wsrep_cluster_status={state.get('wsrep_cluster_status')})"
    if state.get("wsrep_local_state_comment") != "Synced":
        return f"not Synced (wsrep_local_state_comment={state.get('wsrep_local_state_comment')})"
    if state.get("wsrep_ready") != "ON":
        return "not ready (wsrep_ready=OFF)"
    return None


class Pool:
    """One process's connections: idle ones kept up to `size`, more opened as needed, never waited for.

    Replaces DBUtils' PooledDB, whose "tough" cursors re-run any statement
    that failed with a connection error, writes included. Here nothing is
    re-run behind the caller's back (see _run and retrying()).
    """

    def __init__(self, config):
        self.size = config["DB_POOL_SIZE"]
        self.hosts = hosts(config)
        self.args = connect_args(config)
        self.causal = str(config.get("DB_CAUSAL_READS", "auto")).lower()
        self.check = self.causal != "off" or len(self.hosts) > 1
        self._idle = []
        self._down_until = {}   # host -> monotonic time before which it is skipped
        self._galera = {}       # host -> True/False once known
        self.in_use = 0
        self._lock = threading.Lock()

    def acquire(self):
        """A live connection: an idle one whose server has not closed it, else a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
                self.in_use += 1
            if conn is None:
                try:
                    return self._connect()
                except BaseException:
                    with self._lock:
                        self.in_use -= 1
                    raise
            if _still_open(conn) and not self._should_leave(conn) and self._still_ready(conn):
                return conn
            with self._lock:
                self.in_use -= 1
            _discard(conn)

    def release(self, conn, broken=False):
        """Take a connection back: kept idle when healthy and there is room, else closed."""
        keep = not broken and conn.open and not self._should_leave(conn)
        with self._lock:
            self.in_use -= 1
            if keep and len(self._idle) < self.size:
                self._idle.append(conn)
                return
        _discard(conn)

    def mark_down(self, conn):
        """The server behind `conn` failed: skip its host for new connections for a while."""
        host = getattr(conn, "_pool_host", None)
        if host is not None and len(self.hosts) > 1:
            self._down_until[host] = time.monotonic() + HOST_RETRY_SECONDS

    def _still_ready(self, conn):
        """A Galera connection's node is checked again every STATE_CHECK_SECONDS: one that left
        Synced or the primary component (joining, donor, desynced, partitioned) is left."""
        checked = getattr(conn, "_pool_checked", None)
        if checked is None or time.monotonic() - checked < STATE_CHECK_SECONDS:
            return True
        try:
            ready = not_ready_reason(galera_state(conn)) is None
        except _UNAVAILABLE:
            ready = False
        conn._pool_checked = time.monotonic()
        if not ready:
            self.mark_down(conn)
        return ready

    def _should_leave(self, conn):
        """True for a connection to a fallback host once a preferred host may be back."""
        index = getattr(conn, "_pool_index", 0)
        if index == 0:
            return False
        now = time.monotonic()
        return any(self._down_until.get(host, 0) <= now for host in self.hosts[:index])

    def _connect(self):
        """Connect to the first host not marked down that accepts and, on Galera, is Synced/Primary."""
        now = time.monotonic()
        order = sorted(range(len(self.hosts)), key=lambda i: (self._down_until.get(self.hosts[i], 0) > now, i))
        error = None
        for index in order:
            host = self.hosts[index]
            try:
                conn = pymysql.connect(**dict(self.args, host=host[0], port=host[1]))
            except _UNAVAILABLE as exc:
                error = exc
                self._down_until[host] = time.monotonic() + HOST_RETRY_SECONDS
                continue
            conn._pool_host, conn._pool_index = host, index
            try:
                reason = self._prepare(conn, host)
            except pymysql.err.MySQLError as exc:  # e.g. DB_CAUSAL_READS=on on a server without wsrep
                reason = f"refused the connection's setup: {exc}"
            if reason is None:
                self._down_until.pop(host, None)
                return conn
            _discard(conn)
            error = DatabaseUnavailable(f"{host[0]}:{host[1]} {reason}")
            self._down_until[host] = time.monotonic() + HOST_RETRY_SECONDS
        raise DatabaseUnavailable(str(error)) from error

    def _prepare(self, conn, host):
        """Check a new connection's Galera node and set causal reads; the reason to refuse it, or None."""
        if not self.check:
            return None
        if self._galera.get(host) is False and self.causal != "on":
            return None
        state = galera_state(conn)
        self._galera[host] = state is not None
        if state is not None:
            conn._pool_checked = time.monotonic()
        reason = not_ready_reason(state)
        if reason is None and state is not None:
            with conn.cursor() as cur:
                # No gap locks: on Galera a replicated INSERT (another user's
                # new session) that falls into a gap our UPDATE ... WHERE
                # user_id = ? locked aborts our transaction (1213), again on
                # every retry while inserts keep coming. Row locks are all
                # our write transactions need.
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        if reason is None and (self.causal == "on" or (self.causal == "auto" and state is not None)):
            with conn.cursor() as cur:
                # Every read of this connection waits until the node has
                # applied what the cluster had committed when it began.
                cur.execute("SET SESSION wsrep_sync_wait = 1")
        return reason

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _discard(conn)


def _still_open(conn):
    """False when the server has closed an idle connection (EOF or a goodbye packet is waiting).

    A zero-timeout poll of the socket, no round trip: a connection killed or
    a server restarted while the connection sat in the pool is noticed
    before a statement is sent into it, so such a statement is never lost
    with an unknown outcome.
    """
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _discard(conn):
    with contextlib.suppress(Exception):
        conn.close()
    # close() sends COM_QUIT and may fail on a dead link; make sure the socket goes.
    with contextlib.suppress(Exception):
        conn._force_close()


_pool_lock = threading.Lock()


def _pool():
    """Return this process's pool, creating it on first use.

    Created lazily and keyed by PID, so server workers forked after the app
    was loaded never share a socket with their parent.
    """
    ext = current_app.extensions
    pool = ext.get("db_pool")
    if pool is not None and pool[0] == os.getpid():
        return pool[1]
    with _pool_lock:
        pool = ext.get("db_pool")
        if pool is None or pool[0] != os.getpid():
            pool = (os.getpid(), Pool(current_app.config))
            ext["db_pool"] = pool
    return pool[1]


def get_db():
    """Return the request's connection, borrowing one from the pool on first use.

    Raises DatabaseUnavailable if no connection can be made.
    """
    conn = g.get("_db")
    if conn is None:
        conn = _pool().acquire()
        g._db = conn
    return conn


def close_db(exc=None):
    """Return the request's connection to the pool (teardown handler).

    A transaction left open (it cannot be, but a pooled connection must
    never carry one) is rolled back first.
    """
    context = _g()
    conn = context.pop("_db", None)
    if conn is None:
        return
    broken = False
    if context.pop("_in_transaction", False):
        try:
            conn.rollback()
        except _UNAVAILABLE:
            broken = True
    _pool().release(conn, broken=broken)


def _drop_connection(conn, exc):
    """Close the request's connection after a connection error; the next statement borrows another."""
    if g.get("_db") is conn:
        g.pop("_db")
        pool = _pool()
        if error_code(exc) in (1047, 1053) or error_code(exc) in NOT_RUN:
            pool.mark_down(conn)
        pool.release(conn, broken=True)


def _attempt(sql, params, fetch):
    conn = get_db()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return fetch(cur)
    except _UNAVAILABLE as exc:
        if is_connection_error(exc):
            _drop_connection(conn, exc)
        raise


def _run(sql, params, fetch, read):
    """Run one statement; re-run only what is known to be safe (see the module docstring)."""
    if g.get("_in_transaction"):
        return _attempt(sql, params, fetch)  # raw errors: transaction() decides for the whole block
    retries = current_app.config["DB_WRITE_RETRIES"]
    conflicts, reconnected = 0, False
    while True:
        try:
            return _attempt(sql, params, fetch)
        except _UNAVAILABLE as exc:
            if is_conflict(exc):  # rolled back by the server: safe to run again
                if conflicts < retries:
                    _pause(conflicts)
                    conflicts += 1
                    continue
                raise WriteConflict(_conflict_message(conflicts + 1)) from exc
            if is_connection_error(exc):
                # A read changes nothing, and the server ran nothing it refused
                # (NOT_RUN): once more, on a new connection (maybe another node).
                if not reconnected and (read or error_code(exc) in NOT_RUN):
                    reconnected = True
                    continue
                if not read and error_code(exc) not in NOT_RUN:
                    raise OutcomeUnknown(f"the connection was lost after a write was sent: {exc}") from exc
            raise DatabaseUnavailable(str(exc)) from exc


def _pause(attempt):
    """Wait before re-running a conflicting write: doubling, jittered, so racers spread out."""
    time.sleep(BACKOFF_SECONDS * (2 ** attempt) * random.uniform(0.5, 1.5))


def _conflict_message(attempts):
    return f"write conflict: deadlock or certification failure on each of {attempts} attempts"


def one(sql: str, params=None) -> dict | None:
    """Run a query and return its first row as a dict, or None."""
    return _run(sql, params, lambda cur: cur.fetchone(), True)


def many(sql: str, params=None) -> list[dict]:
    """Run a query and return all rows as a list of dicts."""
    return _run(sql, params, lambda cur: list(cur.fetchall()), True)


def execute(sql: str, params=None) -> Result:
    """Run a write and return Result(rowcount, lastrowid).

    Raises IntegrityError (see is_duplicate) on a constraint violation.
    Outside a transaction, a deadlock re-runs it (the server rolled it back);
    a lost connection does not (it may have committed): DatabaseUnavailable.
    """
    return _run(sql, params, lambda cur: Result(cur.rowcount, cur.lastrowid), False)


class _NotCommitted(Exception):
    """Internal: the block failed in a way that left nothing committed and may be re-run."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


@contextlib.contextmanager
def transaction():
    """Run the block's queries as one transaction: commit on success, else roll back.

    Actions registered with on_commit() inside the block run after the
    commit, in order; a rollback drops them. Inside an open transaction the
    block simply joins it (MySQL has no nested transactions: a second BEGIN
    would commit the first), so domain functions can be composed. A deadlock
    or certification conflict is raised as WriteConflict, a lost connection
    as DatabaseUnavailable; use retrying() to have the block re-run instead.
    """
    try:
        with _transaction():
            yield
    except _NotCommitted as exc:
        if is_conflict(exc.cause):
            raise WriteConflict(_conflict_message(1)) from exc.cause
        raise DatabaseUnavailable(str(exc.cause)) from exc.cause


@contextlib.contextmanager
def _transaction():
    if g.get("_in_transaction"):
        yield  # nested: part of the enclosing transaction
        return
    try:
        conn = get_db()
        conn.begin()
    except DatabaseUnavailable as exc:
        raise _NotCommitted(exc) from exc
    except _UNAVAILABLE as exc:
        if is_connection_error(exc):
            _drop_connection(conn, exc)
        raise _NotCommitted(exc) from exc
    g._in_transaction = True
    g._on_commit = {}
    committing = False
    try:
        yield
        committing = True
        conn.commit()
    except BaseException as exc:
        g.pop("_on_commit", None)
        g._in_transaction = False
        if not isinstance(exc, _UNAVAILABLE):
            with contextlib.suppress(*_UNAVAILABLE):
                conn.rollback()
            raise
        if is_connection_error(exc):
            _drop_connection(conn, exc)
            if committing and error_code(exc) not in NOT_RUN:
                raise OutcomeUnknown(f"the connection was lost at COMMIT: {exc}") from exc
            raise _NotCommitted(exc) from exc
        with contextlib.suppress(*_UNAVAILABLE):
            conn.rollback()
        if is_conflict(exc):
            raise _NotCommitted(exc) from exc
        raise DatabaseUnavailable(str(exc)) from exc
    g._in_transaction = False
    actions = g.pop("_on_commit", {})
    for action in actions.values():
        action()


def retrying(fn, *args, **kwargs):
    """Return fn(*args, **kwargs) run as one transaction, re-run whole when nothing was committed.

    Re-run on a deadlock or Galera certification conflict (1213, 1205) and on
    a connection lost before COMMIT was sent (the server rolled the work
    back; the next attempt may go to another host), at most DB_WRITE_RETRIES
    more times, with a short jittered pause. Then WriteConflict or
    DatabaseUnavailable (503). A connection lost at COMMIT is never re-run:
    OutcomeUnknown (a DatabaseUnavailable). `fn` must therefore be
    re-runnable: it reads what it needs inside, and has no effect outside
    the database except through on_commit().
    """
    if g.get("_in_transaction"):
        return fn(*args, **kwargs)
    attempts = 1 + current_app.config["DB_WRITE_RETRIES"]
    for attempt in range(attempts):
        try:
            with _transaction():
                return fn(*args, **kwargs)
        except _NotCommitted as exc:
            if attempt == attempts - 1:
                if is_conflict(exc.cause):
                    raise WriteConflict(_conflict_message(attempts)) from exc.cause
                raise DatabaseUnavailable(str(exc.cause)) from exc.cause
            _pause(attempt)


def on_commit(key, action):
    """Run `action()` once the open transaction commits, or now when none is open.

    Registering the same `key` twice in one transaction runs the action once.
    For what must follow a write but never precede it, such as telling other
    processes that a row changed.
    """
    pending = g.get("_on_commit")
    if pending is None:
        action()
    else:
        pending.setdefault(key, action)


def run_script(config, sql_text, database=True):
    """Run a whole SQL script (e.g. sql/schema.sql) on a dedicated connection.

    The server splits the statements (MULTI_STATEMENTS), so quoting and
    comments are parsed by MySQL itself, exactly as the mysql CLI would.
    """
    args = connect_args(config, database=database)
    args["client_flag"] = pymysql.constants.CLIENT.MULTI_STATEMENTS
    error = None
    for host, port in hosts(config):
        try:
            conn = pymysql.connect(**dict(args, host=host, port=port))
            break
        except _UNAVAILABLE as exc:
            error = exc
    else:
        raise DatabaseUnavailable(str(error)) from error
    try:
        with conn.cursor() as cur:
            cur.execute(sql_text)
            while cur.nextset():
                pass
    finally:
        conn.close()


def server_execute(config, sql, params=None):
    """Run one statement without selecting a database (create/drop database)."""
    conn = _connect_any(config, database=False)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def node_not_ready():
    """Why the node this request's connection is on must not serve (see not_ready_reason), or None.

    A node that must not serve is left: the connection is closed and its
    host skipped for new connections for a while; with several DB_HOST
    entries another node is tried at once, and only when it is not ready
    either is the reason returned.
    """
    for _ in range(2 if len(_pool().hosts) > 1 else 1):
        conn = get_db()
        try:
            reason = not_ready_reason(galera_state(conn))
        except _UNAVAILABLE as exc:
            if is_connection_error(exc):
                _drop_connection(conn, exc)
            raise DatabaseUnavailable(str(exc)) from exc
        if reason is None:
            return None
        g.pop("_db", None)
        pool = _pool()
        pool.mark_down(conn)
        pool.release(conn, broken=True)
        host = getattr(conn, "_pool_host", ("?", "?"))
        reason = f"the database node {host[0]}:{host[1]} is {reason}"
    return reason


def init_app(app):
    """Register the teardown that returns each request's connection."""
    app.teardown_appcontext(close_db)


def pool_stats():
    """Return (in_use, idle) connections of this process's pool; (0, 0) before first use."""
    pool = current_app.extensions.get("db_pool")
    if pool is None or pool[0] != os.getpid():
        return 0, 0
    return pool[1].in_use, len(pool[1]._idle)


def close_pool(app):
    """Close this process's pool of `app` (tests and shutdown)."""
    pool = app.extensions.pop("db_pool", None)
    if pool is not None:
        pool[1].close()
