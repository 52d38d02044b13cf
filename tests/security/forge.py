"""Hostile tokens and leak checks for the attack suite.

Tokens are assembled by hand (base64url segments, HMAC or RSA signatures) so
that any header, payload or signature can be forged, including ones PyJWT
itself refuses to produce (a blank HMAC key, `alg: none`, a JSON array payload).
"""
import base64
import hashlib
import hmac
import json
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from support import LEAKS, SECRET, assert_error, assert_safe, leaks  # noqa: F401  (re-exported)
from accounts import tokens


def b64(data):
    """base64url without padding, of bytes or of a JSON-serialisable value."""
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_signature(signing_input, secret, digest=hashlib.sha256):
    key = secret if isinstance(secret, bytes) else secret.encode()
    return hmac.new(key, signing_input.encode(), digest).digest()


def rsa_signature(signing_input, private_key):
    return private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def assemble(header, payload, signature=b""):
    """header.payload.signature from dicts/bytes and raw signature bytes."""
    return f"{b64(header)}.{b64(payload)}.{b64(signature)}"


def app_kid(secret=SECRET):
    """The kid our HS256 ring gives `secret`."""
    return tokens.hmac_kid(secret)


OUR_KID = object()


def header(alg="HS256", kid=OUR_KID, **extra):
    """A JOSE header; kid defaults to the test app's HS256 key."""
    value = {"alg": alg, "typ": "JWT", "kid": app_kid() if kid is OUR_KID else kid}
    value.update(extra)
    return value


def claims(user_id=1, token_type="access", ver=0, drop=(), **overrides):
    """A valid-looking payload for `user_id`; `drop` removes claims, overrides replace them."""
    now = int(time.time())
    value = {
        "sub": str(user_id), "identity": user_id, "iat": now, "nbf": now, "exp": now + 600,
        "jti": uuid.uuid4().hex, "type": token_type, "ver": ver,
    }
    value.update(overrides)
    for name in drop:
        value.pop(name, None)
    return value


def hs256(payload, secret=SECRET, head=None, digest=hashlib.sha256):
    """A token signed with HMAC (SHA-256 unless `digest` says otherwise)."""
    head = head if head is not None else header()
    signing_input = f"{b64(head)}.{b64(payload)}"
    return f"{signing_input}.{b64(hmac_signature(signing_input, secret, digest))}"


def rs256(payload, private_key, head):
    signing_input = f"{b64(head)}.{b64(payload)}"
    return f"{signing_input}.{b64(rsa_signature(signing_input, private_key))}"


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_private(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_public(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


# --- what a response must never contain: tests/support.py (re-exported here) ---------

def assert_invalid_token(response, description=None, error="Invalid token"):
    """The RFC 6750 invalid_token 401."""
    body = assert_error(response, 401, error, description)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    return body
