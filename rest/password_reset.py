"""Forgot / reset password: POST /password/forgot, POST /password/reset, the page GET /reset-password.

POST /password/forgot answers 202 with one body, in the same time, whether
or not the account exists or has a verified address: it only queues the
request (accounts/password_reset.py). The link in the message points at the
page with the token in the URL fragment, which the page's script posts here.
"""
from flask import Blueprint, abort, current_app, jsonify, render_template

from accounts import password_reset
from rest import inputs, rate_limits
from rest.errors import ApiError
from rest.responses import no_content
from rest.middleware import request_origin

bp = Blueprint("password_reset", __name__)

FORGOT_ANSWER = ("If an account with a verified email address matches, "
                 "a message with a reset link is on its way.")
FORGOT_FIELDS = ("username", "email")
RESET_FIELDS = ("token", "password")
NAME_MAX = 254


@bp.before_request
def _account_email_on():
    """Without ACCOUNT_EMAIL these routes do not exist."""
    if not current_app.config["ACCOUNT_EMAIL"]:
        abort(404)


def forgot_identifier():
    """("username"|"email", value) from the JSON body: exactly one, a non-empty string; 400 otherwise."""
    body = inputs.json_object()
    inputs.only_fields(body, FORGOT_FIELDS)
    given = [name for name in FORGOT_FIELDS if name in body]
    if len(given) != 1:
        raise ApiError(400, "Send 'username' or 'email' (one of them).")
    name = given[0]
    value = inputs.optional_string(body, name, NAME_MAX)
    if not value:
        raise ApiError(400, f"'{name}' must be a non-empty string.", field=name)
    return name, value


@bp.post("/password/forgot")
@rate_limits.forgot_limit
def forgot():
    """Queue a reset link for the account named; 202 and the same body whatever it names."""
    name, value = forgot_identifier()
    password_reset.request_reset(**{name: value}, origin=request_origin())
    response = jsonify(message=FORGOT_ANSWER)
    response.status_code = 202
    return response


@bp.post("/password/reset")
@rate_limits.token_limit
def reset():
    """Set a new password with a reset token; 204. Every session of the user is logged out."""
    body = inputs.json_object()
    inputs.only_fields(body, RESET_FIELDS)
    for name in RESET_FIELDS:
        if not isinstance(body.get(name), str):
            raise ApiError(400, f"'{name}' is required and must be a string.", field=name)
    password_reset.reset(body["token"], body["password"], origin=request_origin())
    return no_content()


@bp.get("/reset-password")
def reset_page():
    """The page a reset link opens (the token is in the fragment), or asks for a link."""
    return render_template("reset_password.html")

