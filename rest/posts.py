"""Posts (seed 002: one user, many posts) at /users/<uid>/posts[/<pid>].

Authorization, the same on every route: the path's user must be the caller,
or the caller an admin. Anyone else gets a 404 exactly like a user or post
that does not exist, so ids reveal nothing. Every query on one post filters
on id AND user_id, so a post is reachable only under its own user's path.
Conditional requests (ETag, If-None-Match, If-Match): rest/conditional.py.
"""
from flask import Blueprint, current_app, jsonify, request, url_for

import db
from rest import conditional, fields, inputs, pagination, user_cache
from rest.auth import current_user, token_required
from rest.errors import ApiError

bp = Blueprint("posts", __name__)

KIND = "p"  # ETag prefix
LIMITS = {"title": 200, "body": 65535}  # characters
NO_ID = 4294967296  # above every INT UNSIGNED id: the first page's "before"

USER_BY_ID = "SELECT id, username FROM user WHERE id = %s"
# Dates leave MySQL as the API shows them (fields.iso_utc): formatting them
# there costs the server less than decoding a DATETIME and formatting it
# again costs Python, for every row of a page.
POST_COLUMNS = f"""
    id, title, body, version,
    {fields.iso_utc("created")} AS created, {fields.iso_utc("updated")} AS updated"""
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


def _no_user():
    return ApiError(404, "No such user.")


def _no_post():
    return ApiError(404, "No such post.")


def _owner(uid):
    """{id, username} of user `uid` if the caller may use their posts; 404 otherwise."""
    if uid == current_user.id:
        return current_user.to_json()
    if not current_user.is_admin:
        raise _no_user()
    row = db.one(USER_BY_ID, (uid,))
    if row is None:
        raise _no_user()
    return {"id": row["id"], "username": row["username"]}


def _post(pid, uid):
    """The post row `pid` of user `uid`; 404 when there is none."""
    row = db.one(POST_BY_ID, (pid, uid))
    if row is None:
        raise _no_post()
    return row


def _write_failed(pid, uid):
    """404 or 412 for a conditional write that changed no row."""
    return conditional.write_failed(db.one(POST_EXISTS, (pid, uid)) is not None, "post")


def post_json(row, owner):
    """The public view of a post row."""
    return {
        "id": row["id"], "title": row["title"], "body": row["body"],
        "created": row["created"], "updated": row["updated"],
        "user": owner,
    }


def _answer(row, owner, status=200):
    response = jsonify(post_json(row, owner))
    response.status_code = status
    return conditional.tagged(response, conditional.etag(KIND, row))


def _input(partial):
    """{title, body} from the JSON body; absent fields are None when `partial` (PATCH)."""
    body = inputs.json_object()
    inputs.only_fields(body, LIMITS)
    values = {name: fields.text(body, name, cap, required=not partial)
              for name, cap in LIMITS.items()}
    if partial:
        fields.require_some(values, LIMITS)
    return values


@bp.get("/users/<id:uid>/posts")
@token_required
def list_posts(uid):
    """A page of the user's posts, newest first: {"posts": [...], "next": cursor or null}."""
    owner = _owner(uid)  # before the cache: a page is only ever shown to who may see it
    limit, before = pagination.page_args()
    before = before or NO_ID
    # Kept as JSON text by this worker until a post of `uid` is written (rest/user_cache.py).
    body = user_cache.read_through(user_cache.POSTS, uid, (before, limit),
                                   lambda: _page_body(uid, owner, before, limit))
    response = current_app.response_class(body, mimetype="application/json")
    return conditional.private(response)


def _page_body(uid, owner, before, limit):
    """The JSON text of a page of `uid`'s posts, read from MySQL."""
    rows = db.many(POSTS_PAGE, (uid, before, limit + 1))
    rows, cursor = pagination.page(rows, limit)
    return current_app.json.dumps({"posts": [post_json(row, owner) for row in rows], "next": cursor},
                                  separators=(",", ":")) + "\n"


@bp.post("/users/<id:uid>/posts")
@token_required
def create_post(uid):
    """Create a post from {title, body}: 201 with Location, ETag and the post."""
    owner = _owner(uid)
    values = _input(partial=False)
    try:
        pid = db.execute(INSERT_POST, (uid, values["title"], values["body"])).lastrowid
    except db.IntegrityError:  # the foreign key: the user was deleted a moment ago
        raise _no_user() from None
    user_cache.changed(uid, user_cache.POSTS)
    response = _answer(_post(pid, uid), owner, 201)
    response.headers["Location"] = url_for(".get_post", uid=uid, pid=pid)
    return response


@bp.get("/users/<id:uid>/posts/<id:pid>")
@token_required
def get_post(uid, pid):
    """One post, with its ETag; 304 when If-None-Match names it."""
    owner = _owner(uid)
    row = _post(pid, uid)
    return conditional.not_modified(conditional.etag(KIND, row)) or _answer(row, owner)


@bp.put("/users/<id:uid>/posts/<id:pid>")
@bp.patch("/users/<id:uid>/posts/<id:pid>")
@token_required
def update_post(uid, pid):
    """PUT replaces {title, body} (both required), PATCH changes those sent; 200 with the post.

    With If-Match, the change happens only if the post is still at that
    ETag (412 otherwise).
    """
    owner = _owner(uid)
    values = _input(partial=request.method == "PATCH")
    condition = conditional.expected_versions(KIND, pid)
    changed = db.execute(UPDATE_POST, (values["title"], values["body"], pid, uid, *condition))
    if not changed.rowcount:
        raise _write_failed(pid, uid)
    user_cache.changed(uid, user_cache.POSTS)
    return _answer(_post(pid, uid), owner)


@bp.delete("/users/<id:uid>/posts/<id:pid>")
@token_required
def delete_post(uid, pid):
    """Delete the post: 204 (412 when If-Match no longer names it)."""
    _owner(uid)
    condition = conditional.expected_versions(KIND, pid)
    if not db.execute(DELETE_POST, (pid, uid, *condition)).rowcount:
        raise _write_failed(pid, uid)
    user_cache.changed(uid, user_cache.POSTS)
    return "", 204

