"""Password hashing: argon2id for new hashes, legacy Werkzeug hashes still verify.

argon2id at OWASP's parameters (m=19 MiB, t=2, p=1) costs ~25 ms per check on
these machines; Werkzeug's default scrypt costs 80-100 ms and is weaker. Hashes
typed in through the mysql CLI in Werkzeug's format (`pbkdf2:...`, `scrypt:...`)
verify, and `needs_rehash` tells the caller to replace them after a login.
"""
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from werkzeug.security import check_password_hash

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_LEGACY_PREFIXES = ("pbkdf2:", "scrypt:")
_dummy_hash = None


def hash_password(password):
    """Return an argon2id hash of `password` (a str)."""
    return _hasher.hash(password)


def verify_password(stored_hash, password):
    """True if `password` matches `stored_hash` (argon2id or legacy Werkzeug).

    Unknown hash formats (for example a plain-text password typed into the
    user table) never verify.
    """
    if stored_hash.startswith("$argon2"):
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    if stored_hash.startswith(_LEGACY_PREFIXES):
        try:
            return check_password_hash(stored_hash, password)
        except ValueError:  # malformed legacy hash
            return False
    return False


def needs_rehash(stored_hash):
    """True if the hash is legacy or weaker than the current argon2id parameters."""
    if not stored_hash.startswith("$argon2id$"):
        return True
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def burn_hash_work(password):
    """Spend one argon2id verify on nothing, so an unknown user costs what a known one does."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)
