"""GET /public: the login-form tutorial's page that anyone may call, token or not."""
from flask import Blueprint, jsonify

bp = Blueprint("public", __name__)


@bp.get("/public")
def public():
    """A route anyone may call, token or not."""
    return jsonify(message="This is a public page")
