"""Email on accounts: given at registration or by PATCH, verified through a mailed link (real SMTP)."""
import pytest

from support import bearer, query
from mail_catcher import text_of, token_in, wait_for_message_to
from test_password_reset import deliver, forgot, mail_app, mail_client, run_sql, smtp  # noqa: F401 (fixtures)

PASSWORD = "a-long-enough-password"
pytestmark = pytest.mark.smtp
BAD_TOKEN = {"status_code": 422, "error": "Unprocessable Entity", "field": "token",
             "description": "This verification link is invalid or has expired. Ask for a new one."}


def register(client, username, email, path="/users", field="username"):
    response = client.post(path, json={field: username, "password": PASSWORD, "email": email})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def log_in(client, username, password=PASSWORD):
    response = client.post("/auth", json={"username": username, "password": password})
    assert response.status_code == 200
    return bearer(response.get_json()["access_token"])


def verification_token(app, smtp, address, count=1):
    deliver(app)
    message = wait_for_message_to(smtp, address, count)
    assert message["message"]["Subject"] == "Verify your email address"
    return token_in(message, "verify-email")


@pytest.mark.parametrize("path, field", [("/users", "username"), ("/signup", "username"),
                                         ("/register", "name"), ("/register", "username")])
def test_registration_takes_an_email_and_mails_a_verification_link(mail_client, mail_app, smtp, path, field):
    body = register(mail_client, "newbie", "New.Bie@Example.TEST", path, field)
    assert body["email"] == "New.Bie@example.test" and body["email_verified"] is False
    token = verification_token(mail_app, smtp, "New.Bie@example.test")
    response = mail_client.post("/email/verify", json={"token": token})
    assert response.status_code == 204 and response.data == b""
    me = mail_client.get(f"/users/{body['id']}", headers=log_in(mail_client, "newbie")).get_json()
    assert me["email"] == "New.Bie@example.test" and me["email_verified"] is True
    again = mail_client.post("/email/verify", json={"token": token})  # single use
    assert again.status_code == 422 and again.get_json() == BAD_TOKEN


def test_accounts_without_email_look_as_before(mail_client, make_user):
    make_user("plain")
    user = mail_client.get("/users", headers=log_in(mail_client, "plain", "correct-horse-battery")).get_json()
    assert set(user["users"][0]) == {"id", "username", "created"}


def test_only_the_owner_and_admins_see_the_address(mail_client, make_user):
    alice = register(mail_client, "alice", "alice@example.test")
    make_user("bob")
    make_user("root", admin=True)
    bob = log_in(mail_client, "bob", "correct-horse-battery")
    root = log_in(mail_client, "root", "correct-horse-battery")
    assert mail_client.get(f"/users/{alice['id']}", headers=bob).status_code == 404
    assert all("email" not in u for u in mail_client.get("/users", headers=bob).get_json()["users"])
    seen = mail_client.get(f"/users/{alice['id']}", headers=root).get_json()
    assert seen["email"] == "alice@example.test" and seen["email_verified"] is False
    listed = {u["username"]: u for u in mail_client.get("/users", headers=root).get_json()["users"]}
    assert listed["alice"]["email"] == "alice@example.test" and "email" not in listed["bob"]


@pytest.mark.parametrize("email", [
    "alice@example.test\r\nBcc: eve@evil.test", "alice@example.test\nX: y", "Alice <alice@example.test>",
    "alice@example.test, eve@evil.test", "alice@@example.test", "alice@localhost", "al ice@example.test",
    "\"alice\"@example.test", "alice@exa_mple.test", "a" * 65 + "@example.test",
    "alice@" + "a" * 250 + ".test", "",
])
def test_registration_refuses_malformed_and_injecting_addresses(mail_client, mail_app, email):
    response = mail_client.post("/users", json={"username": "newbie", "password": PASSWORD, "email": email})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "email"
    assert query(mail_app, "SELECT id FROM user") == []
    assert query(mail_app, "SELECT id FROM mail_outbox") == []


@pytest.mark.parametrize("email", [7, None, ["a@example.test"]])
def test_a_non_string_email_is_400(mail_client, email):
    response = mail_client.post("/users", json={"username": "newbie", "password": PASSWORD, "email": email})
    assert response.status_code == 400 and response.get_json()["field"] == "email"


