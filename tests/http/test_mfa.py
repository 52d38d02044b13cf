"""Second factors over HTTP: TOTP enrollment, logins with a second step, recovery codes, step-up.

Codes come from pyotp with the secret the enrollment answered. A step's code
is accepted once, so each test uses the step before now (enrollment), now,
and the step after: three codes, all inside the ±1 window.
"""
import base64
import json
import time

import pyotp
import pytest

from support import assert_error, bearer, clear_of_a_totp_step_edge, query

TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}
MFA_KEYS = {"status_code", "error", "description", "mfa_required", "mfa_token",
            "mfa_token_expires_in", "methods"}


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def code(secret, steps_from_now=0):
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


@pytest.fixture
def alice(make_user, login):
    user = make_user("alice")
    user["headers"] = bearer(login("alice", user["password"]))
    return user


def enable_totp(client, user):
    """Enroll and confirm TOTP with the previous step's code; return (secret, recovery codes)."""
    clear_of_a_totp_step_edge()
    started = client.post("/mfa/totp", headers=user["headers"])
    assert started.status_code == 200, started.get_json()
    secret = started.get_json()["secret"]
    confirmed = client.post("/mfa/totp/confirm", headers=user["headers"], json={"code": code(secret, -1)})
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["recovery_codes"]


def password_step(client, user):
    response = client.post("/auth", json={"username": user["username"], "password": user["password"]})
    assert response.status_code == 401, response.get_json()
    return response.get_json()


# --- enrollment ------------------------------------------------------------------------

def test_enrollment_answers_secret_uri_and_qr_and_confirm_answers_ten_codes(client, alice):
    started = client.post("/mfa/totp", headers=alice["headers"])
    body = started.get_json()
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    assert started.headers["Cache-Control"] == "no-store"
    assert pyotp.parse_uri(body["otpauth_uri"]).secret == body["secret"]
    assert body["qr_svg"].startswith("<svg")
    wrong = client.post("/mfa/totp/confirm", headers=alice["headers"], json={"code": "000000"})
    if code(body["secret"]) != "000000":
        assert_error(wrong, 422, field="code")
    confirmed = client.post("/mfa/totp/confirm", headers=alice["headers"],
                            json={"code": code(body["secret"])})
    codes = confirmed.get_json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    factors = client.get("/mfa", headers=alice["headers"]).get_json()
    assert factors == {"methods": ["totp", "recovery_code"], "totp": True, "passkeys": 0,
                       "recovery_codes_left": 10}


def test_a_second_enrollment_while_on_is_a_conflict(client, alice):
    enable_totp(client, alice)
    assert_error(client.post("/mfa/totp", headers=alice["headers"]), 409)


def test_nothing_secret_is_stored_in_clear(client, alice, app):
    secret, codes = enable_totp(client, alice)
    stored = json.dumps(query(app, "SELECT * FROM mfa_totp") + query(app, "SELECT * FROM mfa_recovery_code"),
                        default=str)
    assert secret not in stored and not any(c in stored or c.replace("-", "") in stored for c in codes)


def test_get_user_shows_which_factors_are_on_never_a_secret(client, alice):
    secret, codes = enable_totp(client, alice)
    response = client.get(f"/users/{alice['id']}", headers=alice["headers"])
    assert response.get_json()["mfa"] == {"totp": True, "passkeys": 0, "recovery_codes_left": 10}
    text = response.get_data(as_text=True)
    assert secret not in text and codes[0] not in text


# --- logging in -----------------------------------------------------------------------------

def test_an_account_without_factors_logs_in_as_before_with_amr_pwd(client, alice):
    response = client.post("/auth", json={"username": "alice", "password": alice["password"]})
    assert response.status_code == 200 and set(response.get_json()) == TOKEN_KEYS
    token = claims(response.get_json()["access_token"])
    assert token["amr"] == ["pwd"] and abs(token["auth_time"] - time.time()) < 5


def test_password_alone_answers_401_with_an_mfa_token(client, alice):
    enable_totp(client, alice)
    body = password_step(client, alice)
    assert set(body) == MFA_KEYS
    assert body["status_code"] == 401 and body["mfa_required"] is True
    assert body["methods"] == ["totp", "recovery_code"]
    assert len(body["mfa_token"]) >= 40 and body["mfa_token_expires_in"] == 300


