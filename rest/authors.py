"""Authors (the library tutorial) at /authors[/<id>], plus its POST /author.

Every author belongs to the user who created it. A caller sees and changes
only their own; an admin may read, change and delete any by id, and list
another user's with `GET /authors?user_id=<id>`. Anyone else gets a 404
exactly like an id that does not exist. Name and book are unique per owner:
a duplicate is a 409 naming the field (content/authors.py).
Conditional requests (ETag, If-None-Match, If-Match): rest/conditional.py.
"""
from flask import Blueprint, jsonify, request, url_for

from accounts import users
from accounts.errors import NotFound
from content import authors
from rest import conditional, inputs, pagination
from rest.responses import no_content, utc_iso
from rest.token_auth import current_user, token_required

bp = Blueprint("authors", __name__)

KIND = "a"  # ETag prefix
LIMITS = {"name": 100, "book": 200, "country": 100}  # characters
FIELDS = (*LIMITS, "booker_prize")


def _owner_id(aid):
    """The user whose author `aid` the caller acts on: the caller, or for an admin the row's owner."""
    return authors.owner_of(aid) if current_user.is_admin else current_user.id


def author_json(row, owner):
    """The public view of an author row; `owner` is {id, username}."""
    return {
        "id": row["id"], "name": row["name"], "book": row["book"], "country": row["country"],
        "booker_prize": bool(row["booker_prize"]),
        "created": utc_iso(row["created"]), "updated": utc_iso(row["updated"]),
        "user": owner,
    }


def _answer(row, status=200):
    owner = {"id": row["user_id"], "username": row["username"]}
    response = jsonify(author_json(row, owner))
    response.status_code = status
    return conditional.tagged(response, conditional.etag(KIND, row))


def _input(partial):
    """{name, book, country, booker_prize} from the JSON body; absent fields are None when `partial`.

    booker_prize defaults to false on POST and PUT (a replacement), as the column does.
    """
    body = inputs.json_object()
    inputs.only_fields(body, FIELDS)
    values = {name: inputs.text(body, name, cap, required=not partial)
              for name, cap in LIMITS.items()}
    values["booker_prize"] = inputs.boolean(body, "booker_prize", None if partial else False)
    if partial:
        inputs.require_some(values, FIELDS)
    return values


def _list_owner():
    """{id, username} whose authors GET /authors lists: the caller, or `?user_id=` for an admin."""
    user_id = inputs.user_id_arg()
    if user_id is None or user_id == current_user.id:
        return current_user.to_json()
    row = users.get(user_id) if current_user.is_admin else None
    if row is None:
        raise NotFound("No such user.")
    return {"id": row["id"], "username": row["username"]}


@bp.get("/authors")
@token_required
def list_authors():
    """A page of the caller's authors, newest first: {"list_of_authors": [...], "next": cursor or null}."""
    owner = _list_owner()
    limit, before = pagination.page_args()
    rows, cursor = pagination.page(authors.page(owner["id"], before, limit + 1), limit)
    response = jsonify(list_of_authors=[author_json(row, owner) for row in rows], next=cursor)
    return conditional.private(response)


@bp.post("/authors")
@bp.post("/author")  # the library tutorial's path
@token_required
def create_author():
    """Create an author owned by the caller: 201 with Location, ETag and the author."""
    row = authors.create(current_user.id, _input(partial=False))
    response = _answer(row, 201)
    response.headers["Location"] = url_for(".get_author", aid=row["id"])
    return response


@bp.get("/authors/<id:aid>")
@token_required
def get_author(aid):
    """One author, with its ETag; 304 when If-None-Match names it."""
    row = authors.get(aid, _owner_id(aid))
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
    return _answer(authors.update(aid, owner_id, values, conditional.expected_versions(KIND, aid)))


@bp.delete("/authors/<id:aid>")
@token_required
def delete_author(aid):
    """Delete the author: 204 (412 when If-Match no longer names it)."""
    owner_id = _owner_id(aid)
    authors.delete(aid, owner_id, conditional.expected_versions(KIND, aid))
    return no_content()
