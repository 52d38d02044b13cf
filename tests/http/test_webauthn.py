"""Passkeys through the Flask test client, with Chromium's virtual authenticator as the authenticator.

The browser sits on an empty page at http://localhost:<port> (the origin
PUBLIC_URL names); options come from the service, the browser's toJSON()
goes back to it. The attacks: a used challenge, another user's credential, a
challenge of another purpose, a wrong origin, a wrong RP ID, a cloned
authenticator whose counter went back, and a passkey deleted with an old login.
"""
import base64
import json

import pytest

from support import assert_error, bearer, query, require_tool
from virtual_authenticator import CHROMIUM, CHROMIUM_ARGS, BlankOrigin, VirtualAuthenticator

pytestmark = [pytest.mark.browser]


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def browser():
    require_tool(CHROMIUM, "passkey tests with Chromium's virtual authenticator")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def origin():
    blank = BlankOrigin()
    yield blank.origin
    blank.close()


@pytest.fixture
def authenticator(browser, origin):
    context = browser.new_context()
    page = context.new_page()
    page.goto(origin + "/")
    yield VirtualAuthenticator(page)
    context.close()


@pytest.fixture
def app(make_app, origin):
    return make_app(PUBLIC_URL=origin)


@pytest.fixture
def user(make_user, client):
    def make(name):
        made = make_user(name, password=f"{name}-password-123")
        token = client.post("/auth", json={"username": name, "password": made["password"]}).get_json()
        made["headers"] = bearer(token["access_token"])
        made["refresh_token"] = token["refresh_token"]
        return made
    return make


def register(client, authenticator, someone, name=None):
    options = client.post("/webauthn/register/options", headers=someone["headers"]).get_json()
    credential = authenticator.create(options)
    body = dict(credential, **({"name": name} if name else {}))
    response = client.post("/webauthn/register/verify", headers=someone["headers"], json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def passkey_login(client, authenticator):
    options = client.post("/webauthn/login/options").get_json()
    return authenticator.get(options)


def test_registration_options_are_webauthn_json_for_this_rp(client, user, origin):
    alice = user("alice")
    options = client.post("/webauthn/register/options", headers=alice["headers"]).get_json()
    assert options["rp"] == {"id": "localhost", "name": "JWT API"}
    assert options["user"]["name"] == "alice"
    assert base64.urlsafe_b64decode(options["user"]["id"] + "==") == str(alice["id"]).encode()
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) == 32


def test_register_list_rename_and_log_in_with_a_passkey(client, user, authenticator, app):
    alice = user("alice")
    created = register(client, authenticator, alice, name="Laptop")
    assert created["name"] == "Laptop" and len(created["recovery_codes"]) == 10
    listed = client.get("/webauthn/credentials", headers=alice["headers"]).get_json()["credentials"]
    assert [c["name"] for c in listed] == ["Laptop"] and set(listed[0]) == {"id", "name", "created", "last_used"}
    renamed = client.patch(f"/webauthn/credentials/{created['id']}", headers=alice["headers"], json={"name": "Work"})
    assert renamed.get_json()["name"] == "Work"
    response = client.post("/webauthn/login/verify", json=passkey_login(client, authenticator))
    assert response.status_code == 200, response.get_json()
    token = claims(response.get_json()["access_token"])
    assert token["amr"] == ["hwk"] and token["sub"] == str(alice["id"])
    who = client.get("/rest-auth", headers=bearer(response.get_json()["access_token"]))
    assert who.get_json()["user"]["username"] == "alice"
    stored = query(app, "SELECT sign_count, last_used FROM webauthn_credential")[0]
    assert stored["sign_count"] >= 1 and stored["last_used"] is not None


def test_a_passkey_as_second_factor(client, user, authenticator):
    alice = user("alice")
    register(client, authenticator, alice)
    step = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    assert step["mfa_required"] is True and step["methods"] == ["webauthn", "recovery_code"]
    options = client.post("/webauthn/mfa/options", json={"mfa_token": step["mfa_token"]}).get_json()
    assert len(options["allowCredentials"]) == 1
    response = client.post("/auth/mfa", json={"mfa_token": step["mfa_token"],
                                              "credential": authenticator.get(options)})
    assert response.status_code == 200, response.get_json()
    assert claims(response.get_json()["access_token"])["amr"] == ["pwd", "hwk"]


def test_a_challenge_is_single_use(client, user, authenticator):
    alice = user("alice")
    register(client, authenticator, alice)
    assertion = passkey_login(client, authenticator)
    assert client.post("/webauthn/login/verify", json=assertion).status_code == 200
    replay = client.post("/webauthn/login/verify", json=assertion)
    assert_error(replay, 401, description="The challenge is unknown, used or expired: ask for new options.")


def test_an_expired_challenge_is_refused(client, user, authenticator, app):
    alice = user("alice")
    register(client, authenticator, alice)
    assertion = passkey_login(client, authenticator)
    with app.app_context():
        import db
        db.execute("UPDATE webauthn_challenge SET expires_at = NOW() - INTERVAL 1 SECOND")
        db.close_db()
    assert_error(client.post("/webauthn/login/verify", json=assertion), 401)


