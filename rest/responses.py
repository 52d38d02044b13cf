"""Small response helpers every blueprint shares."""
from datetime import datetime

from flask import make_response


def no_store(response):
    """Never cache this response: tokens (RFC 6749 section 5.1), health and metrics."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def no_content():
    """204 with no body and no Content-Type (there is nothing to type)."""
    response = make_response("", 204)
    response.headers.pop("Content-Type", None)
    return response


def utc_iso(moment: datetime) -> str:
    """A UTC DATETIME from the database as ISO 8601 with a Z: 2026-11-22T21:48:28Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
