"""Sessions: the `refresh_family` table, one row per login, rotated at every exchange.

A refresh token carries its family id (`fam`) and its own `jti`. The family
row names the one jti that may be exchanged next (`current_jti`) and the one
it replaced (`previous_jti`). An exchange is ONE compare-and-set UPDATE whose
row count decides, so of any number of concurrent exchanges of a token exactly
one wins, on any number of workers.

Presenting any other jti of a live family is reuse (RFC 9700 section 4.14.2):
the token was copied, so the whole family is revoked and both the thief and
the victim must log in again. One exception: the previous jti within
JWT_REFRESH_GRACE seconds of its rotation is refused WITHOUT revoking, since
that is what a client racing itself (two tabs) or retrying a lost response
looks like. It is never re-issued: single use stays single use.

A family's `expires_at` is absolute: rotation never extends a session.
"""
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import NamedTuple

from flask import current_app

import db
from accounts import cache
from accounts.errors import RefreshRejected

log = logging.getLogger(__name__)


class Family(NamedTuple):
    """A session: its id, the jti its next refresh token must carry, its absolute expiry (epoch s)."""

    id: str
    jti: str
    exp: int


USER_AGENT_MAX = 255
IP_MAX = 45  # the longest IPv6 text form; the column's size
LIST_LIMIT = 100


def utc(epoch):
    """A naive UTC datetime for an epoch second (every DATETIME column is UTC)."""
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


# --- starting a session --------------------------------------------------------

INSERT_FAMILY = """
    INSERT INTO refresh_family
        (id, user_id, current_jti, created, last_used, expires_at, user_agent, ip)
    VALUES (%s, %s, %s, NOW(), NOW(), %s, %s, %s)"""


def start(user_id: int, user_agent: str | None, ip: str | None) -> Family:
    """Create a family for `user_id` (a new session) seen from `user_agent` at `ip`; return it."""
    exp = int(time.time()) + current_app.config["JWT_REFRESH_TTL"]
    family = Family(uuid.uuid4().hex, uuid.uuid4().hex, exp)
    agent = (user_agent or "")[:USER_AGENT_MAX] or None
    # The address may come from a proxy header (TRUSTED_PROXIES): cut, never fail.
    ip = (ip or "")[:IP_MAX] or None
    db.execute(INSERT_FAMILY, (family.id, user_id, family.jti, utc(exp), agent, ip))
    return family


# --- rotation --------------------------------------------------------------------

# The compare-and-set: succeeds for exactly one caller presenting current_jti.
# MySQL assigns left to right, so previous_jti receives the old current_jti.
ROTATE = """
    UPDATE refresh_family
    SET previous_jti = current_jti, current_jti = %s,
        rotated_at = NOW(), last_used = NOW()
    WHERE id = %s AND user_id = %s AND current_jti = %s
      AND revoked_at IS NULL AND expires_at > NOW()"""
# Why an exchange lost: read after the failed UPDATE, so it sees the winner's commit.
FAMILY_STATE = """
    SELECT user_id, current_jti, previous_jti,
           revoked_at IS NOT NULL AS revoked,
           expires_at <= NOW() AS expired,
           rotated_at IS NOT NULL AND rotated_at >= NOW() - INTERVAL %s SECOND AS in_grace
    FROM refresh_family WHERE id = %s"""
REVOKE_ON_REUSE = "UPDATE refresh_family SET revoked_at = NOW() WHERE id = %s AND revoked_at IS NULL"


def rotate(payload: dict) -> Family:
    """Exchange the verified refresh-token `payload` for the family's next jti.

    Returns the Family to issue the new tokens from (same id and expiry, new
    jti). Raises RefreshRejected when the token is not the family's current
    one; revokes the family first when that is reuse.
    """
    family = Family(payload.get("fam"), uuid.uuid4().hex, payload["exp"])
    if family.id is None:
        raise RefreshRejected("Refresh token has no session (fam)")
    user_id = int(payload["sub"])
    if db.execute(ROTATE, (family.jti, family.id, user_id, payload["jti"])).rowcount == 1:
        return family
    raise RefreshRejected(_why_rejected(family.id, user_id, payload["jti"]))


