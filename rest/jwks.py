"""GET /.well-known/jwks.json: the public keys that verify this service's tokens (RFC 7517)."""
from flask import Blueprint, jsonify

from accounts import keys, tokens

bp = Blueprint("jwks", __name__)

JWKS_MAX_AGE = 300


@bp.get("/.well-known/jwks.json")
def jwks_document():
    """The ring's public keys; empty with HS256 (secrets are never published)."""
    response = jsonify(keys.jwks(tokens.ring()))
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response
