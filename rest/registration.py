"""Account creation: POST /register (seed 000), POST /signup and POST /users (seed 002).

One rule set (rest.validation) for all three. The unique index on
user.username decides duplicates, so 20 requests racing for one name give one
201 and nineteen 409s, never a 500 and never two rows.
"""
from flask import Blueprint, current_app, jsonify, url_for

import db
from accounts import email_addresses, email_verification, emails
from accounts.errors import RuleBroken
from rest import inputs, limits, passwords, validation
from rest.errors import ApiError
from rest.fields import utc_iso

bp = Blueprint("registration", __name__)

# Seed 000 names the account `name`; seed 002 and everything else `username`.
REGISTRATION_FIELDS = ("username", "name", "password", "email")

INSERT_USER = "INSERT INTO user (username, password) VALUES (%s, %s)"
USER_BY_ID = "SELECT id, username, is_admin, created FROM user WHERE id = %s"


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
    """The normalised address of body[name]; 400 when not a string or email is off, 422 when malformed."""
    if not current_app.config["ACCOUNT_EMAIL"]:
        raise ApiError(400, f"'{name}' is not accepted: account email is off on this service.", field=name)
    value = _present_string(body, name)
    try:
        return email_addresses.normalise(value, name)
    except RuleBroken as exc:
        raise ApiError(422, exc.message, field=name) from None


def _present_string(body, name):
    """body[name] when it is a string; 400 naming the field when missing or of another type."""
    value = body.get(name)
    if value is None:
        raise ApiError(400, f"'{name}' is required.", field=name)
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", field=name)
    return value


def checked_username(body, name="username"):
    """A new username from body[name]; 400 when missing or not a string, 422 when it breaks the rules."""
    username = _present_string(body, name)
    problem = validation.username_problem(username)
    if problem:
        raise ApiError(422, f"'{name}' {problem}.", field=name)
    return username


def checked_password(body, name="password"):
    """A new password from body[name]; 400 when missing or not a string, 422 when it breaks the rules."""
    password = _present_string(body, name)
    problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
    if problem:
        raise ApiError(422, f"'{name}' {problem}.", field=name)
    return password


def _registration():
    """(username, password) from the JSON body, or the 4xx that explains what is wrong."""
    body = inputs.json_object()
    inputs.only_fields(body, REGISTRATION_FIELDS)
    if "name" in body and "username" in body:
        raise ApiError(400, "Send 'username' or 'name', not both.", field="name")
    field = "name" if "name" in body else "username"
    email = checked_email(body) if "email" in body else None
    return checked_username(body, field), checked_password(body), email


def create_user(username, password, email=None):
    """Insert a user (and its pending address) and return its row; 409 ApiError when the name is taken."""
    password_hash = passwords.hash_password(password)
    try:
        with db.transaction():
            result = db.execute(INSERT_USER, (username, password_hash))
            if email is not None:
                email_verification.set_address(result.lastrowid, username, email)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise ApiError(409, f"The username '{username}' is taken.", field="username") from None
        raise
    return db.one(USER_BY_ID, (result.lastrowid,))


@bp.post("/register")
@bp.post("/signup")
@bp.post("/users")
@limits.registration_limit
def register():
    """Create an account: 201, Location and {id, username, created}; never the hash."""
    username, password, email = _registration()
    row = create_user(username, password, email)
    response = jsonify(user_json(row, addresses=emails.get(row["id"]) if email else None))
    response.status_code = 201
    response.headers["Location"] = url_for("users.get_user", user_id=row["id"])
    return response
