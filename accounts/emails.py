"""OWNS `user_email`: each account's verified address and the address waiting for verification.

`email` (verified, unique without case) is the one a password reset goes to;
`pending_email` was given at registration or by a change and counts for
nothing until its link is followed. Callers own the transaction.
"""
from dataclasses import dataclass

import db
from accounts.errors import Conflict

GET = "SELECT email, pending_email FROM user_email WHERE user_id = %s"
SET_PENDING = """
    INSERT INTO user_email (user_id, pending_email, updated) VALUES (%s, %s, NOW())
    ON DUPLICATE KEY UPDATE pending_email = VALUES(pending_email), updated = NOW()"""
CONFIRM = """
    UPDATE user_email
    SET email = pending_email, pending_email = NULL, verified_at = NOW(), updated = NOW()
    WHERE user_id = %s AND pending_email = %s"""
# The account a verified address belongs to (the unique index makes it one).
USER_BY_VERIFIED = "SELECT user_id FROM user_email WHERE email = %s"


@dataclass(frozen=True)
class Addresses:
    """An account's addresses: the verified one and the one waiting (either may be None)."""

    verified: str | None
    pending: str | None

    @property
    def shown(self):
        """The address the user resource shows: the newest one given."""
        return self.pending or self.verified

    @property
    def shown_verified(self):
        """Whether the shown address is verified."""
        return self.pending is None and self.verified is not None


NONE = Addresses(None, None)


def get(user_id) -> Addresses:
    """The addresses of `user_id` (NONE when it has none)."""
    row = db.one(GET, (user_id,))
    return NONE if row is None else Addresses(row["email"], row["pending_email"])


def set_pending(user_id, address):
    """Make `address` (normalised) the one waiting for verification; the verified one stays."""
    db.execute(SET_PENDING, (user_id, address))


def confirm(user_id, address) -> bool:
    """Make the pending `address` the verified one; False when it is no longer pending.

    Raises Conflict when another account verified the same address first.
    """
    try:
        return db.execute(CONFIRM, (user_id, address)).rowcount == 1
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise Conflict("This address is already verified on another account.",
                           field="email") from None
        raise


def user_with_verified(address):
    """The id of the account whose verified address is `address`, or None."""
    row = db.one(USER_BY_VERIFIED, (address,))
    return None if row is None else row["user_id"]


CLEAR_PENDING = "UPDATE user_email SET pending_email = NULL, updated = NOW() WHERE user_id = %s"


def clear_pending(user_id):
    """Forget the address waiting for verification (the user went back to the verified one)."""
    db.execute(CLEAR_PENDING, (user_id,))


def get_many(user_ids):
    """{user_id: Addresses} for the ids that have any address (one query)."""
    ids = [int(i) for i in user_ids]
    if not ids:
        return {}
    placeholders = ", ".join(["%s"] * len(ids))  # one %s per id: values, never identifiers
    rows = db.many(f"SELECT user_id, email, pending_email FROM user_email WHERE user_id IN ({placeholders})",
                   ids)
    return {r["user_id"]: Addresses(r["email"], r["pending_email"]) for r in rows}
