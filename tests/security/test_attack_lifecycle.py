"""Attacks on the token lifecycle: wrong token type, replayed refresh tokens, tokens
that outlive a logout, a password change or the account, and payloads that claim
privileges the database does not grant."""
import pytest

import db
from support import bearer
from forge import assert_error, assert_invalid_token, assert_safe, claims, hs256

REVOKED = "User does not exist or the token was revoked"


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def log_in(client, user):
    response = client.post("/auth", json={"username": user["username"], "password": user["password"]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(client, token):
    return client.post("/refresh", json={"refresh_token": token})


def me(client, token):
    return client.get("/rest-auth", headers=bearer(token))


def assert_revoked(response):
    assert_invalid_token(response, REVOKED, "Invalid JWT")


def test_refresh_token_as_access_token(client, alice):
    """A refresh token presented to a protected route is refused by its type."""
    tokens = log_in(client, alice)
    assert_invalid_token(me(client, tokens["refresh_token"]), "Expected an access token")


def test_access_token_as_refresh_token(client, alice):
    """An access token presented to POST /refresh (body or header) is refused by its type."""
    tokens = log_in(client, alice)
    assert_invalid_token(refresh(client, tokens["access_token"]), "Expected a refresh token")
    response = client.post("/refresh", headers=bearer(tokens["access_token"]))
    assert_invalid_token(response, "Expected a refresh token")


def test_reused_rotated_refresh_token(make_app, alice):
    """Replaying a rotated refresh token revokes the whole session: thief and victim log in again."""
    client = make_app(JWT_REFRESH_GRACE=0).test_client()
    first = log_in(client, alice)
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200
    second = second.get_json()
    assert_invalid_token(refresh(client, first["refresh_token"]),
                         "Refresh token was already used; the session has been revoked")
    assert_revoked(refresh(client, second["refresh_token"]))
    assert_revoked(me(client, second["access_token"]))


def test_access_token_after_logout(client, alice):
    """POST /logout revokes the token it was called with, and its refresh token."""
    tokens = log_in(client, alice)
    assert client.post("/logout", headers=bearer(tokens["access_token"])).status_code == 204
    assert_revoked(me(client, tokens["access_token"]))
    assert_revoked(refresh(client, tokens["refresh_token"]))


def test_access_token_after_logout_all(client, alice):
    """POST /logout-all revokes every session of the user, not only the caller's."""
    phone, laptop = log_in(client, alice), log_in(client, alice)
    assert client.post("/logout-all", headers=bearer(laptop["access_token"])).status_code == 204
    for tokens in (phone, laptop):
        assert_revoked(me(client, tokens["access_token"]))
        assert_revoked(refresh(client, tokens["refresh_token"]))


def test_access_token_after_password_change(client, alice):
    """Changing the password revokes every token issued before, including the caller's."""
    old = log_in(client, alice)
    response = client.patch(f"/users/{alice['id']}", headers=bearer(old["access_token"]),
                            json={"password": "a brand new passphrase", "current_password": alice["password"]})
    assert response.status_code == 200, response.get_json()
    assert_safe(response)
    assert_revoked(me(client, old["access_token"]))
    assert_revoked(refresh(client, old["refresh_token"]))


def test_access_token_after_deletion(client, alice, make_user):
    """A deleted user's token dies with the account, even if a new user gets the same name."""
    tokens = log_in(client, alice)
    response = client.delete(f"/users/{alice['id']}", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert_revoked(me(client, tokens["access_token"]))
    assert_revoked(refresh(client, tokens["refresh_token"]))
    make_user("alice", password="another passphrase")
    assert_revoked(me(client, tokens["access_token"]))


def test_token_claiming_admin(client, alice, make_user, app):
    """A correctly signed token whose payload claims admin rights grants none: roles come from the database."""
    bob = make_user("bob")
    token = hs256(claims(alice["id"], admin=True, is_admin=True, role="admin", roles=["admin"],
                         scope="admin", identity={"id": alice["id"], "admin": True}))
    assert me(client, token).status_code == 200
    response = client.patch(f"/users/{alice['id']}", headers=bearer(token), json={"admin": True})
    assert_error(response, 403, "Forbidden", "Only an admin can change 'admin'.")
    assert_error(client.get("/sessions", query_string={"user_id": bob["id"]}, headers=bearer(token)),
                 403, "Forbidden")
    assert_error(client.delete(f"/users/{bob['id']}", headers=bearer(token)), 404, "Not Found")
    with app.app_context():
        assert db.one("SELECT is_admin FROM user WHERE id = %s", (alice["id"],))["is_admin"] == 0
        assert db.one("SELECT COUNT(*) AS n FROM user WHERE id = %s", (bob["id"],))["n"] == 1
        db.close_db()
