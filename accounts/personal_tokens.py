"""Personal access tokens: long-lived, scoped credentials a user hands to a script.

Owns the `personal_token` table. A token is PREFIX + 43 base62 characters
(256 random bits) + a 6-character base62 CRC32 of everything before it, as
GitHub's tokens are: secret scanners recognise the prefix, and a mistyped or
truncated token is refused by its checksum without a database round trip.
Only SHA-256(token) is stored (a 256-bit random secret needs no slow hash);
`lookup()` finds a token, its user and its liveness in one indexed query.

A token lives until its expiry, its deletion, the user's deletion (the row
cascades) or the user's next token-version bump: an admin-flag change, a
password change and logout-all. The token stores the version it was made
under and the lookup requires it to be the user's current one, so "log this
user out everywhere" (accounts.users.revoke_everything) ends PATs too: after
a compromise, a password change must also end what the intruder minted.

Last use (time and address) is written at most once per LAST_USED_EVERY
seconds per token, across all workers: the lookup reads whether the stored
time is stale, and only then a conditional UPDATE runs (which one worker wins).

With REDIS_URL set, a worker keeps what a lookup found in the per-worker user
cache (accounts/cache.py), filed under the token's user, exactly as it keeps
identities of JWTs: every change that can end a PAT (its deletion or
revocation here, a token-version bump, the user's deletion) announces the
user, so the kept copy is forgotten before the next request. A worker learns
which user a token hash belongs to from its first lookup; expiry is checked
on every use.
"""
import hashlib
import secrets
import string
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

import db
from accounts import cache, errors

PREFIX = "jwtapi_pat_"
ALPHABET = string.digits + string.ascii_letters  # base62
RANDOM_CHARS = 43   # 62**43 > 2**256: at least 256 random bits
CHECKSUM_CHARS = 6  # 62**6 > 2**32: a whole CRC32
LENGTH = len(PREFIX) + RANDOM_CHARS + CHECKSUM_CHARS
NAME_MAX = 100
MAX_PER_USER = 100
LAST_USED_EVERY = 60  # seconds
IP_MAX = 45
KNOWN_OWNERS_MAX = 10_000  # per process: token hash -> user id, learned by lookups

# Scopes: a resource and a verb. They only narrow what the user may do: the
# token acts as its user, whose own rights (owner or admin) still apply.
SCOPES = ("posts:read", "posts:write", "authors:read", "authors:write",
          "users:read", "users:write", "introspect")
ADMIN_ONLY_SCOPES = ("introspect",)


@dataclass(frozen=True)
class Found:
    """A live token and its user, as `lookup()` returns it."""

    token_id: int
    user_id: int
    username: str
    is_admin: bool
    token_version: int
    scopes: tuple
    created: int   # epoch seconds
    expires: int   # epoch seconds

    def has(self, scope: str) -> bool:
        return scope in self.scopes


# --- the token's format ------------------------------------------------------------

def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def new_token() -> str:
    """A fresh token: prefix, 256 random bits in base62, CRC32 checksum."""
    body = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return body + _checksum(body)


def looks_like(token) -> bool:
    """True if `token` has our prefix (so it is a PAT, right or wrong, not a JWT)."""
    return isinstance(token, str) and token.startswith(PREFIX)


def well_formed(token) -> bool:
    """Prefix, length, alphabet and checksum all right: worth a database lookup."""
    if not looks_like(token) or len(token) != LENGTH:
        return False
    body, check = token[:-CHECKSUM_CHARS], token[-CHECKSUM_CHARS:]
    if not all(c in ALPHABET for c in token[len(PREFIX):]):
        return False
    return secrets.compare_digest(_checksum(body), check)


def token_hash(token: str) -> bytes:
    """What is stored and looked up: SHA-256 of the token."""
    return hashlib.sha256(token.encode("ascii")).digest()


# --- scopes ------------------------------------------------------------------------

def checked_scopes(scopes, is_admin: bool) -> tuple:
    """The requested scopes, deduplicated and sorted; RuleBroken/Forbidden if not grantable."""
    if not isinstance(scopes, list) or not scopes:
        raise errors.RuleBroken("'scopes' must be a non-empty list of scopes.", field="scopes")
    for scope in scopes:
        if scope not in SCOPES:
            shown = scope if isinstance(scope, str) else type(scope).__name__
            raise errors.RuleBroken(f"Unknown scope {shown!r}; known: {', '.join(SCOPES)}.",
                                    field="scopes")
        if scope in ADMIN_ONLY_SCOPES and not is_admin:
            raise errors.Forbidden(f"Only an admin can grant the scope {scope!r}.", field="scopes")
    return tuple(sorted(set(scopes)))