def test_an_assertion_for_another_user_is_refused(client, user, authenticator):
    alice, bob = user("alice"), user("bob")
    register(client, authenticator, alice)
    register(client, authenticator, bob)
    bobs_step = client.post("/auth", json={"username": "bob", "password": bob["password"]}).get_json()
    options = client.post("/webauthn/mfa/options", json={"mfa_token": bobs_step["mfa_token"]}).get_json()
    # Point bob's options at alice's passkey (the browser holds both).
    alice_key = [c for c in authenticator.credentials() if c["userHandle"] == base64.b64encode(
        str(alice["id"]).encode()).decode()][0]
    options["allowCredentials"] = [{"type": "public-key", "id": alice_key["credentialId"]
                                    .replace("+", "-").replace("/", "_").rstrip("=")}]
    assertion = authenticator.get(options)
    response = client.post("/auth/mfa", json={"mfa_token": bobs_step["mfa_token"], "credential": assertion})
    assert_error(response, 401, description="The passkey could not be verified.")


def test_a_login_challenge_is_not_a_second_step_challenge(client, user, authenticator):
    alice = user("alice")
    register(client, authenticator, alice)
    step = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    assertion = passkey_login(client, authenticator)  # a challenge issued for a passkey login
    response = client.post("/auth/mfa", json={"mfa_token": step["mfa_token"], "credential": assertion})
    assert_error(response, 401)


def _with_client_data(assertion, **changes):
    data = json.loads(base64.urlsafe_b64decode(assertion["response"]["clientDataJSON"] + "=="))
    data.update(changes)
    forged = dict(assertion)
    forged["response"] = dict(assertion["response"], clientDataJSON=base64.urlsafe_b64encode(
        json.dumps(data).encode()).decode().rstrip("="))
    return forged


def _refusal_logged(caplog, words):
    return any(words in r.getMessage() for r in caplog.records if r.name == "accounts.passkeys")


def test_a_wrong_origin_is_refused(client, user, authenticator, caplog):
    alice = user("alice")
    register(client, authenticator, alice)
    assertion = _with_client_data(passkey_login(client, authenticator), origin="http://evil.example")
    with caplog.at_level("INFO", logger="accounts.passkeys"):
        assert_error(client.post("/webauthn/login/verify", json=assertion), 401,
                     description="The passkey could not be verified.")
    assert _refusal_logged(caplog, "Unexpected client data origin")


def test_a_wrong_rp_id_is_refused(client, user, authenticator, make_app, origin, caplog):
    alice = user("alice")
    register(client, authenticator, alice)
    # The same database, a service that believes it is another site; the client data
    # is made to name that site, so only the authenticator's RP ID hash tells.
    other_origin = origin.replace("localhost", "127.0.0.1")
    other = make_app(PUBLIC_URL=other_origin).test_client()
    assertion = _with_client_data(passkey_login(client, authenticator), origin=other_origin)
    with caplog.at_level("INFO", logger="accounts.passkeys"):
        assert_error(other.post("/webauthn/login/verify", json=assertion), 401)
    assert _refusal_logged(caplog, "Unexpected RP ID hash")


def test_a_cloned_authenticator_whose_counter_went_back_is_refused(client, user, authenticator, caplog):
    alice = user("alice")
    register(client, authenticator, alice)
    snapshot = authenticator.credentials()[0]  # the key and its counter now
    assert client.post("/webauthn/login/verify", json=passkey_login(client, authenticator)).status_code == 200
    authenticator.remove(snapshot["credentialId"])
    authenticator.add(snapshot)  # the clone: same key, the older counter
    with caplog.at_level("INFO", logger="accounts.passkeys"):
        response = client.post("/webauthn/login/verify", json=passkey_login(client, authenticator))
    assert_error(response, 401, description="The passkey could not be verified.")
    assert _refusal_logged(caplog, "sign count")


def test_deleting_a_passkey_needs_a_recent_login(client, user, authenticator, app):
    alice = user("alice")
    created = register(client, authenticator, alice)
    with app.app_context():
        import db
        db.execute("UPDATE session_auth SET auth_time = auth_time - 3600")
        db.close_db()
    stale = client.post("/refresh", json={"refresh_token": alice["refresh_token"]}).get_json()
    tokens = client.post("/webauthn/login/verify", json=passkey_login(client, authenticator)).get_json()
    fresh = bearer(tokens["access_token"])
    old = client.delete(f"/webauthn/credentials/{created['id']}", headers=bearer(stale["access_token"]))
    assert old.status_code == 401 and old.get_json()["reauth_required"] is True
    assert client.delete(f"/webauthn/credentials/{created['id']}", headers=fresh).status_code == 204
    assert client.get("/webauthn/credentials", headers=fresh).get_json() == {"credentials": []}
    assert query(app, "SELECT COUNT(*) AS n FROM mfa_recovery_code")[0]["n"] == 0


