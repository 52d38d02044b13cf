"""Field rules for resource bodies (posts, authors), and how their values are shown.

Every failure is a 400 ApiError naming the field. A field that is present
with JSON null is the wrong type, never "absent": PATCH changes only the
fields that are sent, so null cannot mean "leave as is" and "clear" at once.
"""
from rest.errors import ApiError


def text(body, name, max_length, required=True):
    """Return body[name]: a non-blank str of at most max_length characters.

    None when the field is absent and not `required`. 400 naming the field
    when it is missing (and required), not a string, blank, too long, or not
    encodable as UTF-8 (a lone surrogate such as "\\ud800" in the JSON).
    """
    if name not in body:
        if required:
            raise ApiError(400, f"'{name}' is required.", field=name)
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", field=name)
    if len(value) > max_length:
        raise ApiError(400, f"'{name}' must be at most {max_length} characters.", field=name)
    if not value.strip():
        raise ApiError(400, f"'{name}' must not be blank.", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # The database driver would fail on it: a 500 instead of the client's fault.
        raise ApiError(400, f"'{name}' must be valid Unicode text.", field=name) from None
    return value


def boolean(body, name, default):
    """Return body[name] if it is a JSON boolean, `default` when absent; 400 otherwise.

    "true", 1 and null are refused: a client that sends them has a bug worth seeing.
    """
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false.", field=name)
    return value


def require_some(values, names):
    """400 unless at least one of the partial update's values was sent (PATCH {} changes nothing)."""
    if all(value is None for value in values.values()):
        raise ApiError(400, f"Send at least one of: {', '.join(names)}.")


def utc_iso(moment):
    """A UTC DATETIME from the database as ISO 8601 with a Z: 2026-11-22T21:48:28Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc(column):
    """SQL that formats DATETIME `column` (a name written in our code) as utc_iso() does.

    The %% are PyMySQL's escape for %, so queries using it must be run with
    parameters (every query in this service is).
    """
    return f"DATE_FORMAT({column}, '%%Y-%%m-%%dT%%H:%%i:%%sZ')"
