"""What the domain raises when a request cannot be done. rest/errors.py maps each to a status.

Messages are written for the client: they never carry a secret, a hash or SQL.
`field` names the one input field to blame, when there is one.
"""


class DomainError(Exception):
    """Base of every domain refusal."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """A unique rule refused the write (a taken username, a duplicate author)."""


class RuleBroken(DomainError):
    """Well-formed input that breaks a rule (a short password, a username with spaces)."""


class Forbidden(DomainError):
    """The caller is known but not allowed (a wrong current password, a non-admin's admin flag)."""


class PreconditionFailed(DomainError):
    """A conditional write found the row changed (If-Match no longer names it)."""


class Throttled(DomainError):
    """Too many attempts: try again after `retry_after` seconds."""

    MESSAGE = "Too many attempts. Retry after the number of seconds in Retry-After."

    def __init__(self, retry_after: float):
        super().__init__(self.MESSAGE)
        self.retry_after = retry_after


class TokenError(DomainError):
    """A token was rejected; the message is safe to show the client."""


class RefreshRejected(TokenError):
    """A refresh token cannot be exchanged (revoked, expired, reused)."""
