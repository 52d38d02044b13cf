"""Parsing JSON request bodies: what json.loads reads, minus what could crash a view.

Every JSON body is parsed here: app.CompactJSON.loads, which Flask's
request.get_json() calls, delegates to loads() below. So these rules hold for
every route, and also for the parses the rate limiter and the scope check make
before the view runs (silently: they see None, and the view's own parse then
answers the 400).

- Nesting deeper than MAX_DEPTH arrays and objects is refused before the
  parser runs: the standard parser recurses once per level, and 30,000 `[`
  reached RecursionError (a 500). The cap is far above what any body here needs.
- The body must decode strictly (UTF-8, or the UTF-16/32 json detects): no
  encoded surrogates, no invalid bytes.
- No string, value or key, may hold a lone UTF-16 surrogate (`"\\ud800"`): json
  keeps it, but it cannot be encoded as UTF-8, so the database driver or the
  password hash failed on it (a 500).
- `NaN`, `Infinity` and `-Infinity` (not JSON, though Python reads them) and
  numbers beyond a double's range (`1e400`, read as inf) are refused.

A refusal is a RefusedJSON: a 400 in the error contract that is also a
ValueError, which is what get_json() catches; JSONRequest hands it on as
raised instead of turning it into a bare 400. A bad string names its field
by its key path (`username`, `credential.response.id`, `codes[2]`).
docs/security.md, "Request input".
"""
import json
import math
import re
from itertools import accumulate

from flask import Request

from rest.errors import ApiError

MAX_DEPTH = 32

# A JSON string literal, brackets inside it nesting nothing. An unterminated one
# runs to the end of the text: the pattern always matches at a quote, so the
# scan stays linear (a required closing quote made '"\\"\\"...' quadratic:
# each failed match rescanned the rest of the text).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# Opening brackets become +1, closing ones -1 (as signed bytes).
_STEPS = str.maketrans("[{]}", "\x01\x01\xff\xff")


class RefusedJSON(ApiError, ValueError):
    """A body json.loads would read, or crash on, that the service refuses: a 400."""

    def __init__(self, description, field=None):
        super().__init__(400, description, field=field)


class JSONRequest(Request):
    """Flask's request, except that a RefusedJSON keeps its own message and field.

    get_json() passes every ValueError of the parser to this hook, whose
    default answer is a bare 400 "Bad Request".
    """

    def on_json_loading_failed(self, e):
        if isinstance(e, RefusedJSON):
            raise e
        return super().on_json_loading_failed(e)


def loads(data, **kwargs):
    """Parse a request body (bytes or str) as JSON; RefusedJSON or ValueError when it is not acceptable."""
    text = _decoded(data)
    if _too_deep(text):
        raise RefusedJSON(f"JSON nested deeper than {MAX_DEPTH} levels.")
    if kwargs:
        value = json.loads(text, **{"parse_constant": _no_constant, "parse_float": _finite_float, **kwargs})
    else:
        value = _decoder.decode(text)
    # Strict decoding let no surrogate through: one can only come from a \u escape.
    if "\\u" in text:
        _refuse_lone_surrogates(value, "")
    return value


def _no_constant(name):
    raise RefusedJSON(f"{name} is not a JSON number.")


def _finite_float(literal):
    value = float(literal)
    if not math.isfinite(value):
        raise RefusedJSON(f"The number {literal[:20]} is out of range.")
    return value


# One decoder, reused: json.loads() with options builds a new one per call (half its time on a login body).
_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def _decoded(data):
    if not isinstance(data, (bytes, bytearray)):
        return data
    try:
        # Strict, unlike json.loads(bytes), which decodes with 'surrogatepass'.
        return data.decode(json.detect_encoding(data))
    except UnicodeDecodeError:
        raise RefusedJSON("The body is not valid UTF-8 text.") from None


def _too_deep(text):
    """True if arrays and objects in `text` nest deeper than MAX_DEPTH (linear, no recursion)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # nearly every body: two C-level counts
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    steps = memoryview(brackets.translate(_STEPS).encode("latin-1")).cast("b")
    return max(accumulate(steps), default=0) > MAX_DEPTH


def _encodable(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_lone_surrogates(value, path):
    """RefusedJSON naming the first string under `value` (at key path `path`) that UTF-8 cannot encode.

    Recursion is bounded: the value nests at most MAX_DEPTH levels.
    """
    if isinstance(value, str):
        if not _encodable(value):
            where = f"'{path}'" if path else "The JSON body"
            raise RefusedJSON(f"{where} must be valid Unicode text.", field=path or None)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                where = f"'{path}'" if path else "The JSON body"
                raise RefusedJSON(f"{where} has a key that is not valid Unicode text.",
                                  field=path or None)
            _refuse_lone_surrogates(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_lone_surrogates(item, f"{path}[{index}]")
