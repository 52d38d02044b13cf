"""Users (seeds 000 and 002): list, read, change and delete accounts.

Authorization, the same on every route: a caller may touch only their own
row; an admin may touch any. Another user's id is a 404 for a non-admin,
exactly like an id that does not exist, so ids reveal nothing. Creating an
account is rest/registration.py (POST /users, /register, /signup).
"""
from flask import Blueprint, jsonify, make_response

import db
from rest import auth, inputs, pagination, passwords, refresh, user_cache
from rest.auth import current_user, token_required
from rest.errors import ApiError
from rest.registration import USER_BY_ID, checked_password, checked_username, user_json

bp = Blueprint("users", __name__)

# Newest first, keyset-paginated on the primary key.
USERS_PAGE = """
    SELECT id, username, is_admin, created FROM user
    WHERE id < %s ORDER BY id DESC LIMIT %s"""
# One statement whatever changes: NULL keeps the column. `bump` is 1 when the
# password or the admin flag changes, which revokes every token of the user.
UPDATE_USER = """
    UPDATE user SET
      username = COALESCE(%(username)s, username),
      password = COALESCE(%(password)s, password),
      is_admin = COALESCE(%(admin)s, is_admin),
      token_version = token_version + %(bump)s
    WHERE id = %(id)s"""
# Deleting a user deletes everything that hangs off it, in one transaction
# (the foreign keys cascade too; doing it explicitly keeps it visible and
# independent of the engine's FK settings).
DELETE_USER_ROWS = (
    "DELETE FROM post WHERE user_id = %s",
    "DELETE FROM author WHERE user_id = %s",
    "DELETE FROM refresh_family WHERE user_id = %s",
)
DELETE_USER = "DELETE FROM user WHERE id = %s"
UPDATE_FIELDS = ("username", "password", "current_password", "admin")
NO_ID = 4294967296  # above every INT UNSIGNED id: the first page's "before"


def _not_found():
    return ApiError(404, "No such user.")


def _target(user_id):
    """The row of `user_id` if the caller may touch it, else 404 (never 403: ids reveal nothing)."""
    if user_id != current_user.id and not current_user.is_admin:
        raise _not_found()
    row = db.one(USER_BY_ID, (user_id,))
    if row is None:
        raise _not_found()
    return row


@bp.get("/users")
@token_required
def list_users():
    """Admins: every user, with the admin flag. Others: a list holding only themselves."""
    limit, before = pagination.page_args()
    if current_user.is_admin:
        rows = db.many(USERS_PAGE, (before or NO_ID, limit + 1))
    else:
        row = db.one(USER_BY_ID, (current_user.id,))
        rows = [row] if row and current_user.id < (before or NO_ID) else []
    rows, cursor = pagination.page(rows, limit)
    return jsonify(users=[user_json(r, current_user.is_admin) for r in rows], next=cursor)


@bp.get("/users/<id:user_id>")
@token_required
def get_user(user_id):
    """One user: the caller's own row, or any row for an admin."""
    return jsonify(user_json(_target(user_id), current_user.is_admin))


def _password_change(body, row):
    """The new password, after checking `current_password` when callers change their own."""
    password = checked_password(body)
    if row["id"] != current_user.id:
        if "current_password" in body:
            raise ApiError(400, "'current_password' is only read when you change your own password.",
                           field="current_password")
        return password  # an admin resetting someone else's password
    current = body.get("current_password")
    if current is None:
        raise ApiError(400, "'current_password' is required to change your password.",
                       field="current_password")
    if not isinstance(current, str):
        raise ApiError(400, "'current_password' must be a string.", field="current_password")
    if auth.authenticate(row["username"], current) is None:
        raise ApiError(403, "'current_password' is not correct.", field="current_password")
    return password


def _admin_change(body, row):
    """The new admin flag (1 or 0), or None when unchanged; only an admin may send it."""
    if "admin" not in body:
        return None
    if not current_user.is_admin:
        raise ApiError(403, "Only an admin can change 'admin'.", field="admin")
    if not isinstance(body["admin"], bool):
        raise ApiError(400, "'admin' must be true or false.", field="admin")
    return None if body["admin"] == bool(row["is_admin"]) else int(body["admin"])


def _changes(row):
    """The UPDATE_USER parameters from the JSON body; 4xx naming the field that is wrong."""
    body = inputs.json_object()
    inputs.only_fields(body, UPDATE_FIELDS)
    if not any(name in body for name in ("username", "password", "admin")):
        raise ApiError(400, "Send 'username' and/or 'password' to change.")
    if "current_password" in body and "password" not in body:
        raise ApiError(400, "'current_password' is only read with 'password'.",
                       field="current_password")
    username = checked_username(body) if "username" in body else None
    password = _password_change(body, row) if "password" in body else None
    admin = _admin_change(body, row)
    return {
        "id": row["id"], "username": username,
        "password": None if password is None else passwords.hash_password(password), "admin": admin,
        "bump": int(password is not None or admin is not None),
    }


def _update(user_id, params):
    """The update's writes, as one transaction that db.retrying() may re-run whole."""
    db.execute(UPDATE_USER, params)
    user_cache.changed(user_id)  # the username is in cached reads too
    if params["bump"]:
        refresh.revoke_all(user_id)


@bp.patch("/users/<id:user_id>")
@bp.put("/users/<id:user_id>")
@token_required
def update_user(user_id):
    """Change username, password (and, for admins, the admin flag); 200 with the user.

    PUT is the same partial update as PATCH: a password cannot be read back,
    so there is no full representation to replace.
    """
    params = _changes(_target(user_id))
    try:
        # A revoking change also ends the user's sessions, so GET /sessions
        # never lists a session that can no longer refresh.
        db.retrying(_update, user_id, params)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise ApiError(409, f"The username '{params['username']}' is taken.",
                           field="username") from None
        raise
    row = db.one(USER_BY_ID, (user_id,))
    if row is None:  # deleted meanwhile
        raise _not_found()
    return jsonify(user_json(row, current_user.is_admin))


def delete_account(user_id):
    """Delete the user and every row that hangs off it, as one transaction; False if there was none.

    Used by DELETE /users/<id> and `flask delete-user`.
    """
    def delete():
        for statement in DELETE_USER_ROWS:
            db.execute(statement, (user_id,))
        user_cache.changed(user_id)
        return db.execute(DELETE_USER, (user_id,)).rowcount
    return db.retrying(delete) == 1


@bp.delete("/users/<id:user_id>")
@token_required
def delete_user(user_id):
    """Delete the user with their posts, authors and refresh sessions; 204."""
    _target(user_id)
    if not delete_account(user_id):
        raise _not_found()
    response = make_response("", 204)
    response.headers.pop("Content-Type", None)
    return response
