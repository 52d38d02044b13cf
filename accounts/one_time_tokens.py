"""OWNS `one_time_token`: single-use tokens mailed to users (password reset, email verification).

A token is 256 random bits (token_urlsafe(32)); only its SHA-256 is stored,
so a copy of the table grants nothing. Each token is bound to what it is
about (the SHA-256 of the password hash, or of the address to verify): a
token whose binding no longer matches the account is dead. Issuing a token
deletes the user's older ones of the same purpose (the newest wins); taking
one deletes it (single use) in the caller's transaction.
"""
import hashlib
import secrets

import db

PASSWORD_RESET = "password_reset"
VERIFY_EMAIL = "verify_email"
PURPOSES = (PASSWORD_RESET, VERIFY_EMAIL)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128  # token_urlsafe(32) is 43 characters; anything much longer is not ours

DELETE_OLDER = "DELETE FROM one_time_token WHERE user_id = %s AND purpose = %s"
INSERT = """
    INSERT INTO one_time_token (token_hash, user_id, purpose, binding, created, expires_at)
    VALUES (%s, %s, %s, %s, NOW(), NOW() + INTERVAL %s SECOND)"""
# FOR UPDATE: two redemptions of one token serialize here; the loser finds no row.
LIVE = """
    SELECT user_id, binding FROM one_time_token
    WHERE token_hash = %s AND purpose = %s AND expires_at > NOW() FOR UPDATE"""
DELETE = "DELETE FROM one_time_token WHERE token_hash = %s"
PURGE = "DELETE FROM one_time_token WHERE expires_at < NOW() LIMIT %s"


def digest(text):
    """SHA-256 of `text` in hex: how tokens and bindings are stored."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def issue(user_id, purpose, binding, ttl):
    """A new raw token for `user_id` and `purpose`, valid `ttl` seconds; older ones die.

    `binding` is the text the token is tied to (stored as its SHA-256).
    Runs in the caller's transaction.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.execute(DELETE_OLDER, (user_id, purpose))
    db.execute(INSERT, (digest(token), user_id, purpose, digest(binding), ttl))
    return token


def take(token, purpose):
    """Consume `token`: return (user_id, binding digest) and delete it, or None if it is not live.

    Call inside a transaction, so a rollback (a rule that fails later) gives
    the token back, and a commit makes it single use.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = db.one(LIVE, (digest(token), purpose))
    if row is None:
        return None
    db.execute(DELETE, (digest(token),))
    return row["user_id"], row["binding"]


def forget(user_id, purpose):
    """Kill every token of `user_id` for `purpose`."""
    db.execute(DELETE_OLDER, (user_id, purpose))


def purge(batch=1000):
    """Delete up to `batch` expired tokens; return how many."""
    return db.execute(PURGE, (batch,)).rowcount
