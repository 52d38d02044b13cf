"""Authors: the `author` table. Name and book are unique per owner (two unique indexes).

A duplicate is decided by the index, so racing requests cannot both win; it
is raised as Conflict naming the field whose index refused it.
"""
import db
from accounts.errors import Conflict, NotFound
from content.posts import NO_CONDITION, write_failed

# The unique index that refused a write, and the field it is about.
UNIQUE_FIELDS = {"uq_author_user_name": "name", "uq_author_user_book": "book"}

AUTHOR_OWNER = "SELECT user_id FROM author WHERE id = %s"
AUTHOR_EXISTS = "SELECT 1 AS found FROM author WHERE id = %s AND user_id = %s"
AUTHOR_BY_ID = """
    SELECT a.id, a.name, a.book, a.country, a.booker_prize, a.version,
           a.created, a.updated, a.user_id, u.username
    FROM author a JOIN user u ON u.id = a.user_id
    WHERE a.id = %s AND a.user_id = %s"""
# Walks ix_author_user_id (user_id, id): the last page costs what the first does.
AUTHORS_PAGE = """
    SELECT id, name, book, country, booker_prize, version, created, updated
    FROM author WHERE user_id = %s AND id < %s ORDER BY id DESC LIMIT %s"""
INSERT_AUTHOR = """
    INSERT INTO author (user_id, name, book, country, booker_prize)
    VALUES (%s, %s, %s, %s, %s)"""
# PUT and PATCH alike: NULL keeps the column. The last condition is If-Match's
# compare-and-set (NULL: no condition).
UPDATE_AUTHOR = """
    UPDATE author SET
      name = COALESCE(%s, name), book = COALESCE(%s, book),
      country = COALESCE(%s, country), booker_prize = COALESCE(%s, booker_prize),
      version = version + 1, updated = UTC_TIMESTAMP()
    WHERE id = %s AND user_id = %s AND (%s IS NULL OR FIND_IN_SET(version, %s))"""
DELETE_AUTHOR = """
    DELETE FROM author
    WHERE id = %s AND user_id = %s AND (%s IS NULL OR FIND_IN_SET(version, %s))"""


def owner_of(aid: int) -> int:
    """The id of the user who owns author `aid`; NotFound when there is none."""
    row = db.one(AUTHOR_OWNER, (aid,))
    if row is None:
        raise NotFound("No such author.")
    return row["user_id"]


def get(aid: int, owner_id: int) -> dict:
    """The author `aid` of `owner_id`, with the owner's username; NotFound when there is none."""
    row = db.one(AUTHOR_BY_ID, (aid, owner_id))
    if row is None:
        raise NotFound("No such author.")
    return row


def page(owner_id: int, before: int | None, limit: int) -> list[dict]:
    """Up to `limit` authors of `owner_id` with ids below `before`, newest first."""
    return db.many(AUTHORS_PAGE, (owner_id, before or db.ABOVE_ALL_IDS, limit))


def create(owner_id: int, values: dict) -> dict:
    """Insert an author from {name, book, country, booker_prize} and return it."""
    params = (owner_id, values["name"], values["book"], values["country"], values["booker_prize"])
    aid = _write(INSERT_AUTHOR, params).lastrowid
    return get(aid, owner_id)


def update(aid: int, owner_id: int, values: dict, condition=NO_CONDITION) -> dict:
    """Change the values that are not None and return the author."""
    params = (values["name"], values["book"], values["country"], values["booker_prize"],
              aid, owner_id, *condition)
    if not _write(UPDATE_AUTHOR, params).rowcount:
        raise _write_failed(aid, owner_id)
    return get(aid, owner_id)


def delete(aid: int, owner_id: int, condition=NO_CONDITION) -> None:
    """Delete the author; NotFound or PreconditionFailed when nothing was deleted."""
    if not db.execute(DELETE_AUTHOR, (aid, owner_id, *condition)).rowcount:
        raise _write_failed(aid, owner_id)


def _write_failed(aid, owner_id):
    return write_failed(db.one(AUTHOR_EXISTS, (aid, owner_id)) is not None, "author")


def _duplicate(exc):
    message = str(exc.args[1]) if len(exc.args) > 1 else ""
    field = next((f for index, f in UNIQUE_FIELDS.items() if index in message), None)
    if field is None:
        return Conflict("You already have an author like this.")
    return Conflict(f"You already have an author with this {field}.", field=field)


def _write(sql, params):
    """Run an INSERT/UPDATE; Conflict naming the field on a duplicate name or book.

    The only other integrity error is the owner's foreign key: the user was
    deleted a moment ago (NotFound, never a crash).
    """
    try:
        return db.execute(sql, params)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise _duplicate(exc) from None
        raise NotFound("No such user.") from None
