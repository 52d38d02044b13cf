"""Signing keys from configuration: the key ring, RFC 7638 key ids, and the JWK Set.

- HS256 (the default): SECRET_KEY signs; SECRET_KEY_PREVIOUS only verify.
- RS256, ES256, EdDSA: the PEM private key in JWT_PRIVATE_KEY_FILE signs;
  every `*.pem` in JWT_VERIFY_KEYS_DIR only verifies (keys retired by
  `flask keys rotate`), and so do SECRET_KEY_PREVIOUS (moving off HS256).

A key's algorithm follows from its type and nothing else (RFC 8725: one
algorithm per key): RSA >= 2048 bits is RS256, EC P-256 is ES256, Ed25519 is
EdDSA. An asymmetric key's `kid` is its RFC 7638 JWK thumbprint, so the same
key has the same id on every instance. Keys are read when the app is built
in every server worker as it starts (so `kill -HUP` after a rotation reads them again): the
ring lives in memory and a token's `kid` never causes a file or database read.
"""
import base64
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from accounts import tokens
from config import ConfigError

log = logging.getLogger(__name__)

ASYMMETRIC = ("RS256", "ES256", "EdDSA")
RSA_MIN_BITS = 2048
RSA_BITS = 3072  # what `keys generate` makes: NIST's size for use beyond 2030
# The members RFC 7638 hashes, per key type.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"),
                       "OKP": ("crv", "kty", "x")}


def key_alg(public_key):
    """The one algorithm of an asymmetric public key; ConfigError for any other key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < RSA_MIN_BITS:
            raise ConfigError(f"RSA keys under {RSA_MIN_BITS} bits are refused "
                              f"(this one has {public_key.key_size})")
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ConfigError(f"EC keys must be on P-256 for ES256, not {public_key.curve.name}")
        return "ES256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ConfigError(f"unsupported key type {type(public_key).__name__}; "
                      "use RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)")


def public_jwk(public_key):
    """The public key as a JWK dict (kty and its key members, no kid)."""
    alg = key_alg(public_key)
    codec = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    return codec.to_jwk(public_key, as_dict=True)


def thumbprint(public_key):
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding): the key's kid."""
    jwk = public_jwk(public_key)
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


# --- reading keys ------------------------------------------------------------------

def load_pem(path):
    """Return (private_key or None, public_key) from a PEM file; ConfigError if unusable.

    A file may hold a private key (its public half is derived) or a public key.
    Encrypted private keys are refused: the service has no passphrase to give.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise ConfigError(f"{path} is encrypted; store it unencrypted with mode 0600") from None
        except ValueError:
            raise ConfigError(f"{path} is not a PEM private key") from None
        return private, private.public_key()
    try:
        return None, serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"{path} is not a PEM public or private key") from None


def signing_key(path, alg):
    """The ring Key for the private key at `path`, which must be of algorithm `alg`."""
    private, public = load_pem(path)
    if private is None:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {path} holds a public key; it must be private")
    if key_alg(public) != alg:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {path} is a {key_alg(public)} key, "
                          f"but JWT_ALGORITHM is {alg}")
    if os.stat(path).st_mode & 0o077:
        log.warning("%s can be read by other users: chmod 600 it", path)
    return tokens.Key(thumbprint(public), alg, public, private)


def verify_key(path):
    """A verify-only ring Key from a PEM file (only its public half is kept)."""
    _, public = load_pem(path)
    return tokens.Key(thumbprint(public), key_alg(public), public)


def verify_key_files(directory):
    """The `*.pem` files of `directory`, sorted (none if it is unset or missing)."""
    if not directory or not Path(directory).is_dir():
        return []
    return sorted(Path(directory).glob("*.pem"))


def entries(config, secret):
    """Every key of the ring with where it came from: [(Key, source)], signing key first."""
    alg = config.get("JWT_ALGORITHM", "HS256")
    found = []
    if alg == "HS256":
        found.append((tokens.hmac_ring(secret).signing, "SECRET_KEY"))
    else:
        path = config["JWT_PRIVATE_KEY_FILE"]
        found.append((signing_key(path, alg), path))
    for path in verify_key_files(config.get("JWT_VERIFY_KEYS_DIR")):
        found.append((verify_key(path), str(path)))
    for number, old in enumerate(config.get("SECRET_KEY_PREVIOUS", []), start=1):
        key = tokens.hmac_ring(old).signing
        found.append((tokens.Key(key.kid, key.alg, key.verify_key), f"SECRET_KEY_PREVIOUS #{number}"))
    unique = {}
    for key, source in found:
        unique.setdefault(key.kid, (key, source))  # the signing key wins a duplicate
    return list(unique.values())


def build_ring(config, secret):
    """The application's KeyRing from configuration; ConfigError when a key is unusable."""
    found = entries(config, secret)
    return tokens.KeyRing([key for key, _ in found], found[0][0].kid)


# --- making keys -------------------------------------------------------------------

def generate(alg):
    """A new private key for `alg` (RS256: RSA 3072, ES256: P-256, EdDSA: Ed25519)."""
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"no key pair for {alg}; choose one of {', '.join(ASYMMETRIC)}")


def private_pem(private_key):
    """PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def public_pem(public_key):
    """SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def write_file(path, data, mode):
    """Write `data` to `path` atomically (temp file + rename) with permissions `mode`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pem")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- publishing ----------------------------------------------------------------------

def jwks(ring):
    """The JWK Set of the ring's public keys; HS256 secrets are never published."""
    published = []
    for key in ring.keys():
        if key.alg in ASYMMETRIC:
            jwk = public_jwk(key.verify_key)
            jwk.update(kid=key.kid, alg=key.alg, use="sig")
            published.append(jwk)
    return {"keys": published}
