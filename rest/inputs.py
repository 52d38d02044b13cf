"""Reading and checking request input. Every failure is an ApiError naming the field."""
from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from rest.errors import ApiError


def json_object():
    """Return the request body as a dict.

    415 unless the body is declared as JSON, 400 if it does not parse or is
    not a JSON object (arrays, strings, numbers and null are refused).
    """
    if not request.is_json:
        raise ApiError(415, "Send a JSON body with 'Content-Type: application/json'.")
    try:
        body = request.get_json()
    except BadRequest:
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The JSON body must be an object.")
    return body


def optional_string(body, name, max_length):
    """Return body[name] if present: a str of at most max_length characters, else 400."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", field=name)
    if len(value) > max_length:
        raise ApiError(400, f"'{name}' must be at most {max_length} characters.", field=name)
    return value


# Fields a client may never set on its own account, whatever the endpoint.
PRIVILEGED_FIELDS = ("admin", "is_admin", "role", "id", "password_hash")


def only_fields(body, allowed):
    """400 naming the first key of `body` not in `allowed`.

    The API's one policy for unknown fields: refused, never silently ignored,
    so a typo ("pasword") or a field from another API is not lost unnoticed.
    Privileged fields get a message that says why.
    """
    for name in body:
        if name in allowed:
            continue
        if name in PRIVILEGED_FIELDS:
            raise ApiError(400, f"'{name}' cannot be set here.", field=name)
        raise ApiError(400, f"Unknown field '{name}'.", field=name)


class PositiveId(BaseConverter):
    """URL converter `<id:name>`: a positive integer that fits INT UNSIGNED.

    Anything else (0, -1, 1.5, 'abc', 4294967296) does not match the route,
    so it is Flask's JSON 404, never a 500 and never a query.
    """

    # The bound lives in the regex, not in to_python(): a ValidationError there
    # makes Werkzeug answer 405 (the path matched, the method "did not").
    regex = (
        r"(?:[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}"
        r"|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}"
        r"|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])"
    )

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(int(value))
