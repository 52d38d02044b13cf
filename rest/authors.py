"""Authors (seed 000's library) at /authors[/<id>], plus the seed's POST /author.

Every author belongs to the user who created it. A caller sees and changes
only their own; an admin may read, change and delete any by id, and list
another user's with `GET /authors?user_id=<id>`. Anyone else gets a 404
exactly like an id that does not exist. Name and book are unique per owner
(unique indexes (user_id, name) and (user_id, book)): a duplicate is a 409
naming the field, decided by the index, so racing requests cannot both win.
Conditional requests (ETag, If-None-Match, If-Match): rest/conditional.py.
"""
from flask import Blueprint, jsonify, request, url_for

import db
from rest import conditional, fields, inputs, pagination
from rest.auth import current_user, token_required
from rest.errors import ApiError

bp = Blueprint("authors", __name__)

KIND = "a"  # ETag prefix
LIMITS = {"name": 100, "book": 200, "country": 100}  # characters
FIELDS = (*LIMITS, "booker_prize")
NO_ID = 4294967296  # above every INT UNSIGNED id: the first page's "before"
# The unique index that refused a write, and the field it is about.
UNIQUE_FIELDS = {"uq_author_user_name": "name", "uq_author_user_book": "book"}

USER_BY_ID = "SELECT id, username FROM user WHERE id = %s"
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


def _no_author():
    return ApiError(404, "No such author.")


def _owner_id(aid):
    """The user whose author `aid` the caller acts on: the caller, or for an admin the row's owner."""
    if not current_user.is_admin:
        return current_user.id
    row = db.one(AUTHOR_OWNER, (aid,))
    if row is None:
        raise _no_author()
    return row["user_id"]


def _author(aid, owner_id):
    """The author row `aid` of `owner_id`, with the owner's username; 404 when there is none."""
    row = db.one(AUTHOR_BY_ID, (aid, owner_id))
    if row is None:
        raise _no_author()
    return row


def author_json(row, owner):
    """The public view of an author row; `owner` is {id, username}."""
    return {
        "id": row["id"], "name": row["name"], "book": row["book"], "country": row["country"],
        "booker_prize": bool(row["booker_prize"]),
        "created": fields.utc_iso(row["created"]), "updated": fields.utc_iso(row["updated"]),
        "user": owner,
    }


def _answer(row, status=200):
    owner = {"id": row["user_id"], "username": row["username"]}
    response = jsonify(author_json(row, owner))
    response.status_code = status
    return conditional.tagged(response, conditional.etag(KIND, row))


def _input(partial):
    """(name, book, country, booker_prize) from the JSON body; absent fields are None when `partial`.

    booker_prize defaults to false on POST and PUT (a replacement), as the column does.
    """
    body = inputs.json_object()
    inputs.only_fields(body, FIELDS)
    values = {name: fields.text(body, name, cap, required=not partial)
              for name, cap in LIMITS.items()}
    values["booker_prize"] = fields.boolean(body, "booker_prize", None if partial else False)
    if partial:
        fields.require_some(values, FIELDS)
    return values


def _write_failed(aid, owner_id):
    """404 or 412 for a conditional write that changed no row."""
    exists = db.one(AUTHOR_EXISTS, (aid, owner_id)) is not None
    return conditional.write_failed(exists, "author")


def _duplicate(exc):
    """The 409 for a unique-index violation, naming the field whose index refused it."""
    message = str(exc.args[1]) if len(exc.args) > 1 else ""
    field = next((f for index, f in UNIQUE_FIELDS.items() if index in message), None)
    if field is None:
        return ApiError(409, "You already have an author like this.")
    return ApiError(409, f"You already have an author with this {field}.", field=field)


def _write(sql, params):
    """Run an INSERT/UPDATE of an author; 409 naming the field on a duplicate name or book.

    The only other integrity error is the owner's foreign key: the user was
    deleted a moment ago (a 404, never a 500).
    """
    try:
        return db.execute(sql, params)
    except db.IntegrityError as exc:
        if db.is_duplicate(exc):
            raise _duplicate(exc) from None
        raise ApiError(404, "No such user.") from None


def _list_owner():
    """{id, username} whose authors GET /authors lists: the caller, or `?user_id=` for an admin."""
    raw = request.args.get("user_id")
    if raw is None:
        return current_user.to_json()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) >= 1):
        raise ApiError(400, "'user_id' must be a positive integer.", field="user_id")
    if int(raw) == current_user.id:
        return current_user.to_json()
    row = db.one(USER_BY_ID, (int(raw),)) if current_user.is_admin else None
    if row is None:
        raise ApiError(404, "No such user.")
    return {"id": row["id"], "username": row["username"]}


@bp.get("/authors")
@token_required
def list_authors():
    """A page of the caller's authors, newest first: {"list_of_authors": [...], "next": cursor or null}."""
    owner = _list_owner()
    limit, before = pagination.page_args()
    rows = db.many(AUTHORS_PAGE, (owner["id"], before or NO_ID, limit + 1))
    rows, cursor = pagination.page(rows, limit)
    response = jsonify(list_of_authors=[author_json(row, owner) for row in rows], next=cursor)
    return conditional.private(response)


@bp.post("/authors")
@bp.post("/author")  # seed 000's path
@token_required
def create_author():
    """Create an author owned by the caller: 201 with Location, ETag and the author."""
    values = _input(partial=False)
    params = (current_user.id, values["name"], values["book"], values["country"],
              values["booker_prize"])
    aid = _write(INSERT_AUTHOR, params).lastrowid
    response = _answer(_author(aid, current_user.id), 201)
    response.headers["Location"] = url_for(".get_author", aid=aid)
    return response


@bp.get("/authors/<id:aid>")
@token_required
def get_author(aid):
    """One author, with its ETag; 304 when If-None-Match names it."""
    row = _author(aid, _owner_id(aid))
    return conditional.not_modified(conditional.etag(KIND, row)) or _answer(row)


@bp.put("/authors/<id:aid>")
@bp.patch("/authors/<id:aid>")
@token_required
def update_author(aid):
    """PUT replaces the author (name, book, country required), PATCH changes the fields sent.

    With If-Match, the change happens only if the author is still at that
    ETag (412 otherwise). 200 with the author.
    """
    owner_id = _owner_id(aid)
    values = _input(partial=request.method == "PATCH")
    condition = conditional.expected_versions(KIND, aid)
    params = (values["name"], values["book"], values["country"], values["booker_prize"],
              aid, owner_id, *condition)
    if not _write(UPDATE_AUTHOR, params).rowcount:
        raise _write_failed(aid, owner_id)
    return _answer(_author(aid, owner_id))


@bp.delete("/authors/<id:aid>")
@token_required
def delete_author(aid):
    """Delete the author: 204 (412 when If-Match no longer names it)."""
    owner_id = _owner_id(aid)
    condition = conditional.expected_versions(KIND, aid)
    if not db.execute(DELETE_AUTHOR, (aid, owner_id, *condition)).rowcount:
        raise _write_failed(aid, owner_id)
    return "", 204
