"""Security events: GET /users/<id>/events (the owner, an admin) and GET /events (admins).

Keyset-paginated, newest first, like every list. Another user's id is a 404
for a non-admin, as on /users/<id>.
"""
from flask import Blueprint, jsonify, request

from accounts import events
from rest import pagination
from rest.errors import ApiError
from rest.responses import utc_iso
from rest.token_auth import current_user, token_required

bp = Blueprint("security_events", __name__)


def event_json(row):
    """The public view of an event row."""
    return {"id": row["id"], "user_id": row["user_id"], "kind": row["kind"], "detail": row["detail"],
            "ip": row["ip"], "user_agent": row["user_agent"], "request_id": row["request_id"],
            "created": utc_iso(row["created"])}


@bp.get("/users/<id:user_id>/events")
@token_required
def user_events(user_id):
    """The security events of one account, newest first (the owner, or an admin)."""
    if user_id != current_user.id and not current_user.is_admin:
        raise ApiError(404, "No such user.")
    limit, before = pagination.page_args()
    rows, cursor = pagination.page(events.of_user(user_id, before, limit + 1), limit)
    return jsonify(events=[event_json(r) for r in rows], next=cursor)


@bp.get("/events")
@token_required
def all_events():
    """Every account's security events, newest first (admins; ?kind= filters)."""
    if not current_user.is_admin:
        raise ApiError(403, "Only an admin can list every account's events.")
    kind = request.args.get("kind")
    if kind is not None and kind not in events.KINDS:
        raise ApiError(400, f"'kind' must be one of: {', '.join(sorted(events.KINDS))}.", field="kind")
    limit, before = pagination.page_args()
    rows, cursor = pagination.page(events.everyone(before, limit + 1, kind), limit)
    return jsonify(events=[event_json(r) for r in rows], next=cursor)