def _why_rejected(family_id, user_id, jti):
    """The reason an exchange failed; revokes the family on reuse."""
    grace = current_app.config["JWT_REFRESH_GRACE"]
    row = db.one(FAMILY_STATE, (grace, family_id))
    if row is None or row["user_id"] != user_id or row["revoked"]:
        return "Refresh token was revoked"
    if row["expired"]:
        return "Refresh token has expired"
    if jti == row["current_jti"]:
        return "Refresh token was revoked"  # revoked or expired between the two queries
    if jti == row["previous_jti"] and grace > 0 and row["in_grace"]:
        return "Refresh token was already used"
    db.execute(REVOKE_ON_REUSE, (family_id,))
    cache.changed(user_id)
    log.warning("refresh token reuse: session %s of user %s revoked", family_id, user_id)
    return "Refresh token was already used; the session has been revoked"


# --- revocation and listing ----------------------------------------------------

REVOKE_FAMILY_OF_USER = """
    UPDATE refresh_family SET revoked_at = NOW()
    WHERE id = %s AND user_id = %s AND revoked_at IS NULL"""
REVOKE_LIVE_FAMILY_OF_USER = """
    UPDATE refresh_family SET revoked_at = NOW()
    WHERE id = %s AND user_id = %s AND revoked_at IS NULL AND expires_at > NOW()"""
FAMILY_OWNER = "SELECT user_id FROM refresh_family WHERE id = %s"
CURRENT_JTI = """
    SELECT 1 AS live FROM refresh_family
    WHERE id = %s AND current_jti = %s AND revoked_at IS NULL AND expires_at > NOW()"""
REVOKE_ALL_OF_USER = """
    UPDATE refresh_family SET revoked_at = NOW()
    WHERE user_id = %s AND revoked_at IS NULL"""
LIVE_FAMILIES = """
    SELECT id, created, last_used, user_agent, ip, expires_at
    FROM refresh_family
    WHERE user_id = %s AND revoked_at IS NULL AND expires_at > NOW()
    ORDER BY last_used DESC, id
    LIMIT %s"""


def revoke(family_id: str, user_id: int) -> None:
    """Revoke `user_id`'s family `family_id` if it is still live (logout)."""
    db.execute(REVOKE_FAMILY_OF_USER, (family_id, user_id))
    cache.changed(user_id)


def revoke_live(family_id: str, user_id: int | None = None) -> bool:
    """Revoke a live family, of `user_id` only unless None (admin); True if one was."""
    if user_id is None:
        owner = db.one(FAMILY_OWNER, (family_id,))
        if owner is None:
            return False
        user_id = owner["user_id"]
    revoked = db.execute(REVOKE_LIVE_FAMILY_OF_USER, (family_id, user_id)).rowcount == 1
    if revoked:
        cache.changed(user_id)
    return revoked


def revoke_all(user_id: int) -> int:
    """Revoke every family of `user_id`; returns how many were live."""
    live = db.execute(REVOKE_ALL_OF_USER, (user_id,)).rowcount
    cache.changed(user_id)
    return live


def is_current(family_id: str | None, jti: str) -> bool:
    """True if `jti` is the live family's next exchangeable refresh token (introspection)."""
    return family_id is not None and db.one(CURRENT_JTI, (family_id, jti)) is not None


def live(user_id: int) -> list[dict]:
    """The user's live families, most recently used first (at most LIST_LIMIT)."""
    return db.many(LIVE_FAMILIES, (user_id, LIST_LIMIT))


# A family is kept past its expiry for as long as an access token issued
# from it could live (its revocation must keep rejecting that token).
PURGE_FAMILIES = """
    DELETE FROM refresh_family WHERE expires_at < NOW() - INTERVAL %s SECOND LIMIT %s"""


def purge(grace: int, batch: int) -> int:
    """Delete up to `batch` families expired more than `grace` seconds ago; return how many."""
    return db.execute(PURGE_FAMILIES, (grace, batch)).rowcount
