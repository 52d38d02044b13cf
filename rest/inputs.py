"""Reading and checking request input. Every failure is an ApiError naming the field."""
from flask import request

from rest.errors import ApiError


def json_object():
    """Return the request body as a dict.

    415 unless the body is declared as JSON, 400 if it does not parse or is
    not a JSON object (arrays, strings, numbers and null are refused).
    """
    if not request.is_json:
        raise ApiError(415, "Send a JSON body with 'Content-Type: application/json'.")
    body = request.get_json(silent=True)
    if body is None and request.get_data(cache=True):
        raise ApiError(400, "The body is not valid JSON.")
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
