"""Keyset pagination: `?limit=` and an opaque `?cursor=` from the previous page's `next`.

A page is the rows with id below the cursor's, newest first, read through an
index that starts with the filter columns and ends with id, so the last page
costs what the first does. The cursor is base64url of the last id seen; it is
opaque to clients (they pass back `next`), not a secret.
"""
import base64
import binascii
import re

from flask import request

from rest.errors import ApiError

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_request = request._get_current_object

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page_args():
    """Return (limit, before_id) from the query string; 400 on bad values.

    before_id is None for the first page.
    """
    args = _request().args
    raw = args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"'limit' must be an integer from 1 to {MAX_LIMIT}.", field="limit")
    cursor = args.get("cursor")
    return int(raw), (None if cursor is None else _decode(cursor))


_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,16}")


def _decode(cursor):
    # b64decode skips characters outside the alphabet; refuse them first so
    # one cursor has exactly one spelling.
    if not _CURSOR.fullmatch(cursor):
        raise ApiError(400, "'cursor' is not a cursor this service issued.", field="cursor")
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"==").decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.isdigit() or int(text) < 1 or len(text) > 10:
        raise ApiError(400, "'cursor' is not a cursor this service issued.", field="cursor")
    return int(text)


def encode(last_id):
    """The opaque cursor that continues after `last_id`."""
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def page(rows, limit):
    """Split rows fetched with LIMIT limit+1 into (rows, next_cursor or None)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode(rows[-1]["id"])
    return rows, None
