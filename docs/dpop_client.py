"""A minimal DPoP client (RFC 9449): makes the proof a request must carry.

Needs only PyJWT with its crypto extra (`pip install "PyJWT[crypto]"`).

    from dpop_client import DPoPKey
    key = DPoPKey()                                   # a fresh ES256 key pair
    proof = key.proof("POST", "http://127.0.0.1:5000/auth")
    # POST /auth with header  DPoP: <proof>  -> {"token_type": "DPoP", "access_token": ...}
    proof = key.proof("GET", "http://127.0.0.1:5000/rest-auth", access_token=token)
    # GET /rest-auth with  Authorization: DPoP <token>  and  DPoP: <proof>

A server that answers 401/400 with error "use_dpop_nonce" sends a DPoP-Nonce
header: make the proof again with `nonce=` that value. Keep the key for as
long as the tokens it got live; a new key cannot use them.
"""
import base64
import hashlib
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DPoPKey:
    """A client key pair and the proofs it signs. alg: ES256 (default), EdDSA, RS256 or PS256."""

    def __init__(self, alg="ES256"):
        self.alg = alg
        if alg == "ES256":
            self.private_key = ec.generate_private_key(ec.SECP256R1())
            codec = ECAlgorithm
        elif alg == "EdDSA":
            self.private_key = ed25519.Ed25519PrivateKey.generate()
            codec = OKPAlgorithm
        elif alg in ("RS256", "PS256"):
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            codec = RSAAlgorithm
        else:
            raise ValueError(f"unsupported DPoP algorithm {alg}")
        self.public_jwk = codec.to_jwk(self.private_key.public_key(), as_dict=True)

    @property
    def jkt(self):
        """The key's RFC 7638 thumbprint: what a bound token's cnf.jkt holds."""
        members = {name: self.public_jwk[name] for name in _THUMBPRINT_MEMBERS[self.public_jwk["kty"]]}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
        return _b64url(hashlib.sha256(canonical).digest())

    def proof(self, method, url, access_token=None, nonce=None, iat=None, jti=None, headers=None):
        """A signed proof for one request (`url` without query or fragment is what counts)."""
        claims = {"jti": jti or uuid.uuid4().hex, "htm": method, "htu": url,
                  "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            claims["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "jwk": self.public_jwk}
        header.update(headers or {})
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=header)