def test_an_address_counts_once_verified_and_is_unique_without_case(mail_client, mail_app, smtp):
    first = register(mail_client, "first", "shared@example.test")
    register(mail_client, "second", "SHARED@example.test")  # pending: nobody can squat an address
    deliver(mail_app)
    token_first = token_in(wait_for_message_to(smtp, "shared@example.test"), "verify-email")
    token_second = token_in(wait_for_message_to(smtp, "SHARED@example.test"), "verify-email")
    assert mail_client.post("/email/verify", json={"token": token_second}).status_code == 204
    clash = mail_client.post("/email/verify", json={"token": token_first})
    assert clash.status_code == 409 and clash.get_json()["field"] == "email"
    me = mail_client.get(f"/users/{first['id']}", headers=log_in(mail_client, "first")).get_json()
    assert me["email_verified"] is False


def test_changing_the_address_verifies_the_new_and_tells_the_old(mail_client, mail_app, smtp):
    alice = register(mail_client, "alice", "alice@example.test")
    assert mail_client.post("/email/verify", json={
        "token": verification_token(mail_app, smtp, "alice@example.test")}).status_code == 204
    headers = log_in(mail_client, "alice")
    changed = mail_client.patch(f"/users/{alice['id']}", headers=headers, json={"email": "alice@new.test"})
    assert changed.status_code == 200
    assert changed.get_json()["email"] == "alice@new.test" and changed.get_json()["email_verified"] is False
    token = verification_token(mail_app, smtp, "alice@new.test")
    notice = wait_for_message_to(smtp, "alice@example.test", 2)
    assert notice["message"]["Subject"] == "The email address of your account was changed"
    assert "a***@new.test" in text_of(notice) and "#token=" not in text_of(notice)
    # Until the new address is verified, the old one still receives resets; the new one does not.
    forgot(mail_client, email="alice@new.test")
    forgot(mail_client, email="alice@example.test")
    deliver(mail_app)
    assert wait_for_message_to(smtp, "alice@example.test", 3)["message"]["Subject"] == "Reset your password"
    assert [m for m in smtp.messages if m["rcpt"] == ["alice@new.test"]][1:] == []
    assert mail_client.post("/email/verify", json={"token": token}).status_code == 204
    forgot(mail_client, email="alice@new.test")
    deliver(mail_app)
    assert wait_for_message_to(smtp, "alice@new.test", 2)["message"]["Subject"] == "Reset your password"
    kinds = [r["kind"] for r in query(mail_app, "SELECT kind FROM security_event WHERE user_id = %s"
                                                " AND kind LIKE 'email%%' ORDER BY id", (alice["id"],))]
    assert kinds == ["email_verified", "email_changed", "email_verified"]


def test_a_token_for_an_address_no_longer_pending_is_dead(mail_client, mail_app, smtp):
    alice = register(mail_client, "alice", "one@example.test")
    token = verification_token(mail_app, smtp, "one@example.test")
    headers = log_in(mail_client, "alice")
    assert mail_client.patch(f"/users/{alice['id']}", headers=headers,
                             json={"email": "two@example.test"}).status_code == 200
    response = mail_client.post("/email/verify", json={"token": token})
    assert response.status_code == 422 and response.get_json() == BAD_TOKEN


def test_resend_kills_the_older_link_and_expiry_kills_any(mail_client, mail_app, smtp):
    register(mail_client, "alice", "alice@example.test")
    older = verification_token(mail_app, smtp, "alice@example.test")
    headers = log_in(mail_client, "alice")
    resent = mail_client.post("/email/verify/resend", headers=headers)
    assert resent.status_code == 202
    newer = verification_token(mail_app, smtp, "alice@example.test", 2)
    assert mail_client.post("/email/verify", json={"token": older}).get_json() == BAD_TOKEN
    run_sql(mail_app, "UPDATE one_time_token SET expires_at = NOW() - INTERVAL 1 SECOND")
    assert mail_client.post("/email/verify", json={"token": newer}).get_json() == BAD_TOKEN


