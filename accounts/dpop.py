"""DPoP (RFC 9449): proofs of possession that bind tokens to a client's key.

A client signs a small JWT (the proof) with its own private key for every
request; the proof carries the public key (`jwk` header), the request's method
(`htm`) and URL (`htu`), when it was made (`iat`), a single-use id (`jti`) and,
at a resource, the hash of the access token it goes with (`ath`). A token
issued against a proof carries `cnf.jkt`, the RFC 7638 thumbprint of that
public key, so a stolen token is useless without the private key.

`verify_proof()` is a pure function: the caller passes the request's method,
URL and the clock. Single use of `jti` is a separate step (`ReplayCache`),
since it needs storage shared by every worker and instance: Redis when one is
configured, else the database (table `dpop_replay`, owned here). Server nonces
(`DPoP-Nonce`) are stateless: an HMAC of a time window under SECRET_KEY, so
every instance issues and accepts the same ones without sharing state.

Nothing here reads flask.request or answers HTTP: refusals raise ProofError,
whose `error` is the RFC's code (`invalid_dpop_proof`, `use_dpop_nonce`).
"""
import base64
import hashlib
import hmac
import json
import logging
import random
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import db
from accounts.errors import TokenError

# Asymmetric algorithms only (RFC 9449 section 4.3: never none or a MAC), each
# with the one key type it may use.
ALGORITHMS = {"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA", "PS256": "RSA"}
PROOF_TYPE = "dpop+jwt"
RSA_MIN_BITS = 2048
MAX_PROOF_BYTES = 4096  # an RSA 4096 proof is ~1.6 kB; anything far larger is not a proof
MAX_JTI_LENGTH = 128
# JWK members that only a private (or symmetric) key has.
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"),
                       "OKP": ("crv", "kty", "x")}
log = logging.getLogger(__name__)
INVALID_PROOF = "invalid_dpop_proof"
USE_NONCE = "use_dpop_nonce"


class ProofError(TokenError):
    """A DPoP proof was refused. `error` is the RFC 9449 error code; the message is client-safe."""

    def __init__(self, message, error=INVALID_PROOF):
        super().__init__(message)
        self.message = message
        self.error = error


