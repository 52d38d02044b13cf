"""Password hashing: argon2id for new hashes, legacy Werkzeug hashes still verify.

argon2id at OWASP's parameters (m=19 MiB, t=2, p=1) costs ~25 ms per check on
these machines; Werkzeug's default scrypt costs 80-100 ms and is weaker. Hashes
typed in through the mysql CLI in Werkzeug's format (`pbkdf2:...`, `scrypt:...`)
verify, and `needs_rehash` tells the caller to replace them after a login.

`check()` does the same hash work for every name, so timing tells no one
whether a name has an account or what kind of hash it has (see its docstring).
"""
import secrets
import time
from collections.abc import Callable, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from accounts import hash_slots

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_LEGACY_PREFIXES = ("pbkdf2:", "scrypt:")
_dummy_hash = None
# Who may hash now: the server's slots, one per core (accounts/hash_slots.py), or anyone.
_slots = hash_slots.UNLIMITED


def share_cores(slots) -> None:
    """Hash only while holding one of `slots` (the server's master calls this before forking)."""
    global _slots
    _slots = slots


def hash_password(password):
    """Return an argon2id hash of `password` (a str)."""
    with _slots.held():
        return _hasher.hash(password)


def verify_password(stored_hash, password):
    """True if `password` matches `stored_hash` (argon2id or legacy Werkzeug).

    Unknown hash formats (for example a plain-text password typed into the
    user table) never verify.
    """
    with _slots.held():
        return _verify(stored_hash, password)


def _verify(stored_hash, password):
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


# --- the same hash work for every name ------------------------------------------------
# A name without an account burns one argon2id verify, an argon2id account does one;
# a legacy hash (typed in through the mysql CLI) costs its own method's work instead,
# which timing would show until its first login replaces it. So while legacy hashes
# exist, every check does the work of each legacy method present as well.
LEGACY_REFRESH_SECONDS = 60  # how often a process re-reads which legacy methods exist
MAX_LEGACY_METHODS = 4  # odd seeds must not slow every login down without bound
_ARGON2 = "argon2"
_dummies: dict[str, str] = {}


def method_of(stored_hash: str | None) -> str | None:
    """'argon2', a legacy Werkzeug method with its parameters ('pbkdf2:sha256:150000'), or None."""
    if stored_hash is None:
        return None
    if stored_hash.startswith("$argon2"):
        return _ARGON2
    if stored_hash.startswith(_LEGACY_PREFIXES) and stored_hash.count("$") == 2:
        return stored_hash.split("$", 1)[0]
    return None  # no account, or a format that never verifies (plain text)


def _dummy(method: str) -> str | None:
    """A hash of a random password made with `method` (None if Werkzeug has no such method)."""
    if method not in _dummies:
        secret = secrets.token_urlsafe(16)
        try:
            _dummies[method] = (hash_password(secret) if method == _ARGON2
                                else generate_password_hash(secret, method=method, salt_length=8))
        except (ValueError, TypeError):  # a malformed method: such hashes never verify anyway
            _dummies[method] = None
    return _dummies[method]


def _legacy_state() -> dict:
    return current_app.extensions.setdefault("legacy_hash_methods", {"methods": (), "read_at": None})


def legacy_methods(read: Callable[[], Iterable[str]]) -> tuple[str, ...]:
    """The legacy methods the user table holds: read with `read()` at most once a minute per app."""
    state = _legacy_state()
    now = time.monotonic()
    if state["read_at"] is None or now - state["read_at"] >= LEGACY_REFRESH_SECONDS:
        found = sorted({m for m in read()
                        if method_of(m + "$salt$hash") not in (None, _ARGON2) and _dummy(m)})
        state.update(methods=tuple(found[:MAX_LEGACY_METHODS]), read_at=now)
    return state["methods"]


def _first_sight(method: str) -> None:
    state = _legacy_state()
    if method not in state["methods"] and len(state["methods"]) < MAX_LEGACY_METHODS:
        state["methods"] = tuple(sorted((*state["methods"], method)))


def check(stored_hash: str | None, password: str, legacy: Iterable[str] = ()) -> bool:
    """True if `password` matches `stored_hash` (None: the name has no account).

    Costs the same whatever `stored_hash` is: one argon2id verify and one verify
    per method in `legacy` (the legacy methods present), each against the
    account's own hash when it is of that kind, else against a dummy. A legacy
    method not yet in `legacy` is verified and remembered, so from its first
    sight every other name pays for it too.
    """
    own = method_of(stored_hash)
    matched = False
    methods = (_ARGON2, *legacy)
    for method in methods:
        if method == own:
            matched = verify_password(stored_hash, password)
        else:
            verify_password(_dummy(method) or "", password)
    if own is not None and own not in methods and _dummy(own):
        matched = verify_password(stored_hash, password)
        _first_sight(own)
    return matched
