"""POST /login: the tutorials' log-in shapes on one route.

HTTP Basic (seed 000), an HTML form (seed 001's login.html, and our login page
without JavaScript) and JSON (our login page's script, like POST /auth). The
answer is /auth's token body plus `token`, the key seeds 000 and 001 read.
A failure is 401 (not seed 001's 403) with /auth's body; a Basic attempt also
gets a `WWW-Authenticate: Basic` challenge so HTTP clients know to ask.
"""
from flask import Blueprint, current_app, jsonify, request

from rest import auth, inputs, limits
from rest.errors import ApiError
from rest.hardening import no_store

bp = Blueprint("login", __name__)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BASIC_CHALLENGE = 'Basic realm="Login Required", charset="UTF-8"'


def _from_form():
    form = request.form
    inputs.only_fields(form, auth.LOGIN_FIELDS)
    cap = current_app.config["PASSWORD_MAX_LENGTH"]
    return (inputs.optional_string(form, "username", cap),
            inputs.optional_string(form, "password", cap))


def credentials():
    """Return (username, password, basic) from Basic auth, a form or JSON.

    No credentials at all is a Basic attempt with nothing in it: the 401 then
    carries the challenge, as seed 000's client expects. A body of another
    type is a 415.
    """
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username, basic.password, True
    if request.mimetype in FORM_TYPES:
        return (*_from_form(), False)
    if request.is_json:
        return (*auth.credentials_from_json(), False)
    if not request.get_data(cache=True):
        return None, None, True
    raise ApiError(415, "Send HTTP Basic credentials, a form or a JSON body "
                        "with 'username' and 'password'.")


@bp.post("/login")
@limits.login_limit
def login():
    """Exchange credentials for an access token: 200 {token, access_token, ...} or 401."""
    username, password, basic = credentials()
    user = auth.authenticate(username, password)
    if user is None:
        error = auth.invalid_credentials()
        if basic:
            error.headers["WWW-Authenticate"] = BASIC_CHALLENGE
        raise error
    body = auth.token_body(user)
    body["token"] = body["access_token"]
    return no_store(jsonify(body))