def test_the_second_step_with_a_code_answers_the_token_body(client, alice):
    secret, _ = enable_totp(client, alice)
    token = password_step(client, alice)["mfa_token"]
    response = client.post("/auth/mfa", json={"mfa_token": token, "code": code(secret)})
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()) == TOKEN_KEYS
    assert claims(response.get_json()["access_token"])["amr"] == ["pwd", "otp"]
    again = client.post("/auth/mfa", json={"mfa_token": token, "code": code(secret, 1)})
    assert_error(again, 401, description="The mfa_token is invalid, used or expired: log in again.")


def test_login_form_asks_for_the_second_factor_too(client, alice):
    enable_totp(client, alice)
    response = client.post("/login", data={"username": "alice", "password": alice["password"]})
    assert response.status_code == 401 and response.get_json()["mfa_required"] is True


def test_one_step_login_with_otp(client, alice):
    secret, _ = enable_totp(client, alice)
    response = client.post("/auth", json={"username": "alice", "password": alice["password"],
                                          "otp": code(secret)})
    assert response.status_code == 200, response.get_json()
    assert claims(response.get_json()["access_token"])["amr"] == ["pwd", "otp"]
    replay = client.post("/auth", json={"username": "alice", "password": alice["password"],
                                        "otp": code(secret)})
    assert_error(replay, 401, description="Invalid second factor code")


def test_one_step_login_with_a_wrong_password_never_reaches_the_code(client, alice):
    secret, _ = enable_totp(client, alice)
    response = client.post("/auth", json={"username": "alice", "password": "wrong-password",
                                          "otp": code(secret)})
    assert_error(response, 401, "Bad Request", "Invalid credentials")
    assert client.post("/auth", json={"username": "alice", "password": alice["password"],
                                      "otp": code(secret)}).status_code == 200


def test_a_replayed_totp_code_is_refused_at_the_second_step(client, alice):
    secret, _ = enable_totp(client, alice)
    first = password_step(client, alice)["mfa_token"]
    assert client.post("/auth/mfa", json={"mfa_token": first, "code": code(secret)}).status_code == 200
    second = password_step(client, alice)["mfa_token"]
    replay = client.post("/auth/mfa", json={"mfa_token": second, "code": code(secret)})
    assert_error(replay, 401, description="Invalid second factor code")
    older = client.post("/auth/mfa", json={"mfa_token": second, "code": code(secret, -1)})
    assert_error(older, 401, description="Invalid second factor code")


def test_a_recovery_code_works_once(client, alice):
    _, codes = enable_totp(client, alice)
    token = password_step(client, alice)["mfa_token"]
    response = client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[3]})
    assert response.status_code == 200
    assert claims(response.get_json()["access_token"])["amr"] == ["pwd", "rc"]
    token = password_step(client, alice)["mfa_token"]
    reused = client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[3]})
    assert_error(reused, 401, description="Invalid second factor code")


def test_an_mfa_token_is_for_its_own_account_only(client, alice, make_user):
    secret, _ = enable_totp(client, alice)
    bob = make_user("bob", password="bobs-password-1234")
    bob["headers"] = bearer(client.post("/auth", json={"username": "bob", "password": bob["password"]})
                            .get_json()["access_token"])
    enable_totp(client, bob)
    bobs_token = password_step(client, bob)["mfa_token"]
    response = client.post("/auth/mfa", json={"mfa_token": bobs_token, "code": code(secret)})
    assert_error(response, 401, description="Invalid second factor code")


@pytest.mark.parametrize("body, field", [
    ({}, "mfa_token"),
    ({"mfa_token": 5, "code": "123456"}, "mfa_token"),
    ({"mfa_token": "x" * 43}, None),
    ({"mfa_token": "x" * 43, "code": "123456", "recovery_code": "abc"}, None),
    ({"mfa_token": "x" * 43, "code": 123456}, "code"),
    ({"mfa_token": "x" * 43, "password": "p"}, "password"),
])
def test_bad_second_step_bodies_are_400(client, body, field):
    assert_error(client.post("/auth/mfa", json=body), 400, field=field)