# --- the table -----------------------------------------------------------------------

INSERT_TOKEN = """
    INSERT INTO personal_token (user_id, name, token_hash, scopes, token_version, created, expires_at)
    SELECT u.id, %s, %s, %s, u.token_version, UTC_TIMESTAMP(), %s FROM user u WHERE u.id = %s"""
COUNT_LIVE = """
    SELECT COUNT(*) AS n FROM personal_token t JOIN user u ON u.id = t.user_id
    WHERE t.user_id = %s AND t.token_version = u.token_version AND t.expires_at > UTC_TIMESTAMP()"""
TOKEN_BY_ID = """
    SELECT id, user_id, name, scopes, created, expires_at, last_used_at, last_used_ip
    FROM personal_token WHERE id = %s"""
LIVE_TOKEN_BY_ID = """
    SELECT t.id, t.user_id, t.name, t.scopes, t.created, t.expires_at, t.last_used_at, t.last_used_ip
    FROM personal_token t JOIN user u ON u.id = t.user_id
    WHERE t.id = %s AND (%s IS NULL OR t.user_id = %s)
      AND t.token_version = u.token_version AND t.expires_at > UTC_TIMESTAMP()"""
LIVE_TOKENS_OF_USER = """
    SELECT t.id, t.user_id, t.name, t.scopes, t.created, t.expires_at, t.last_used_at, t.last_used_ip
    FROM personal_token t JOIN user u ON u.id = t.user_id
    WHERE t.user_id = %s AND t.token_version = u.token_version AND t.expires_at > UTC_TIMESTAMP()
    ORDER BY t.id DESC LIMIT %s"""
DELETE_TOKEN = "DELETE FROM personal_token WHERE id = %s AND user_id = %s"
TOKEN_OWNER = "SELECT user_id FROM personal_token WHERE id = %s"
OWNER_BY_HASH = "SELECT id, user_id FROM personal_token WHERE token_hash = %s"
# The one query per request: the token by its unique hash, its user, and
# whether it is live; `stale` says whether last use is due to be written.
LOOKUP = """
    SELECT t.id, t.user_id, t.scopes,
           UNIX_TIMESTAMP(t.created) AS created, UNIX_TIMESTAMP(t.expires_at) AS expires,
           u.username, u.is_admin, u.token_version,
           (t.last_used_at IS NULL OR t.last_used_at < UTC_TIMESTAMP() - INTERVAL %s SECOND) AS stale
    FROM personal_token t JOIN user u ON u.id = t.user_id
    WHERE t.token_hash = %s AND t.token_version = u.token_version
      AND t.expires_at > UTC_TIMESTAMP()"""
# Conditional: of workers racing on a stale row, one writes; the others match nothing.
TOUCH = """
    UPDATE personal_token SET last_used_at = UTC_TIMESTAMP(), last_used_ip = %s
    WHERE id = %s AND (last_used_at IS NULL OR last_used_at < UTC_TIMESTAMP() - INTERVAL %s SECOND)"""
PURGE_DEAD = """
    DELETE t FROM personal_token t JOIN user u ON u.id = t.user_id
    WHERE t.user_id = %s AND (t.token_version <> u.token_version OR t.expires_at <= UTC_TIMESTAMP())"""


# Tokens that can never work again (expired, or from an older token version),
# any user's, a batch at a time (MySQL has no LIMIT on a multi-table DELETE).
PURGE_ALL_DEAD = """
    DELETE FROM personal_token WHERE id IN (
      SELECT id FROM (
        SELECT t.id FROM personal_token t JOIN user u ON u.id = t.user_id
        WHERE t.expires_at <= UTC_TIMESTAMP() OR t.token_version <> u.token_version
        LIMIT %s) AS dead)"""
PURGE_BATCH = 1000


