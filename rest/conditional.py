"""Entity tags and conditional requests for rows that carry a `version` column.

A row's ETag is strong and made of its kind, id and version: `"p12-v3"` is
post 12 at version 3 (`"a…"` for authors). Every write bumps the version, so
the tag changes even when two writes fall in the same second.

- GET with If-None-Match naming the current tag (weak comparison, RFC 9110
  13.1.2) answers 304 with no body.
- PUT, PATCH and DELETE with If-Match are a compare-and-set in SQL
  (`... AND FIND_IN_SET(version, %s)`): of several clients holding the same
  tag exactly one wins, the others get 412. Weak tags never match (strong
  comparison, RFC 9110 13.1.1); `If-Match: *` only requires the row to exist.
- A write without If-Match just happens (last write wins), as the tutorials'
  clients expect. A conditional write that changes nothing is NotFound or
  PreconditionFailed (content/posts.py write_failed()).
"""
import re

from flask import current_app, request


# Cacheable by the caller's own browser only, and always revalidated: the
# ETag makes revalidation a cheap 304.
CACHE_CONTROL = "private, no-cache"
_MAX_VERSION_DIGITS = 10  # version is INT UNSIGNED


def etag(kind, row):
    """The (unquoted) entity tag of `row`, which has `id` and `version`."""
    return f"{kind}{row['id']}-v{row['version']}"


def tagged(response, tag):
    """Set ETag and Cache-Control on a response that carries one row."""
    response.set_etag(tag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def private(response):
    """Set Cache-Control on a GET response without an entity tag (a list)."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def not_modified(tag):
    """A 304 response if the request's If-None-Match matches `tag`, else None."""
    if not request.if_none_match.contains_weak(tag):
        return None
    return tagged(current_app.response_class(status=304), tag)


def expected_versions(kind, row_id):
    """What If-Match demands of row `row_id`, as the two SQL parameters of a conditional write.

    Returns (None, None) when there is no condition (no If-Match, or `*`);
    otherwise a comma-separated list of the versions named by If-Match's
    strong tags of this row, for `(%s IS NULL OR FIND_IN_SET(version, %s))`.
    An empty list (only weak, malformed or other rows' tags) matches nothing: 412.
    """
    if "If-Match" not in request.headers or request.if_match.star_tag:
        return None, None
    pattern = re.compile(rf"{kind}{row_id}-v([0-9]{{1,{_MAX_VERSION_DIGITS}}})")
    # Werkzeug parses an empty tag ("") as None.
    versions = sorted({int(m.group(1)) for tag in request.if_match.as_set()
                       if tag and (m := pattern.fullmatch(tag))})
    listed = ",".join(str(v) for v in versions)
    return listed, listed
