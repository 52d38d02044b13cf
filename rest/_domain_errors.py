"""TEMPORARY until the Layout merge (rest/errors.py maps accounts.errors there)."""
from accounts import errors as domain
from rest.errors import ApiError, error_response
from rest import limits

STATUS = [(domain.NotFound, 404), (domain.Conflict, 409), (domain.RuleBroken, 422),
          (domain.Forbidden, 403), (domain.PreconditionFailed, 412)]


def to_api_error(exc):
    if isinstance(exc, domain.Throttled):
        return limits.too_many_requests(exc.retry_after)
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return ApiError(status, exc.message, field=exc.field)
    raise exc


def handle(exc):
    error = to_api_error(exc)
    return error_response(error.status, error.error, error.description, error.field, error.headers)


def register(bp):
    bp.register_error_handler(domain.DomainError, handle)
