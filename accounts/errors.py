"""Domain exceptions; rest/errors.py maps each to its HTTP status (the only place that does)."""


class DomainError(Exception):
    """A rule of the domain refused the operation; the message is safe to show."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """No such thing (or the caller may not know it exists)."""


class Conflict(DomainError):
    """A duplicate or a lost race."""


class RuleBroken(DomainError):
    """An input breaks a validation rule."""


class Forbidden(DomainError):
    """A known caller may not do this."""


class PreconditionFailed(DomainError):
    """The caller's If-Match no longer holds."""


class Throttled(DomainError):
    """Too many attempts: retry after `retry_after` seconds."""

    def __init__(self, retry_after, message="Too many attempts."):
        super().__init__(message)
        self.retry_after = retry_after
