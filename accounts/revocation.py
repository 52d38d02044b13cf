"""Revoking tokens before they expire, and forgetting revocations that no longer matter.

Owns the `revoked_token` table. Three kinds of revocation state, all read by
`accounts.auth.identity()` in its one query:
- `revoked_token`: one access token by jti (logout); kept until the token
  would have expired anyway (plus the leeway), then purged;
- `refresh_family.revoked_at`: one session, its refresh token and every
  access token issued with its `fam` (logout, DELETE /sessions/<id>, reuse);
- `user.token_version`: every token of a user (logout-all, password change,
  admin-flag change: accounts.users.revoke_everything). Deleting the user
  deletes the rest by cascade.
"""
import random

from flask import current_app

import db
from accounts import cache, sessions

# Opportunistic purge: about one logout or refresh in PURGE_ONE_IN also
# deletes up to PURGE_BATCH dead rows per table, so the tables stay small
# without a cron job, and no request ever pays for a big delete.
PURGE_ONE_IN = 100
PURGE_BATCH = 1000

REVOKE_JTI = """
    INSERT INTO revoked_token (jti, expires_at) VALUES (%s, %s)
    ON DUPLICATE KEY UPDATE jti = jti"""
# Rows whose token is past exp + leeway: decode() refuses those tokens anyway.
PURGE_REVOKED_TOKENS = "DELETE FROM revoked_token WHERE expires_at < NOW() LIMIT %s"


def logout(payload: dict, user_id: int) -> None:
    """Revoke the access token `payload` (by jti) and its session, as one transaction."""
    leeway = current_app.config["JWT_LEEWAY"]

    def revoke():
        db.execute(REVOKE_JTI, (payload["jti"], sessions.utc(payload["exp"] + leeway)))
        cache.changed(user_id)
        if payload.get("fam"):
            sessions.revoke(payload["fam"], user_id)
    # Re-run whole on a deadlock or Galera certification conflict.
    db.retrying(revoke)
    maybe_purge()


def revoke_access(payload: dict, user_id: int) -> None:
    """Revoke the one access token `payload` by its jti, its session untouched (RFC 7009)."""
    leeway = current_app.config["JWT_LEEWAY"]
    db.execute(REVOKE_JTI, (payload["jti"], sessions.utc(payload["exp"] + leeway)))
    cache.changed(user_id)


def purge(batch: int = PURGE_BATCH) -> tuple[int, int]:
    """Delete up to `batch` dead rows from each table; return (tokens, families) deleted."""
    config = current_app.config
    family_grace = config["JWT_ACCESS_TTL"] + config["JWT_LEEWAY"]
    tokens = db.execute(PURGE_REVOKED_TOKENS, (batch,)).rowcount
    families = sessions.purge(family_grace, batch)
    return tokens, families


def purge_all():
    """Purge in batches until nothing is left to delete; return the totals (CLI)."""
    total = [0, 0]
    while True:
        tokens, families = purge()
        total[0] += tokens
        total[1] += families
        if tokens < PURGE_BATCH and families < PURGE_BATCH:
            return tuple(total)


def maybe_purge():
    """Run one bounded purge about once in PURGE_ONE_IN calls."""
    if random.randrange(PURGE_ONE_IN) == 0:
        purge()
