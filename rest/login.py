"""Logging in: POST /auth (Flask-JWT), POST /login (the tutorials' shapes), GET /rest-auth, the login page.

- POST /auth: a JSON body {username, password} -> the token body (Flask-JWT's
  `access_token`, plus a refresh token); a failure is Flask-JWT's exact 401.
  An account with a second factor answers 401 with `mfa_required` and an
  `mfa_token` for POST /auth/mfa, or takes {username, password, otp} in one
  step (rest/factors.py).
- POST /login: HTTP Basic (the library tutorial), an HTML form (the login-form
  tutorial, and our page without JavaScript) or JSON -> the same body plus
  `token`, the key those tutorials read. A failure is 401 (not the form
  tutorial's 403) with /auth's body; a Basic attempt also gets a
  `WWW-Authenticate: Basic` challenge so HTTP clients know to ask.
- GET /auth (who am I) and GET /rest-auth: protected resources.
- GET / and GET /login: the login page. Its script and style are static files,
  so every HTML response carries a strict CSP with no 'unsafe-inline'
  (rest/middleware.py). GET /login with HTTP Basic answers as POST /login.
"""
from flask import Blueprint, jsonify, render_template, request

from accounts import auth
from rest import factors, inputs, rate_limits
from rest.errors import ApiError
from rest.middleware import login_failed
from rest.responses import no_store
from rest.token_auth import caller, token_required

bp = Blueprint("login", __name__)

BASIC_CHALLENGE = 'Basic realm="Login Required", charset="UTF-8"'


def invalid_credentials():
    """The one answer for an unknown user and a wrong password alike."""
    login_failed()
    return ApiError(401, "Invalid credentials", error="Bad Request")


@bp.post("/auth")
@rate_limits.login_limit
def create_token():
    """Exchange a username and password for an access token (Flask-JWT's /auth)."""
    # The name the throttle counts is the one parsed here: never a header /auth ignores.
    user = auth.authenticate(*inputs.credentials_from_json(), address=rate_limits.client_ip())
    if user is None:
        raise invalid_credentials()
    return no_store(jsonify(factors.password_login(user, inputs.login_otp())))


@bp.post("/login")
@rate_limits.login_limit
def login():
    """Exchange credentials for an access token: 200 {token, access_token, ...} or 401."""
    username, password, basic = inputs.login_credentials()
    user = auth.authenticate(username, password, address=rate_limits.client_ip())
    if user is None:
        error = invalid_credentials()
        if basic:
            error.headers["WWW-Authenticate"] = BASIC_CHALLENGE
        raise error
    body = factors.password_login(user, None if basic else inputs.login_otp())
    body["token"] = body["access_token"]
    return no_store(jsonify(body))


@bp.get("/auth")
@token_required
def who_am_i():
    """Who the caller is (the login-form tutorial's dashboard); POST /auth still issues tokens."""
    return jsonify(message="You are verified. Welcome to your dashboard!",
                   user=caller().to_json())


@bp.get("/rest-auth")
@token_required
def rest_auth():
    """A protected resource: answers only a caller with a valid token."""
    return jsonify(
        message="You are an authenticated person to see this message",
        user=caller().to_json(),
    )


@bp.get("/")
@bp.get("/login")
def login_page():
    """The login form: posts credentials, shows the token and /rest-auth's answer.

    GET /login carrying HTTP Basic credentials is the library tutorial's
    log-in (its route took GET and POST, and GET is Postman's default): it
    answers as POST /login.
    """
    basic = request.authorization
    if request.path == "/login" and basic is not None and basic.type == "basic":
        return login()
    return render_template("login.html")
