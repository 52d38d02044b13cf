"""JSON Web Tokens: issuing and verifying, with a key ring.

Every token names its key in the `kid` header. One key signs; older keys in
the ring still verify until they are removed, so a key can be rotated without
logging anyone out. Each key has exactly one algorithm (RFC 8725): a token
whose `alg` differs from its key's is rejected before any signature check, so
`none` and algorithm confusion never reach PyJWT. Header fields that point
elsewhere (`jku`, `x5u`, `jwk`) are never followed; `crit` is refused.

Claims: `sub` (the user id as a string), `identity` (the same id as an
integer, for Flask-JWT clients), `iat`, `nbf`, `exp`, `jti`, `type`
(access or refresh), `ver` (the user's token version) and, on tokens issued
by a login or a refresh, `fam` (the session: see accounts/sessions.py).
"""
import hashlib
import re
import time
import uuid
from dataclasses import dataclass

import jwt
from flask import current_app

from accounts.errors import TokenError

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_app = current_app._get_current_object

ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "sub", "jti", "type"]
_JTI = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Key:
    """One key of the ring: its id, its single algorithm, and its key material."""

    kid: str
    alg: str
    verify_key: object
    signing_key: object = None  # None: verify-only (a retired key)


class KeyRing:
    """The keys that verify tokens, and the one that signs new tokens."""

    def __init__(self, keys: list[Key], signing_kid: str):
        self._keys = {key.kid: key for key in keys}
        if signing_kid not in self._keys or self._keys[signing_kid].signing_key is None:
            raise ValueError("the signing key must be in the ring and have key material")
        self.signing: Key = self._keys[signing_kid]
        # token -> ((issuer, audience), payload) of tokens these keys verified;
        # see decode(). A new ring (a key added or retired) starts empty.
        self.verified: dict[str, tuple] = {}

    def get(self, kid) -> Key | None:
        """Return the Key named `kid`, or None. Never touches a file or database."""
        return self._keys.get(kid) if isinstance(kid, str) else None

    def keys(self) -> list[Key]:
        """All keys, signing key first."""
        return [self.signing] + [k for k in self._keys.values() if k is not self.signing]


def hmac_kid(secret):
    """A stable key id for an HMAC secret that reveals nothing about it."""
    return "hs-" + hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:12]


def hmac_ring(secret, previous=()):
    """A ring of HS256 keys: `secret` signs, the `previous` secrets only verify."""
    keys = [Key(hmac_kid(secret), "HS256", secret.encode(), secret.encode())]
    keys += [Key(hmac_kid(old), "HS256", old.encode()) for old in previous if old != secret]
    return KeyRing(keys, keys[0].kid)


def ring() -> KeyRing:
    """The application's key ring."""
    return _app().extensions["keyring"]


def issue(user, token_type: str, ttl: int, **extra) -> str:
    """Return a signed token of `token_type` for `user`, valid for `ttl` seconds.

    `extra` claims (such as `fam` for refresh tokens) are added to the payload.
    """
    config = current_app.config
    now = int(time.time())
    claims = {
        "sub": str(user.id), "identity": user.id,
        "iat": now, "nbf": now, "exp": now + ttl,
        "jti": uuid.uuid4().hex, "type": token_type, "ver": user.token_version,
    }
    if config["JWT_ISSUER"]:
        claims["iss"] = config["JWT_ISSUER"]
    if config["JWT_AUDIENCE"]:
        claims["aud"] = config["JWT_AUDIENCE"]
    claims.update(extra)
    key = ring().signing
    return jwt.encode(claims, key.signing_key, algorithm=key.alg, headers={"kid": key.kid})


