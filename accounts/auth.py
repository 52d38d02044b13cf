"""authenticate() and identity(), as Flask-JWT named them.

`authenticate(username, password)` returns the User or None; `identity(payload)`
returns the User behind a verified token or None. Flask-JWT users recognise
both; the HTTP layer (rest/login.py, rest/token_auth.py) calls them.
"""
from accounts import cache, passwords, throttle, users
from accounts.users import User


def authenticate(username: object, password: object) -> User | None:
    """Return the User whose password matches, else None.

    Both arguments must be strings (anything else is None, never a query: MySQL
    would compare a number to every username as a float). An unknown username
    costs the same argon2id work as a known one. A successful login replaces a
    legacy or weaker hash with a current argon2id hash. Raises
    accounts.errors.Throttled while the account (or the unknown name) must wait.
    """
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if not username or not password:
        return None
    row = users.with_hash(username)
    if row is None:
        throttle.claim_unknown(username)  # may raise what a known user gets
        passwords.burn_hash_work(password)
        return None
    throttle.claim_attempt(row["id"])  # Throttled while the account must wait
    if not passwords.verify_password(row["password"], password):
        return None
    throttle.clear_failures(row["id"])
    if passwords.needs_rehash(row["password"]):
        users.replace_hash(row["id"], passwords.hash_password(password), row["password"])
    return users.user_from_row(row)


def identity(payload: dict) -> User | None:
    """Return the User behind a verified token's payload, else None.

    None when the user was deleted, the token's jti or its session (`fam`) was
    revoked, or the user's token version moved on (logout-all, password or
    admin change). With REDIS_URL set, a worker answers what it has read
    before and no change was announced for since (accounts/cache.py);
    otherwise, and on a miss, one MySQL query.
    """
    # The answer depends on exactly these claims (and the rows users.for_token reads).
    key = (payload["jti"], payload.get("fam"), payload.get("ver", 0))
    return cache.read_through(cache.IDENTITY, payload["sub"], key,
                              lambda: _identity_from_database(payload))


def _identity_from_database(payload):
    row = users.for_token(int(payload["sub"]), payload["jti"], payload.get("fam"))
    if row is None or row["revoked"] or row["token_version"] != payload.get("ver", 0):
        return None
    return users.user_from_row(row)
