"""Posts (one user, many posts) at /users/<uid>/posts[/<pid>].

Authorization, the same on every route: the path's user must be the caller,
or the caller an admin. Anyone else gets a 404 exactly like a user or post
that does not exist, so ids reveal nothing. Every query on one post filters
on id AND user_id (content/posts.py), so a post is reachable only under its
own user's path. Conditional requests (ETag, If-None-Match, If-Match):
rest/conditional.py.
"""
from flask import Blueprint, current_app, jsonify, request, url_for

from accounts import cache, users
from accounts.errors import NotFound
from content import posts
from rest import conditional, inputs, pagination
from rest.responses import no_content
from rest.token_auth import current_user, token_required

bp = Blueprint("posts", __name__)

KIND = "p"  # ETag prefix
LIMITS = {"title": 200, "body": 65535}  # characters


def _owner(uid):
    """{id, username} of user `uid` if the caller may use their posts; 404 otherwise."""
    caller = current_user._get_current_object()  # one context lookup, not one per attribute
    if uid == caller.id:
        return caller.to_json()
    row = users.get(uid) if caller.is_admin else None
    if row is None:
        raise NotFound("No such user.")
    return {"id": row["id"], "username": row["username"]}


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
    values = {name: inputs.text(body, name, cap, required=not partial)
              for name, cap in LIMITS.items()}
    if partial:
        inputs.require_some(values, LIMITS)
    return values


@bp.get("/users/<id:uid>/posts")
@token_required
def list_posts(uid):
    """A page of the user's posts, newest first: {"posts": [...], "next": cursor or null}."""
    owner = _owner(uid)  # before the cache: a page is only ever shown to who may see it
    limit, before = pagination.page_args()
    # Kept as JSON text by this worker until a post of `uid` is written (accounts/cache.py).
    body = cache.read_through(cache.POSTS, uid, (before, limit),
                              lambda: _page_body(uid, owner, before, limit))
    response = current_app._get_current_object().response_class(body, mimetype="application/json")
    return conditional.private(response)


def _page_body(uid, owner, before, limit):
    """The JSON text of a page of `uid`'s posts, read from MySQL."""
    rows, cursor = pagination.page(posts.page(uid, before, limit + 1), limit)
    return current_app.json.dumps({"posts": [post_json(row, owner) for row in rows], "next": cursor},
                                  separators=(",", ":")) + "\n"


@bp.post("/users/<id:uid>/posts")
@token_required
def create_post(uid):
    """Create a post from {title, body}: 201 with Location, ETag and the post."""
    owner = _owner(uid)
    values = _input(partial=False)
    row = posts.create(uid, values["title"], values["body"])
    response = _answer(row, owner, 201)
    response.headers["Location"] = url_for(".get_post", uid=uid, pid=row["id"])
    return response


@bp.get("/users/<id:uid>/posts/<id:pid>")
@token_required
def get_post(uid, pid):
    """One post, with its ETag; 304 when If-None-Match names it."""
    owner = _owner(uid)
    row = posts.get(pid, uid)
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
    return _answer(posts.update(pid, uid, values["title"], values["body"], condition), owner)


@bp.delete("/users/<id:uid>/posts/<id:pid>")
@token_required
def delete_post(uid, pid):
    """Delete the post: 204 (412 when If-Match no longer names it)."""
    _owner(uid)
    posts.delete(pid, uid, conditional.expected_versions(KIND, pid))
    return no_content()
