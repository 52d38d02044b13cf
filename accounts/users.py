"""Accounts: the `user` table and every statement that reads or writes it.

The table keeps the Flask-JWT tutorial's names (`user`, `password`), so its
seeding INSERT works as written. `password` holds a hash, never a password,
and only `with_hash()` ever selects it.

`revoke_everything()` is the one definition of "log this user out
everywhere": the token version moves on (every access and refresh token
carries the version it was issued under) and every session ends, in one
transaction. Logout-all, password and admin-flag changes, resets and the CLI
all call it.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import db
from accounts import cache, events, passwords, sessions
from accounts.errors import Conflict, NotFound


@dataclass(frozen=True)
class User:
    """The authenticated caller. Never carries the password hash."""

    id: int
    username: str
    is_admin: bool
    token_version: int

    def to_json(self) -> dict:
        return {"id": self.id, "username": self.username}

    def __str__(self):
        return f"User(id='{self.id}')"


class UserRow(TypedDict):
    """A user as the API shows it (USER_BY_ID's columns)."""

    id: int
    username: str
    is_admin: int
    created: datetime


USER_BY_ID = "SELECT id, username, is_admin, created FROM user WHERE id = %s"
USER_BY_NAME = "SELECT id, username, is_admin, created FROM user WHERE username = %s"
# Newest first, keyset-paginated on the primary key.
USERS_PAGE = """
    SELECT id, username, is_admin, created FROM user
    WHERE id < %s ORDER BY id DESC LIMIT %s"""
# The one query that reads the hash.
USER_WITH_HASH_BY_NAME = """
    SELECT id, username, password, is_admin, token_version
    FROM user WHERE username = %s"""
REPLACE_HASH = "UPDATE user SET password = %s WHERE id = %s AND password = %s"
# Identity and revocation in one round trip: the user row, and whether this
# token's jti was revoked by a logout or its session (refresh family) was
# revoked (logout, DELETE /sessions/<id>, refresh-token reuse). It reads the
# other two tables but writes none, so it lives with the row it returns.
USER_FOR_TOKEN = """
    SELECT u.id, u.username, u.is_admin, u.token_version,
           EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = %s)
           OR EXISTS (SELECT 1 FROM refresh_family f
                      WHERE f.id = %s AND f.revoked_at IS NOT NULL) AS revoked
    FROM user u WHERE u.id = %s"""
INSERT_USER = "INSERT INTO user (username, password, is_admin) VALUES (%s, %s, %s)"
# One statement whatever changes: NULL keeps the column.
UPDATE_USER = """
    UPDATE user SET
      username = COALESCE(%(username)s, username),
      password = COALESCE(%(password)s, password),
      is_admin = COALESCE(%(admin)s, is_admin)
    WHERE id = %(id)s"""
BUMP_TOKEN_VERSION = "UPDATE user SET token_version = token_version + 1 WHERE id = %s"
# Posts, authors and sessions go with the user by their foreign keys' ON DELETE CASCADE.
DELETE_USER = "DELETE FROM user WHERE id = %s"
ANY_USER = "SELECT EXISTS (SELECT 1 FROM user) AS found"


def user_from_row(row: dict) -> User:
    """The User of a row that has id, username, is_admin and token_version."""
    return User(row["id"], row["username"], bool(row["is_admin"]), row["token_version"])


def any_exist() -> bool:
    """True if the database holds at least one account (a production first start holds none)."""
    return db.one(ANY_USER)["found"] == 1


def get(user_id: int) -> UserRow | None:
    """The user `user_id`, or None."""
    return db.one(USER_BY_ID, (user_id,))


def get_by_name(username: str) -> UserRow | None:
    """The user named `username` (as the column's collation compares), or None."""
    return db.one(USER_BY_NAME, (username,))


def page(before: int | None, limit: int) -> list[UserRow]:
    """Up to `limit` users with ids below `before` (None: from the newest), newest first."""
    return db.many(USERS_PAGE, (before or db.ABOVE_ALL_IDS, limit))


def with_hash(username: str) -> dict | None:
    """The row of `username` with its password hash: for authenticate() only."""
    return db.one(USER_WITH_HASH_BY_NAME, (username,))


def replace_hash(user_id: int, new_hash: str, old_hash: str) -> None:
    """Store `new_hash` unless the hash changed since it was read (a password change won)."""
    db.execute(REPLACE_HASH, (new_hash, user_id, old_hash))


USER_TO_LOG_IN = "SELECT id, username, is_admin, token_version FROM user WHERE id = %s"


def to_log_in(user_id: int) -> User | None:
    """The User `user_id` for issuing tokens after a second step or a passkey login, or None."""
    row = db.one(USER_TO_LOG_IN, (user_id,))
    return user_from_row(row) if row else None


def for_token(user_id: int, jti: str, family_id: str | None) -> dict | None:
    """The user row plus `revoked` (the token's jti or session is revoked), or None."""
    return db.one(USER_FOR_TOKEN, (jti, family_id, user_id))


def name_taken(username: str) -> Conflict:
    """The refusal of a username someone already has."""
    return Conflict(f"The username '{username}' is taken.", field="username")


def raise_if_taken(username: str) -> None:
    """After a write conflict on creating `username`: Conflict if the name exists now.

    On a Galera cluster a registration of the same name committed on another
    node aborts ours at certification (1213), on every retry while the race
    lasts. The server rolled ours back, so a name that exists afterwards is
    someone else's: the answer is the 409 a single server gives.
    """
    if get_by_name(username) is not None:
        raise name_taken(username)


def create(username: str, password: str, admin: bool = False) -> UserRow:
    """Insert a user with an argon2id hash of `password` and return its row.

    The unique index decides duplicates, so racing requests give one row and
    Conflict for the rest. Raises Conflict when the name is taken.
    """
    try:
        result = db.execute(INSERT_USER, (username, passwords.hash_password(password), admin))
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise name_taken(username) from None
        raise
    except db.WriteConflict:
        raise_if_taken(username)
        raise
    return get(result.lastrowid)


def update(user_id: int, username: str | None = None, password: str | None = None,
           admin: bool | None = None) -> UserRow:
    """Change what is not None and return the row; a new password or admin flag logs the user out everywhere.

    Raises Conflict when the new username is taken, NotFound when the user is gone.
    """
    params = {"id": user_id, "username": username, "admin": None if admin is None else int(admin),
              "password": None if password is None else passwords.hash_password(password)}
    def write():
        db.execute(UPDATE_USER, params)
        cache.changed(user_id)  # the username is in cached reads too
        if password is not None or admin is not None:
            revoke_everything(user_id)
        if password is not None:
            events.record("password_changed", user_id)
        if admin is not None:
            events.record("admin_changed", user_id, detail="granted" if admin else "removed")
    try:
        # One transaction, re-run whole on a deadlock or Galera certification conflict.
        db.retrying(write)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise name_taken(username) from None
        raise
    row = get(user_id)
    if row is None:  # deleted meanwhile
        raise NotFound("No such user.")
    return row


def revoke_everything(user_id: int) -> None:
    """Revoke every token and session of `user_id`, in one transaction (joins an open one)."""
    def write():
        db.execute(BUMP_TOKEN_VERSION, (user_id,))
        sessions.revoke_all(user_id)
    db.retrying(write)


def delete(user_id: int) -> bool:
    """Delete the user and, by cascade, their posts, authors and sessions; False if there was none."""
    def write():
        cache.changed(user_id)
        deleted = db.execute(DELETE_USER, (user_id,)).rowcount
        if deleted:
            events.record("account_deleted", user_id)  # the event keeps the id, never the name
        return deleted
    return db.retrying(write) == 1


# --- what a password-reset token is tied to (accounts/password_reset.py) ------------

# Computed by the database, so the hash never leaves it: any change of the
# password (any route, the CLI, an UPDATE typed in the mysql client) and any
# logout-all (token_version) changes it, and a reset token bound to it dies.
_RESET_COLUMNS = "id, username, SHA2(CONCAT(token_version, ':', password), 256) AS password_state"
RESET_TARGET_BY_ID = f"SELECT {_RESET_COLUMNS} FROM user WHERE id = %s"
RESET_TARGET_BY_NAME = f"SELECT {_RESET_COLUMNS} FROM user WHERE username = %s"
RESET_TARGET_LOCKED = f"SELECT {_RESET_COLUMNS} FROM user WHERE id = %s FOR UPDATE"


def reset_target(user_id: int | None = None, username: str | None = None,
                 lock: bool = False) -> dict | None:
    """{id, username, password_state} of the user (by id or name), or None; `lock` locks the row."""
    if username is not None:
        return db.one(RESET_TARGET_BY_NAME, (username,))
    return db.one(RESET_TARGET_LOCKED if lock else RESET_TARGET_BY_ID, (user_id,))


# --- legacy hashes (policy: accounts/passwords.py) ---------------------------------

# The Werkzeug methods (with their parameters) that legacy hashes in the table use.
# (Login failures used to be counted in failed_logins, failed_since and
# last_failed_at; accounts/throttle.py counts them per name and address now, and
# those columns are no longer written.)
LEGACY_HASH_METHODS = """
    SELECT DISTINCT SUBSTRING_INDEX(password, '$', 1) AS method FROM user
    WHERE password LIKE 'pbkdf2:%' OR password LIKE 'scrypt:%'"""


def legacy_hash_methods() -> list[str]:
    """The legacy hash methods present, such as 'pbkdf2:sha256:150000' (one table scan)."""
    return [row["method"] for row in db.many(LEGACY_HASH_METHODS)]