def test_an_unknown_mfa_token_is_401(client):
    response = client.post("/auth/mfa", json={"mfa_token": "x" * 43, "code": "123456"})
    assert_error(response, 401, description="The mfa_token is invalid, used or expired: log in again.")


def test_five_wrong_codes_kill_the_mfa_token(client, alice):
    secret, _ = enable_totp(client, alice)
    token = password_step(client, alice)["mfa_token"]
    wrong = f"{(int(code(secret)) + 500000) % 1000000:06d}"
    for _ in range(5):
        assert_error(client.post("/auth/mfa", json={"mfa_token": token, "code": wrong}), 401,
                     description="Invalid second factor code")
    right = client.post("/auth/mfa", json={"mfa_token": token, "code": code(secret)})
    assert_error(right, 401, description="The mfa_token is invalid, used or expired: log in again.")


def test_brute_force_of_the_second_step_meets_a_growing_delay(make_app, make_user):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_FREE_FAILURES=3, RATELIMIT_LOGIN="1000/minute",
                   RATELIMIT_LOGIN_PER_USER="1000/minute")
    client = app.test_client()
    user = make_user("carol")
    user["headers"] = bearer(client.post("/auth", json={"username": "carol", "password": user["password"]})
                             .get_json()["access_token"])
    secret, _ = enable_totp(client, user)
    wrong = f"{(int(code(secret)) + 500000) % 1000000:06d}"
    statuses = []
    for _ in range(3):  # new mfa_tokens (the password is right) do not reset the account's count
        token = password_step(client, user)["mfa_token"]
        statuses.append(client.post("/auth/mfa", json={"mfa_token": token, "code": wrong}).status_code)
    token = password_step(client, user)["mfa_token"]
    throttled = client.post("/auth/mfa", json={"mfa_token": token, "code": code(secret)})
    assert statuses == [401, 401, 401]
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1


# --- refresh, step-up, re-authentication ---------------------------------------------------------

def _age_session(app, seconds):
    """Make every session's authentication `seconds` older (as if the login happened then)."""
    with app.app_context():
        import db
        db.execute("UPDATE session_auth SET auth_time = auth_time - %s", (seconds,))
        db.close_db()


def test_refresh_keeps_amr_and_auth_time_and_cannot_upgrade_them(client, alice, app):
    tokens = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    first = claims(tokens["access_token"])
    enable_totp(client, alice)  # a factor turned on later does not upgrade an existing session
    refreshed = client.post("/refresh", json={"refresh_token": tokens["refresh_token"]}).get_json()
    second = claims(refreshed["access_token"])
    assert second["amr"] == ["pwd"] and second["auth_time"] == first["auth_time"]
    _age_session(app, 3600)
    third = claims(client.post("/refresh", json={"refresh_token": refreshed["refresh_token"]})
                   .get_json()["access_token"])
    assert third["auth_time"] == first["auth_time"] - 3600


def _fresh_tokens(client, user, secret, steps=0):
    response = client.post("/auth", json={"username": user["username"], "password": user["password"],
                                          "otp": code(secret, steps)})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _assert_reauth_required(response):
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["reauth_required"] is True and body["error"] == "Re-authentication Required"
    assert "Re-authenticate" in body["description"]


