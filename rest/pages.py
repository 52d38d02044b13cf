"""Pages: GET /public (seed 001), and the login page at GET / and GET /login.

The page's script and style are static files, so every HTML response can
carry a strict Content-Security-Policy with no 'unsafe-inline' (set, with the
other security headers, in rest/hardening.py for every response).
"""
from flask import Blueprint, jsonify, render_template, request

from rest import login

bp = Blueprint("pages", __name__)


@bp.get("/public")
def public():
    """A route anyone may call, token or not."""
    return jsonify(message="This is a public page")


@bp.get("/")
@bp.get("/login")
def login_page():
    """The login form: posts credentials, shows the token and /rest-auth's answer.

    GET /login carrying HTTP Basic credentials is seed 000's log-in (its route
    took GET and POST, and GET is Postman's default): it answers as POST /login.
    """
    basic = request.authorization
    if request.path == "/login" and basic is not None and basic.type == "basic":
        return login.login()
    return render_template("login.html")
