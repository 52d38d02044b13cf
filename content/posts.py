"""Posts: the `post` table. Every statement on one post filters on id AND user_id.

Conditional writes take `condition`, the (versions, versions) pair that
rest/conditional.py makes from If-Match: (None, None) means no condition.
"""
import db
from accounts import cache
from accounts.errors import NotFound, PreconditionFailed

NO_CONDITION = (None, None)


def iso_utc(column):
    """SQL that formats DATETIME `column` (a name written in our code) as 2026-11-22T21:48:28Z.

    The %% are PyMySQL's escape for %, so queries using it must be run with
    parameters (every query in this service is).
    """
    return f"DATE_FORMAT({column}, '%%Y-%%m-%%dT%%H:%%i:%%sZ')"


# Dates leave MySQL as the API shows them: formatting them there costs the
# server less than decoding a DATETIME and formatting it again costs Python,
# for every row of a page.
POST_COLUMNS = f"""
    id, title, body, version,
    {iso_utc("created")} AS created, {iso_utc("updated")} AS updated"""
POST_BY_ID = f"""
    SELECT {POST_COLUMNS} FROM post
    WHERE id = %s AND user_id = %s"""
# Walks ix_post_user_id (user_id, id): the last page costs what the first does.
POSTS_PAGE = f"""
    SELECT {POST_COLUMNS} FROM post
    WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s"""
POST_EXISTS = "SELECT 1 AS found FROM post WHERE id = %s AND user_id = %s"
INSERT_POST = "INSERT INTO post (user_id, title, body) VALUES (%s, %s, %s)"
# PUT and PATCH alike: NULL keeps the column. The last condition is If-Match's
# compare-and-set (NULL: no condition).
UPDATE_POST = """
    UPDATE post SET
      title = COALESCE(%s, title), body = COALESCE(%s, body),
      version = version + 1, updated = UTC_TIMESTAMP()
    WHERE id = %s AND user_id = %s AND (%s IS NULL OR FIND_IN_SET(version, %s))"""
DELETE_POST = """
    DELETE FROM post
    WHERE id = %s AND user_id = %s AND (%s IS NULL OR FIND_IN_SET(version, %s))"""


def get(pid: int, uid: int) -> dict:
    """The post `pid` of user `uid`; NotFound when there is none."""
    row = db.one(POST_BY_ID, (pid, uid))
    if row is None:
        raise NotFound("No such post.")
    return row


def page(uid: int, before: int | None, limit: int) -> list[dict]:
    """Up to `limit` posts of `uid` with ids below `before` (None: the newest), newest first."""
    return db.many(POSTS_PAGE, (uid, before or db.ABOVE_ALL_IDS, limit))


def create(uid: int, title: str, body: str) -> dict:
    """Insert a post of `uid` and return it; NotFound when the user was just deleted."""
    try:
        pid = db.execute(INSERT_POST, (uid, title, body)).lastrowid
    except db.IntegrityError:  # the foreign key: the user was deleted a moment ago
        raise NotFound("No such user.") from None
    cache.changed(uid, cache.POSTS)
    return get(pid, uid)


def update(pid: int, uid: int, title: str | None, body: str | None,
           condition=NO_CONDITION) -> dict:
    """Change what is not None and return the post; NotFound or PreconditionFailed when nothing changed."""
    if not db.execute(UPDATE_POST, (title, body, pid, uid, *condition)).rowcount:
        raise _write_failed(pid, uid)
    cache.changed(uid, cache.POSTS)
    return get(pid, uid)


def delete(pid: int, uid: int, condition=NO_CONDITION) -> None:
    """Delete the post; NotFound or PreconditionFailed when nothing was deleted."""
    if not db.execute(DELETE_POST, (pid, uid, *condition)).rowcount:
        raise _write_failed(pid, uid)
    cache.changed(uid, cache.POSTS)


def _write_failed(pid, uid):
    return write_failed(db.one(POST_EXISTS, (pid, uid)) is not None, "post")


def write_failed(exists: bool, what: str) -> Exception:
    """The refusal of a conditional write that changed no row: NotFound if gone, else PreconditionFailed."""
    if not exists:
        return NotFound(f"No such {what}.")
    return PreconditionFailed(f"The {what} changed since you read it: If-Match does not name its "
                              "current ETag. GET it again, then retry with the new ETag.")