def test_resend_without_a_pending_address_is_422_and_needs_a_token(mail_client, make_user):
    make_user("plain")
    response = mail_client.post("/email/verify/resend", headers=log_in(mail_client, "plain", "correct-horse-battery"))
    assert response.status_code == 422 and response.get_json()["field"] == "email"
    assert mail_client.post("/email/verify/resend").status_code == 401


@pytest.mark.parametrize("body, status", [({}, 400), ({"token": 5}, 400), ({"token": "nope"}, 422),
                                          ({"token": "x", "extra": 1}, 400)])
def test_bad_verify_bodies(mail_client, body, status):
    assert mail_client.post("/email/verify", json=body).status_code == status


def test_account_email_off_refuses_the_field(make_app):
    client = make_app(ACCOUNT_EMAIL=False).test_client()
    response = client.post("/users", json={"username": "newbie", "password": PASSWORD, "email": "a@example.test"})
    assert response.status_code == 400 and response.get_json()["field"] == "email"


def stale(client, app, username, password=PASSWORD):
    """Access-token headers of `username` whose login is an hour old (a refresh keeps auth_time)."""
    tokens = client.post("/auth", json={"username": username, "password": password}).get_json()
    run_sql(app, "UPDATE session_auth SET auth_time = auth_time - 3600")
    refreshed = client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    return bearer(refreshed.get_json()["access_token"])


def test_changing_the_address_needs_a_recent_login(mail_client, mail_app, smtp):
    alice = register(mail_client, "alice", "alice@example.test")
    assert mail_client.post("/email/verify", json={
        "token": verification_token(mail_app, smtp, "alice@example.test")}).status_code == 204
    run_sql(mail_app, "DELETE FROM mail_outbox")
    old = stale(mail_client, mail_app, "alice")
    refused = mail_client.patch(f"/users/{alice['id']}", headers=old, json={"email": "eve@evil.test"})
    assert refused.status_code == 401 and refused.get_json()["reauth_required"] is True
    assert "POST /auth/reauth" in refused.get_json()["description"]
    # Nothing changed, nothing queued, nothing recorded.
    me = mail_client.get(f"/users/{alice['id']}", headers=old).get_json()
    assert me["email"] == "alice@example.test" and me["email_verified"] is True
    assert query(mail_app, "SELECT id FROM mail_outbox") == []
    assert query(mail_app, "SELECT id FROM security_event WHERE kind = 'email_changed'") == []
    # A username change alone is not a step-up operation.
    assert mail_client.patch(f"/users/{alice['id']}", headers=old, json={"username": "alice2"}).status_code == 200
    # Re-authenticated, the same token's session may change it.
    again = mail_client.post("/auth/reauth", headers=old, json={"password": PASSWORD})
    assert again.status_code == 200
    fresh = bearer(again.get_json()["access_token"])
    changed = mail_client.patch(f"/users/{alice['id']}", headers=fresh, json={"email": "alice@new.test"})
    assert changed.status_code == 200 and changed.get_json()["email"] == "alice@new.test"


def test_an_admin_changing_someone_s_address_needs_the_admin_s_recent_login(mail_client, mail_app, make_user):
    alice = register(mail_client, "alice", "alice@example.test")
    make_user("root", password=PASSWORD, admin=True)
    refused = mail_client.patch(f"/users/{alice['id']}", headers=stale(mail_client, mail_app, "root"),
                                json={"email": "other@example.test"})
    assert refused.status_code == 401 and refused.get_json()["reauth_required"] is True
    fresh = log_in(mail_client, "root")
    changed = mail_client.patch(f"/users/{alice['id']}", headers=fresh, json={"email": "other@example.test"})
    assert changed.status_code == 200 and changed.get_json()["email"] == "other@example.test"


def test_adding_a_first_address_needs_a_recent_login_too(mail_client, mail_app, make_user):
    user = make_user("plain", password=PASSWORD)
    refused = mail_client.patch(f"/users/{user['id']}", headers=stale(mail_client, mail_app, "plain"),
                                json={"email": "plain@example.test"})
    assert refused.status_code == 401 and refused.get_json()["reauth_required"] is True
    assert query(mail_app, "SELECT user_id FROM user_email") == []