def test_sensitive_operations_need_a_recent_login_and_reauth_gives_one(client, alice, app):
    secret, _ = enable_totp(client, alice)
    tokens = _fresh_tokens(client, alice, secret)
    _age_session(app, 601)
    old = bearer(client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
                 .get_json()["access_token"])
    _assert_reauth_required(client.post("/mfa/recovery-codes", headers=old))
    _assert_reauth_required(client.delete("/mfa/totp", headers=old,
                                          json={"password": alice["password"], "code": code(secret, 1)}))
    _assert_reauth_required(client.patch(f"/users/{alice['id']}", headers=old, json={
        "password": "a-new-password-123", "current_password": alice["password"]}))
    wrong = client.post("/auth/reauth", headers=old, json={"password": "not-it"})
    assert_error(wrong, 401, description="Invalid credentials")
    reauth = client.post("/auth/reauth", headers=old, json={"password": alice["password"]})
    assert reauth.status_code == 200, reauth.get_json()
    body = reauth.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "amr", "auth_time"}
    assert abs(body["auth_time"] - time.time()) < 5 and body["amr"] == ["pwd", "otp"]
    fresh = bearer(body["access_token"])
    assert claims(body["access_token"])["fam"] == claims(old["Authorization"].split()[1])["fam"]
    regenerated = client.post("/mfa/recovery-codes", headers=fresh)
    assert regenerated.status_code == 200 and len(regenerated.get_json()["recovery_codes"]) == 10
    # The old token is still too old: re-authenticating elsewhere does not freshen it.
    _assert_reauth_required(client.post("/mfa/recovery-codes", headers=old))


def test_reauth_with_a_code(client, alice, app):
    secret, _ = enable_totp(client, alice)
    headers = bearer(_fresh_tokens(client, alice, secret)["access_token"])
    _age_session(app, 601)
    response = client.post("/auth/reauth", headers=headers, json={"code": code(secret, 1)})
    assert response.status_code == 200 and response.get_json()["amr"] == ["pwd", "otp"]


def test_regenerating_recovery_codes_kills_the_old_ones(client, alice):
    secret, old_codes = enable_totp(client, alice)
    headers = bearer(_fresh_tokens(client, alice, secret)["access_token"])
    new_codes = client.post("/mfa/recovery-codes", headers=headers).get_json()["recovery_codes"]
    token = password_step(client, alice)["mfa_token"]
    assert_error(client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": old_codes[0]}),
                 401, description="Invalid second factor code")
    assert client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": new_codes[0]}).status_code == 200


def test_recovery_codes_without_a_factor_are_a_conflict(client, alice):
    assert_error(client.post("/mfa/recovery-codes", headers=alice["headers"]), 409)


def test_turning_totp_off_needs_the_password_and_a_code(client, alice, app):
    secret, _ = enable_totp(client, alice)
    headers = bearer(_fresh_tokens(client, alice, secret)["access_token"])
    assert_error(client.delete("/mfa/totp", headers=headers, json={"password": "wrong", "code": code(secret, 1)}),
                 403, field="password")
    assert_error(client.delete("/mfa/totp", headers=headers, json={"password": alice["password"]}), 400,
                 field="code")
    wrong = f"{(int(code(secret, 1)) + 500000) % 1000000:06d}"
    assert_error(client.delete("/mfa/totp", headers=headers, json={"password": alice["password"], "code": wrong}),
                 401, description="Invalid second factor code")
    off = client.delete("/mfa/totp", headers=headers, json={"password": alice["password"], "code": code(secret, 1)})
    assert off.status_code == 204
    assert query(app, "SELECT COUNT(*) AS n FROM mfa_recovery_code")[0]["n"] == 0
    back = client.post("/auth", json={"username": "alice", "password": alice["password"]})
    assert back.status_code == 200 and claims(back.get_json()["access_token"])["amr"] == ["pwd"]


def test_the_second_step_wears_the_per_ip_login_limit(make_app):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2/minute").test_client()
    statuses = [client.post("/auth/mfa", json={"mfa_token": "x" * 43, "code": "123456"}).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_a_token_from_before_amr_must_reauthenticate(app, client, alice):
    from accounts import tokens, users
    with app.app_context():
        user = users.to_log_in(alice["id"])
        old = tokens.issue(user, tokens.ACCESS, 300)  # no fam, amr or auth_time: an older token
    _assert_reauth_required(client.patch(f"/users/{alice['id']}", headers=bearer(old), json={
        "password": "a-new-password-123", "current_password": alice["password"]}))


def test_reauth_never_outlives_the_token_it_replaces(client, alice):
    body = client.post("/auth/reauth", headers=alice["headers"], json={"password": alice["password"]}).get_json()
    old = claims(alice["headers"]["Authorization"].split()[1])
    assert claims(body["access_token"])["exp"] <= old["exp"]
    assert claims(body["access_token"])["amr"] == ["pwd"]
