"""Email verification: POST /email/verify, POST /email/verify/resend, the page GET /verify-email."""
from flask import Blueprint, abort, current_app, jsonify, render_template

from accounts import email_verification
from rest import inputs, rate_limits
from rest.errors import ApiError
from rest.responses import no_content
from rest.middleware import request_origin
from rest.token_auth import current_user, token_required

bp = Blueprint("email", __name__)


@bp.before_request
def _account_email_on():
    """Without ACCOUNT_EMAIL these routes do not exist."""
    if not current_app.config["ACCOUNT_EMAIL"]:
        abort(404)


@bp.post("/email/verify")
@rate_limits.token_limit
def verify():
    """Verify the address a verification token was sent to; 204."""
    body = inputs.json_object()
    inputs.only_fields(body, ("token",))
    if not isinstance(body.get("token"), str):
        raise ApiError(400, "'token' is required and must be a string.", field="token")
    email_verification.verify(body["token"], origin=request_origin())
    return no_content()


@bp.post("/email/verify/resend")
@rate_limits.forgot_limit
@token_required
def resend():
    """Send a new verification message for the caller's pending address; 202."""
    email_verification.resend(current_user.id)
    response = jsonify(message="A new verification message is on its way.")
    response.status_code = 202
    return response


@bp.get("/verify-email")
def verify_page():
    """The page a verification link opens; its script posts the fragment's token."""
    return render_template("verify_email.html")