def _key_for(token):
    """Check the header and return the ring key that must verify `token`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise TokenError("The 'none' algorithm is not allowed")
    if "crit" in header:
        raise TokenError("Unsupported critical header parameters")
    if "kid" not in header:
        raise TokenError("Token header has no key id (kid)")
    key = ring().get(header["kid"])
    if key is None:
        raise TokenError("Unknown signing key")
    if alg != key.alg:
        raise TokenError("The specified alg value is not allowed")
    return key


def decode(token: str, expected_type: str = ACCESS) -> dict:
    """Verify `token` and return its payload.

    Raises TokenError with a precise, client-safe description when the token
    is oversized, malformed, of the wrong type, signed by an unknown key or
    with another algorithm, expired, not yet valid, or missing a claim.
    """
    app = _app()
    config = app.config
    if len(token) > config["JWT_MAX_LENGTH"]:
        raise TokenError("Token is too large")
    verified = app.extensions["keyring"].verified
    settings = (config["JWT_ISSUER"], config["JWT_AUDIENCE"])
    cached = verified.get(token)
    if cached is not None and cached[0] == settings:
        payload = dict(cached[1])
        _check_times(payload, config["JWT_LEEWAY"])
    else:
        payload = _verify(token, config)
        if len(verified) >= VERIFIED_CACHE_SIZE:
            verified.clear()
        cached = verified[token] = (settings, dict(payload), None)
    if cached[2] != expected_type:
        # The claims' checks depend on the payload and the expected type
        # only: once passed for this type, they pass at every later use.
        _check_claims(payload, expected_type)
        verified[token] = (settings, cached[1], expected_type)
    return payload


# A client sends the same access token with every request until it expires,
# and PyJWT 2.15 spends 150-200 us parsing and verifying one HS256 token (the
# header, then the whole token again): as much as the identity query. So each
# ring remembers the tokens it verified (at most this many): (issuer and
# audience settings, payload, the type whose claim checks it passed or None).
# A hit skips only what cannot change for the same bytes under the same keys,
# issuer and audience (signature, structure, claims present and well-formed);
# the time claims are checked again at every use, as PyJWT checks them, and
# revocation stays the database's.
VERIFIED_CACHE_SIZE = 1024


def _verify(token, config):
    """The full check by PyJWT: header, key, signature, required and time claims."""
    key = _key_for(token)
    try:
        return jwt.decode(
            token, key.verify_key, algorithms=[key.alg],
            leeway=config["JWT_LEEWAY"],
            issuer=config["JWT_ISSUER"] or None,
            audience=config["JWT_AUDIENCE"] or None,
            options={"require": REQUIRED_CLAIMS + (["iss"] if config["JWT_ISSUER"] else [])},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None


def _check_times(payload, leeway):
    """PyJWT's iat, nbf and exp checks, in its order and words, for a token it verified before."""
    now = time.time()
    if int(payload["iat"]) > now + leeway:
        raise TokenError("The token is not yet valid (iat)")
    if int(payload["nbf"]) > now + leeway:
        raise TokenError("The token is not yet valid (nbf)")
    if int(payload["exp"]) <= now - leeway:
        raise TokenError("Signature has expired")


_TIME_CLAIMS = (("exp", "Expiration time"), ("iat", "Issued at"), ("nbf", "Not before"))


def _check_claims(payload, expected_type):
    # PyJWT accepts "exp": "9999999999" (it calls int() on it); RFC 7519's
    # NumericDate is a JSON number, and a bool is not one either.
    for name, label in _TIME_CLAIMS:
        if isinstance(payload[name], bool) or not isinstance(payload[name], (int, float)):
            raise TokenError(f"{label} ({name}) must be a number")
    sub = payload["sub"]
    if not isinstance(sub, str) or not sub.isdigit() or not sub.isascii():
        raise TokenError("Subject (sub) must be a string holding a user id")
    if payload["type"] != expected_type:
        raise TokenError(f"Expected an {expected_type} token" if expected_type == ACCESS
                         else f"Expected a {expected_type} token")
    jti = payload["jti"]
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise TokenError("Token id (jti) is malformed")
    if type(payload.get("ver", 0)) is not int:  # noqa: E721 - a bool is not a version
        raise TokenError("Token version (ver) is malformed")
    fam = payload.get("fam")
    if fam is not None and (not isinstance(fam, str) or not _JTI.fullmatch(fam)):
        raise TokenError("Token family (fam) is malformed")
