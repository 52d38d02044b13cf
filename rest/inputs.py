"""Reading and checking request input: bodies, fields, query arguments, login credentials.

Every failure is a 400 ApiError naming the field (415 for a body of the wrong
type). A field that is present with JSON null is the wrong type, never
"absent": PATCH changes only the fields that are sent, so null cannot mean
"leave as is" and "clear" at once. The rules a well-formed value must meet
(username alphabet, password length) are the domain's: accounts/validation.py.
"""
from flask import current_app, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from rest.errors import ApiError

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_request = request._get_current_object


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


def present_string(body, name):
    """body[name] when it is a string; 400 naming the field when missing or of another type."""
    value = body.get(name)
    if value is None:
        raise ApiError(400, f"'{name}' is required.", field=name)
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be a string.", field=name)
    return value


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
        # The database driver would fail on it. rest/json_body.py refuses it in
        # every JSON body already; this holds for a dict from anywhere else.
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


def require_host():
    """before_request: 400 for an HTTP/1.1 request without a Host header (RFC 9112 section 3.2).

    `python -m serving` refuses it before Flask (serving/bridge.py); this holds
    under any other WSGI server (gunicorn passed it on, and it was served: a
    request naming no site, which a proxy or a cache may attribute to any).
    """
    environ = _request().environ
    if not environ.get("HTTP_HOST") and environ.get("SERVER_PROTOCOL") == "HTTP/1.1":
        raise ApiError(400, "An HTTP/1.1 request must carry a Host header.")


MAX_ID = 4294967295  # INT UNSIGNED


def user_id_arg():
    """`?user_id=` as an int, or None when absent; 400 unless a positive INT UNSIGNED."""
    raw = request.args.get("user_id")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(400, "'user_id' must be a positive integer.", field="user_id")
    return int(raw)


# --- login credentials ----------------------------------------------------------------

# "otp": a one-step login of an account with TOTP (rest/factors.py).
LOGIN_FIELDS = ("username", "password", "otp")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def credentials_from_json():
    """Return (username, password) from a JSON login body; 4xx on a bad body.

    A missing or empty field is "Invalid credentials" (Flask-JWT's answer,
    given by the view); a field of the wrong type or over the length cap, or
    any other field (the API's one unknown-field policy), is a 400 naming it.
    """
    body = json_object()
    only_fields(body, LOGIN_FIELDS)
    cap = current_app.config["PASSWORD_MAX_LENGTH"]
    return optional_string(body, "username", cap), optional_string(body, "password", cap)


def _credentials_from_form():
    form = request.form
    only_fields(form, LOGIN_FIELDS)
    cap = current_app.config["PASSWORD_MAX_LENGTH"]
    return optional_string(form, "username", cap), optional_string(form, "password", cap)


def login_credentials():
    """Return (username, password, basic) from HTTP Basic, a form or JSON (POST /login).

    No credentials at all is a Basic attempt with nothing in it: the 401 then
    carries the challenge, as the library tutorial's client expects. A body
    of another type is a 415.
    """
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username, basic.password, True
    if request.mimetype in FORM_TYPES:
        return (*_credentials_from_form(), False)
    if request.is_json:
        return (*credentials_from_json(), False)
    if not request.get_data(cache=True):
        return None, None, True
    raise ApiError(415, "Send HTTP Basic credentials, a form or a JSON body "
                        "with 'username' and 'password'.")


def login_otp():
    """The TOTP code a login body carries ("otp", JSON or form), or None; 400 if not a string.

    Call after credentials_from_json() or login_credentials(), which already
    refused unknown fields and bodies of other types.
    """
    if request.mimetype in FORM_TYPES:
        return optional_string(request.form, "otp", 16)
    if request.is_json:
        return optional_string(json_object(), "otp", 16)
    return None


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
