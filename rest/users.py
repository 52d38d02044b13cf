"""Users: POST /users, /register and /signup create accounts; /users[/<id>] lists, reads, changes, deletes.

Creating: one rule set (accounts/validation.py) on all three routes; the
library tutorial names the account `name`, the others `username`. The
unique index decides duplicates, so 20 requests racing for one name give one
201 and nineteen 409s, never a 500 and never two rows.

Authorization, the same on every other route: a caller may touch only their
own row; an admin may touch any. Another user's id is a 404 for a non-admin,
exactly like an id that does not exist, so ids reveal nothing.
"""
from flask import Blueprint, current_app, jsonify, url_for

from accounts import auth, email_addresses, email_verification, emails, mfa, users, validation
from accounts.errors import Forbidden, NotFound, RuleBroken
from rest import factors, inputs, pagination, rate_limits
from rest.errors import ApiError
from rest.responses import no_content, utc_iso
from rest.token_auth import current_user, token_required

bp = Blueprint("users", __name__)

REGISTRATION_FIELDS = ("username", "name", "password", "email")
UPDATE_FIELDS = ("username", "password", "current_password", "admin", "email")


def user_json(row, with_admin=False, addresses=None):
    """The public view of a user row: id, username, created (and admin for admins).

    `addresses` (accounts.emails.Addresses) is passed only for the owner and
    admins: then an account that has an address also shows `email` and
    `email_verified`. Accounts without one look exactly as before.
    """
    body = {"id": row["id"], "username": row["username"], "created": utc_iso(row["created"])}
    if with_admin:
        body["admin"] = bool(row["is_admin"])
    if addresses is not None and addresses.shown is not None:
        body["email"] = addresses.shown
        body["email_verified"] = addresses.shown_verified
    return body


def checked_email(body, name="email"):
    """The normalised address of body[name]; 400 when not a string or account email is off, 422 when malformed."""
    if not current_app.config["ACCOUNT_EMAIL"]:
        raise ApiError(400, f"'{name}' is not accepted: account email is off on this service.", field=name)
    return email_addresses.normalise(inputs.present_string(body, name), name)


def checked_username(body, name="username"):
    """A new username from body[name]; 400 when missing or not a string, 422 when it breaks the rules."""
    username = inputs.present_string(body, name)
    problem = validation.username_problem(username)
    if problem:
        raise RuleBroken(f"'{name}' {problem}.", field=name)
    return username


def checked_password(body, name="password"):
    """A new password from body[name]; 400 when missing or not a string, 422 when it breaks the rules."""
    password = inputs.present_string(body, name)
    problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
    if problem:
        raise RuleBroken(f"'{name}' {problem}.", field=name)
    return password


# --- creating ---------------------------------------------------------------------------

def _registration():
    """(username, password) from the JSON body, or the 4xx that explains what is wrong."""
    body = inputs.json_object()
    inputs.only_fields(body, REGISTRATION_FIELDS)
    if "name" in body and "username" in body:
        raise ApiError(400, "Send 'username' or 'name', not both.", field="name")
    field = "name" if "name" in body else "username"
    email = checked_email(body) if "email" in body else None
    return checked_username(body, field), checked_password(body), email


@bp.post("/register")
@bp.post("/signup")
@bp.post("/users")
@rate_limits.registration_limit
def register():
    """Create an account: 201, Location and {id, username, created}; never the hash."""
    username, password, email = _registration()
    row = email_verification.create_account(username, password, email)
    response = jsonify(user_json(row, addresses=emails.get(row["id"]) if email else None))
    response.status_code = 201
    response.headers["Location"] = url_for("users.get_user", user_id=row["id"])
    return response


# --- reading ----------------------------------------------------------------------------

def _target(user_id):
    """The row of `user_id` if the caller may touch it, else 404 (never 403: ids reveal nothing)."""
    if user_id != current_user.id and not current_user.is_admin:
        raise NotFound("No such user.")
    row = users.get(user_id)
    if row is None:
        raise NotFound("No such user.")
    return row


@bp.get("/users")
@token_required
def list_users():
    """Admins: every user, with the admin flag. Others: a list holding only themselves."""
    limit, before = pagination.page_args()
    if current_user.is_admin:
        rows = users.page(before, limit + 1)
    else:
        row = users.get(current_user.id)
        rows = [row] if row and (before is None or current_user.id < before) else []
    rows, cursor = pagination.page(rows, limit)
    addresses = emails.get_many(r["id"] for r in rows)  # the caller's own, or an admin's view
    return jsonify(users=[user_json(r, current_user.is_admin, addresses.get(r["id"], emails.NONE))
                          for r in rows], next=cursor)


@bp.get("/users/<id:user_id>")
@token_required
def get_user(user_id):
    """One user: the caller's own row, or any row for an admin, with which second factors are on."""
    body = user_json(_target(user_id), current_user.is_admin, emails.get(user_id))
    body["mfa"] = mfa.summary(user_id)  # what is on, never a secret
    return jsonify(body)


# --- changing ---------------------------------------------------------------------------

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
    if auth.authenticate(row["username"], current, address=rate_limits.client_ip()) is None:
        raise Forbidden("'current_password' is not correct.", field="current_password")
    return password


def _admin_change(body, row):
    """The new admin flag, or None when unchanged; only an admin may send it."""
    if "admin" not in body:
        return None
    if not current_user.is_admin:
        raise Forbidden("Only an admin can change 'admin'.", field="admin")
    if not isinstance(body["admin"], bool):
        raise ApiError(400, "'admin' must be true or false.", field="admin")
    return None if body["admin"] == bool(row["is_admin"]) else body["admin"]


def _changes(row):
    """({username, password, admin}, email) from the JSON body (None: unchanged); 4xx naming the field."""
    body = inputs.json_object()
    inputs.only_fields(body, UPDATE_FIELDS)
    if not any(name in body for name in ("username", "password", "admin", "email")):
        raise ApiError(400, "Send 'username', 'password' and/or 'email' to change.")
    if "current_password" in body and "password" not in body:
        raise ApiError(400, "'current_password' is only read with 'password'.",
                       field="current_password")
    changes = {
        "username": checked_username(body) if "username" in body else None,
        "password": _password_change(body, row) if "password" in body else None,
        "admin": _admin_change(body, row),
    }
    return changes, checked_email(body) if "email" in body else None


@bp.patch("/users/<id:user_id>")
@bp.put("/users/<id:user_id>")
@token_required
@rate_limits.rename_limit
def update_user(user_id):
    """Change username, password, email (and, for admins, the admin flag); 200 with the user.

    PUT is the same partial update as PATCH: a password cannot be read back,
    so there is no full representation to replace. A new password or email
    needs a recent login (STEP_UP_SECONDS) of the caller. A new password or admin
    flag logs the user out everywhere. A body naming a username is counted
    with registrations (a 409 tells whether a name is taken).
    """
    changes, email = _changes(_target(user_id))
    if changes["password"] is not None or email is not None:
        # Step-up operations: the password, and the address a reset link goes to
        # (moving it is the first step of taking an account over). The caller's own
        # login must be recent, an admin's too when changing someone else's.
        factors.require_recent_auth()
    row = email_verification.change_account(user_id, changes, email)
    return jsonify(user_json(row, current_user.is_admin, emails.get(user_id)))


@bp.delete("/users/<id:user_id>")
@token_required
def delete_user(user_id):
    """Delete the user with their posts, authors and sessions; 204."""
    _target(user_id)
    if not users.delete(user_id):
        raise NotFound("No such user.")
    return no_content()