@dataclass(frozen=True)
class Proof:
    """A verified proof: the key's thumbprint (`jkt`), its `jti` and `iat`."""

    jkt: str
    jti: str
    iat: int


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """The `ath` claim for `token`: base64url(SHA-256(its ASCII bytes))."""
    return b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK (the value of `cnf.jkt`)."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def normalize_url(url: str) -> str:
    """`url` without query and fragment, scheme and host lowercased, default port dropped.

    RFC 9449 section 4.3 compares `htu` "ignoring any query and fragment parts";
    scheme and host are case-insensitive (RFC 3986 section 6.2.2.1).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def _header(proof):
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_BYTES:
        raise ProofError("The DPoP proof is missing or too large")
    try:
        return jwt.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise ProofError("The DPoP proof is not a well-formed JWT") from None


def _public_key(header):
    """The verified public key of the header's `jwk`, which must be public and fit `alg`."""
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise ProofError(f"DPoP proofs must be signed with one of {', '.join(ALGORITHMS)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise ProofError("The DPoP proof has no public key (jwk) in its header")
    if any(member in jwk for member in PRIVATE_MEMBERS):
        raise ProofError("The DPoP proof's jwk must be a public key: it holds secret members")
    if jwk.get("kty") != ALGORITHMS[alg]:
        raise ProofError(f"A {alg} proof needs a {ALGORITHMS[alg]} key")
    return jwk, _key_object(alg, jwk)


# A client signs every proof with the same key, and building a key object from
# its JWK (EC point validation above all) costs more than checking a signature;
# so each process keeps the keys it built, by algorithm and exact JWK text.
KEY_CACHE_SIZE = 1024
_keys = {}


def _key_object(alg, jwk):
    """The public key object for `jwk` under `alg` (cached); ProofError if unusable or weak."""
    cache_key = (alg, json.dumps(jwk, sort_keys=True))
    key = _keys.get(cache_key)
    if key is None:
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise ProofError("The DPoP proof's jwk is not a usable public key") from None
        _check_key_strength(alg, key)
        if len(_keys) >= KEY_CACHE_SIZE:
            _keys.clear()
        _keys[cache_key] = key
    return key


def _check_key_strength(alg, key):
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise ProofError(f"RSA proof keys must have at least {RSA_MIN_BITS} bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ProofError("ES256 proofs need a P-256 key")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise ProofError("The DPoP proof's jwk is not a public key")  # a private or unknown key


def verify_proof(proof: str, *, method: str, url: str, now: float, max_age: int, leeway: int,
                 access_token: str | None = None, nonce_ok=None) -> Proof:
    """Check a DPoP proof for one request; return its Proof (jkt, jti, iat).

    `method` and `url` are the request's (the URL may carry a query: it is
    ignored on both sides). `iat` must lie in [now - max_age - leeway,
    now + leeway]. With `access_token`, the proof's `ath` must be its hash.
    With `nonce_ok` (a predicate), the proof's `nonce` must satisfy it, else
    ProofError(use_dpop_nonce). Single use of `jti` is NOT checked here
    (ReplayCache.claim). Raises ProofError for every other defect.
    """
    header = _header(proof)
    if header.get("typ") != PROOF_TYPE:
        raise ProofError(f"The DPoP proof's typ must be {PROOF_TYPE}")
    if "crit" in header:
        raise ProofError("Unsupported critical header parameters in the DPoP proof")
    jwk, key = _public_key(header)
    try:
        claims = jwt.decode(proof, key, algorithms=[header["alg"]],
                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                     "verify_aud": False, "verify_iss": False})
    except jwt.PyJWTError:
        raise ProofError("The DPoP proof's signature does not verify") from None
    iat = _check_claims(claims, method, url, now, max_age, leeway)
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise ProofError("The DPoP proof's ath does not match the access token")
    if nonce_ok is not None and not (isinstance(claims.get("nonce"), str) and nonce_ok(claims["nonce"])):
        raise ProofError("Send the DPoP-Nonce this server gave in the proof's nonce", error=USE_NONCE)
    return Proof(jwk_thumbprint(jwk), claims["jti"], iat)


def _check_claims(claims, method, url, now, max_age, leeway):
    """htm, htu, jti and iat; returns iat."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise ProofError("The DPoP proof needs a jti of at most 128 characters")
    if claims.get("htm") != method:
        raise ProofError("The DPoP proof's htm is not this request's method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_url(htu) != normalize_url(url):
        raise ProofError("The DPoP proof's htu is not this request's URL")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        raise ProofError("The DPoP proof needs a numeric iat")
    if iat > now + leeway:
        raise ProofError("The DPoP proof was issued in the future (iat)")
    if iat < now - max_age - leeway:
        raise ProofError("The DPoP proof is too old (iat)")
    return int(iat)


# --- server nonces (DPoP-Nonce) --------------------------------------------------------

def make_nonce(secret: str, now: float, period: int) -> str:
    """The server nonce for the time window holding `now` (windows of `period` seconds)."""
    window = int(now // period)
    raw = struct.pack(">Q", window)
    mac = hmac.new(b"dpop-nonce:" + secret.encode(), raw, hashlib.sha256).digest()[:16]
    return b64url(raw + mac)


def nonce_valid(nonce: str, secret: str, now: float, period: int) -> bool:
    """True for the nonce of the current window or the one before (so a fresh one never fails)."""
    current = int(now // period)
    return any(hmac.compare_digest(nonce, make_nonce(secret, window * period, period))
               for window in (current, current - 1))


# --- single use of jti -------------------------------------------------------------------

def replay_key(proof: Proof) -> bytes:
    """The 32-byte key a proof's jti is remembered under: jtis are unique per key, not globally."""
    return hashlib.sha256(f"{proof.jkt}:{proof.jti}".encode()).digest()


class ReplayCache:
    """Remembers each proof's jti until the proof is too old to be accepted anyway.

    Shared by every worker and instance: Redis (`SET NX EX`, one round trip)
    when `redis_client` is given, else the database table `dpop_replay`
    (a primary-key INSERT; a duplicate is a replay). A Redis error falls back
    to the database for that proof, never to "accept": a store that cannot
    answer must not turn replay protection off.
    """

    PREFIX = "dpop-jti:"
    PURGE_ONE_IN = 100
    PURGE_BATCH = 1000
    INSERT = "INSERT INTO dpop_replay (jti_hash, expires_at) VALUES (%s, %s)"
    PURGE = "DELETE FROM dpop_replay WHERE expires_at < UTC_TIMESTAMP() LIMIT %s"

    def __init__(self, redis_client=None, namespace=""):
        self.redis = redis_client
        self.namespace = namespace

    def claim(self, proof: Proof, ttl: int, now: float) -> None:
        """Record `proof`'s jti for `ttl` seconds; ProofError if it was seen before."""
        key = replay_key(proof)
        if self.redis is not None:
            try:
                fresh = self.redis.set(f"{self.namespace}{self.PREFIX}{key.hex()}", b"1", nx=True, ex=ttl)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: use the database instead
                log.warning("DPoP replay cache: Redis failed (%s); using the database", exc)
            else:
                if not fresh:
                    raise ProofError("The DPoP proof was already used (jti)")
                return
        self._claim_in_database(key, ttl, now)

    def _claim_in_database(self, key, ttl, now):
        expires = datetime.fromtimestamp(now + ttl, timezone.utc).replace(tzinfo=None)
        try:
            db.execute(self.INSERT, (key, expires))
        except db.IntegrityError as exc:
            if db.is_duplicate(exc):
                raise ProofError("The DPoP proof was already used (jti)") from None
            raise
        if random.randrange(self.PURGE_ONE_IN) == 0:
            db.execute(self.PURGE, (self.PURGE_BATCH,))


def purge_replays() -> int:
    """Delete every expired proof id from `dpop_replay` (the CLI's purge-tokens); return how many."""
    total = 0
    while True:
        deleted = db.execute(ReplayCache.PURGE, (ReplayCache.PURGE_BATCH,)).rowcount
        total += deleted
        if deleted < ReplayCache.PURGE_BATCH:
            return total