def purge_all() -> int:
    """Delete every dead token (the CLI's purge-tokens); return how many."""
    total = 0
    while True:
        deleted = db.execute(PURGE_ALL_DEAD, (PURGE_BATCH,)).rowcount
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def _utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def create(user_id: int, is_admin: bool, name, scopes, expires_in: int) -> tuple[dict, str]:
    """Make a token for `user_id`; return (its row, the token, shown only now).

    `name` must be unique among the user's tokens (Conflict); at most
    MAX_PER_USER live tokens (RuleBroken). Dead tokens of the user are
    deleted on the way, so they never count. NotFound if the user is gone.
    """
    scopes = checked_scopes(scopes, is_admin)
    token = new_token()
    try:
        with db.transaction():
            db.execute(PURGE_DEAD, (user_id,))
            if db.one(COUNT_LIVE, (user_id,))["n"] >= MAX_PER_USER:
                raise errors.RuleBroken(f"A user can have at most {MAX_PER_USER} personal access tokens.")
            result = db.execute(INSERT_TOKEN, (name, token_hash(token), " ".join(scopes),
                                               _utc(int(time.time()) + expires_in), user_id))
            if result.rowcount != 1:
                raise errors.NotFound("No such user.")
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise errors.Conflict(f"You already have a token named {name!r}.", field="name") from None
        raise
    return db.one(TOKEN_BY_ID, (result.lastrowid,)), token


def live(user_id: int) -> list[dict]:
    """The user's live tokens, newest first (never the token itself: it is not stored)."""
    return db.many(LIVE_TOKENS_OF_USER, (user_id, MAX_PER_USER))


def get(token_id: int, user_id: int | None) -> dict | None:
    """Live token `token_id`, of `user_id` only unless None (admins); None when there is none."""
    return db.one(LIVE_TOKEN_BY_ID, (token_id, user_id, user_id))


def delete(token_id: int, user_id: int | None) -> int | None:
    """Delete token `token_id` of `user_id` (of anyone when None: admins); its owner's id, or None."""
    if user_id is None:
        row = db.one(TOKEN_OWNER, (token_id,))
        if row is None:
            return None
        user_id = row["user_id"]
    if db.execute(DELETE_TOKEN, (token_id, user_id)).rowcount != 1:
        return None
    cache.changed(user_id)  # every worker forgets the token before its next request
    return user_id


def revoke(token) -> int | None:
    """Delete the token `token` itself (RFC 7009 revocation); its owner's id, or None if unknown."""
    if not well_formed(token):
        return None
    row = db.one(OWNER_BY_HASH, (token_hash(token),))
    if row is None:
        return None
    return delete(row["id"], row["user_id"])


_owners = {}   # token hash -> user id (this process)
_touched = {}  # token id -> when this process last saw its last use recorded (monotonic s)


def lookup(token, ip: str | None = None, touch: bool = True) -> Found | None:
    """The live token `token` and its user, else None (malformed, unknown, expired, revoked).

    A token failing its checksum costs no query; a token this worker found
    before costs none while the user cache holds it. With `touch`, records
    the use (time and `ip`) when the last record is over LAST_USED_EVERY old.
    """
    if not well_formed(token):
        return None
    digest = token_hash(token)
    owner = _owners.get(digest)
    if owner is None:
        found, stale = _load(digest)
    else:
        loaded = []  # filled when the cache had no copy and the database answered

        def load():
            loaded.append(_load(digest))
            return loaded[0][0]
        found = cache.read_through(cache.IDENTITY, owner, ("pat", digest), load)
        stale = loaded[0][1] if loaded else None  # None: a kept copy; this process's record decides
    if found is None or found.expires <= time.time():
        return None
    if len(_owners) >= KNOWN_OWNERS_MAX:
        _owners.clear()
    _owners[digest] = found.user_id
    if touch:
        _record_use(found.token_id, ip, stale)
    return found


def _load(digest):
    """(Found or None, whether its last use is due to be written) from the database."""
    row = db.one(LOOKUP, (LAST_USED_EVERY, digest))
    if row is None:
        return None, None
    found = Found(row["id"], row["user_id"], row["username"], bool(row["is_admin"]),
                  row["token_version"], tuple(row["scopes"].split()),
                  int(row["created"]), int(row["expires"]))
    return found, bool(row["stale"])


def _record_use(token_id, ip, stale):
    """Write the last use when due: per the database's answer, else this process's own record."""
    now = time.monotonic()
    if stale is None:
        stale = now - _touched.get(token_id, float("-inf")) >= LAST_USED_EVERY
    if stale:
        db.execute(TOUCH, ((ip or "")[:IP_MAX] or None, token_id, LAST_USED_EVERY))
    if stale or token_id not in _touched:
        if len(_touched) >= KNOWN_OWNERS_MAX:
            _touched.clear()
        _touched[token_id] = now
