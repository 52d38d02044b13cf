"""TEMPORARY bridge to the `user` table until the Layout merge; then accounts/users.py."""
from dataclasses import dataclass

from flask import current_app

import db
from rest import passwords, refresh, throttle, user_cache, validation


@dataclass(frozen=True)
class Locked:
    id: int
    username: str
    password_state: str


LOCK = "SELECT id, username, SHA2(CONCAT(token_version, ':', password), 256) AS password_state FROM user WHERE id = %s FOR UPDATE"
SET_PASSWORD = "UPDATE user SET password = %s, token_version = token_version + 1 WHERE id = %s"


def password_problem(password):
    if not isinstance(password, str):
        return "must be a string"
    return validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])


def lock(user_id):
    row = db.one(LOCK, (user_id,))
    return None if row is None else Locked(row["id"], row["username"], row["password_state"])


def hash_password(password):
    return passwords.hash_password(password)


def set_password_hash(user_id, password_hash):
    db.execute(SET_PASSWORD, (password_hash, user_id))
    user_cache.changed(user_id)


def end_sessions(user_id):
    refresh.revoke_all(user_id)


def clear_login_failures(user_id):
    db.execute("UPDATE user SET failed_logins = 0, failed_since = NULL, last_failed_at = NULL"
               " WHERE id = %s", (user_id,))