def test_reauth_with_a_passkey(client, user, authenticator):
    alice = user("alice")
    register(client, authenticator, alice)
    options = client.post("/webauthn/reauth/options", headers=alice["headers"]).get_json()
    response = client.post("/auth/reauth", headers=alice["headers"],
                           json={"credential": authenticator.get(options)})
    assert response.status_code == 200 and response.get_json()["amr"] == ["pwd", "hwk"]


def test_another_users_passkey_cannot_be_renamed_or_deleted(client, user, authenticator):
    alice, bob = user("alice"), user("bob")
    created = register(client, authenticator, alice)
    assert_error(client.patch(f"/webauthn/credentials/{created['id']}", headers=bob["headers"],
                              json={"name": "mine"}), 404)
    assert_error(client.delete(f"/webauthn/credentials/{created['id']}", headers=bob["headers"]), 404)


@pytest.mark.parametrize("body", [{}, {"id": "x"}, {"id": "x", "rawId": "x", "response": {}, "type": "public-key"}])
def test_malformed_credentials_are_refused_cleanly(client, user, body):
    alice = user("alice")
    client.post("/webauthn/register/options", headers=alice["headers"])
    response = client.post("/webauthn/register/verify", headers=alice["headers"], json=body)
    assert response.status_code in (400, 422), response.get_json()
    assert_error(client.post("/webauthn/login/verify", json=body), 401 if body else 400)


def test_a_passkey_login_requires_user_verification(client, user, authenticator, caplog):
    alice = user("alice")
    register(client, authenticator, alice)
    authenticator.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator.id, "isUserVerified": False})
    options = client.post("/webauthn/login/options").get_json()
    assert options["userVerification"] == "required"
    options["userVerification"] = "discouraged"  # a client that asks the authenticator for less
    with caplog.at_level("INFO", logger="accounts.passkeys"):
        response = client.post("/webauthn/login/verify", json=authenticator.get(options))
    assert_error(response, 401, description="The passkey could not be verified.")
    assert _refusal_logged(caplog, "User verification is required")


def test_an_assertion_whose_user_handle_names_someone_else_is_refused(client, user, authenticator):
    alice, bob = user("alice"), user("bob")
    register(client, authenticator, alice)
    assertion = passkey_login(client, authenticator)
    forged = dict(assertion, response=dict(assertion["response"], userHandle=base64.urlsafe_b64encode(
        str(bob["id"]).encode()).decode().rstrip("=")))  # the handle is not signed: a client can change it
    assert_error(client.post("/webauthn/login/verify", json=forged), 401,
                 description="The passkey could not be verified.")


def test_passkey_events_added_used_refused_and_removed(client, user, authenticator, app):
    """Security events for a passkey's life: added, logins with it (alone and as second step), removed."""
    alice, bob = user("alice"), user("bob")
    created = register(client, authenticator, alice)
    register(client, authenticator, bob)
    assert client.post("/webauthn/login/verify", json=passkey_login(client, authenticator)).status_code == 200
    step = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    options = client.post("/webauthn/mfa/options", json={"mfa_token": step["mfa_token"]}).get_json()
    second = client.post("/auth/mfa", json={"mfa_token": step["mfa_token"], "credential": authenticator.get(options)})
    assert second.status_code == 200
    # bob's second step with a stale assertion (its challenge already spent): refused, recorded.
    bobs = client.post("/auth", json={"username": "bob", "password": bob["password"]}).get_json()
    spent = authenticator.get(client.post("/webauthn/mfa/options", json={"mfa_token": bobs["mfa_token"]}).get_json())
    assert client.post("/auth/mfa", json={"mfa_token": bobs["mfa_token"], "credential": spent}).status_code == 200
    bobs = client.post("/auth", json={"username": "bob", "password": bob["password"]}).get_json()
    assert client.post("/auth/mfa", json={"mfa_token": bobs["mfa_token"], "credential": spent}).status_code == 401
    mine = bearer(second.get_json()["access_token"])  # alice's, fresh: no re-authentication needed
    assert client.delete(f"/webauthn/credentials/{created['id']}", headers=mine).status_code == 204

    def kinds(someone):
        return [(r["kind"], r["detail"]) for r in query(
            app, "SELECT kind, detail FROM security_event WHERE user_id = %s ORDER BY id", (someone["id"],))
            if r["kind"] != "login_failed" and not (r["kind"] == "login_succeeded" and r["detail"] is None)]
    assert kinds(alice)[0] == ("passkey_added", None) and kinds(alice)[-1] == ("passkey_removed", None)
    assert ("mfa_login_succeeded", "webauthn") in kinds(alice)
    assert ("login_succeeded", "passkey") in kinds(alice) + kinds(bob)
    assert kinds(bob)[:1] == [("passkey_added", None)]
    assert ("mfa_login_failed", "bad_passkey") in kinds(bob)
