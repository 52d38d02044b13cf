"""Second factors leave security events, and the ones that matter reach the user by mail (real SMTP).

Every factor change (TOTP on/off, new recovery codes, a recovery code used,
an operator's mfa-reset) is one security event with the request's address,
user agent and request id, and never a code or a secret. A recovery code
used, or a factor turned off, is mailed through the outbox to a verified
address. Passkey events are tested beside the passkeys (tests/http/test_webauthn.py).
"""
import time

import pyotp
import pytest

from mail_catcher import html_of, text_of, wait_for_message_to
from support import bearer, clear_of_a_totp_step_edge, query
from test_password_reset import deliver, give_email, mail_app, mail_client, smtp  # noqa: F401 (fixtures)

pytestmark = pytest.mark.smtp
UA = {"User-Agent": "factor-events/1.0", "X-Request-ID": "req-factor-0001"}
PASSWORD = "correct-horse-battery"


def code(secret, steps_from_now=0):
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


def events_of(app, user_id):
    rows = query(app, "SELECT kind, detail, ip, user_agent, request_id FROM security_event"
                      " WHERE user_id = %s ORDER BY id", (user_id,))
    return [r for r in rows if not r["kind"].startswith("login_")]


def kinds(app, user_id):
    return [(r["kind"], r["detail"]) for r in events_of(app, user_id)]


def log_in(client, username="alice", password=PASSWORD):
    response = client.post("/auth", json={"username": username, "password": password}, headers=UA)
    assert response.status_code == 200, response.get_json()
    return dict(bearer(response.get_json()["access_token"]), **UA)


def enable_totp(client, headers):
    clear_of_a_totp_step_edge()
    secret = client.post("/mfa/totp", headers=headers).get_json()["secret"]
    confirmed = client.post("/mfa/totp/confirm", headers=headers, json={"code": code(secret, -1)})
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["recovery_codes"]


def password_step(client, username="alice", password=PASSWORD):
    response = client.post("/auth", json={"username": username, "password": password}, headers=UA)
    assert response.status_code == 401 and response.get_json()["mfa_required"] is True
    return response.get_json()["mfa_token"]


@pytest.fixture
def alice(mail_app, make_user):
    user = make_user("alice")
    give_email(mail_app, user["id"], "alice@example.test")
    return user


def test_the_factor_lifecycle_is_recorded_with_the_request_s_origin(mail_client, mail_app, alice):
    headers = log_in(mail_client)
    secret, codes = enable_totp(mail_client, headers)
    assert mail_client.post("/mfa/recovery-codes", headers=headers).status_code == 200
    assert mail_client.delete("/mfa/totp", headers=headers,
                              json={"password": PASSWORD, "code": code(secret)}).status_code == 204
    rows = events_of(mail_app, alice["id"])
    assert [(r["kind"], r["detail"]) for r in rows] == [
        ("totp_enabled", None), ("recovery_codes_regenerated", None), ("totp_disabled", None)]
    assert all(r["ip"] == "127.0.0.1" and r["user_agent"] == "factor-events/1.0"
               and r["request_id"] == "req-factor-0001" for r in rows)
    dump = repr(query(mail_app, "SELECT * FROM security_event"))
    assert secret not in dump and not any(c in dump for c in codes) and PASSWORD not in dump
    # Through the API too, for the owner.
    listed = mail_client.get(f"/users/{alice['id']}/events", headers=headers).get_json()["events"]
    assert [e["kind"] for e in listed if not e["kind"].startswith("login_")] == [
        "totp_disabled", "recovery_codes_regenerated", "totp_enabled"]


def test_a_wrong_first_code_records_nothing_and_enables_nothing(mail_client, mail_app, alice):
    headers = log_in(mail_client)
    secret = mail_client.post("/mfa/totp", headers=headers).get_json()["secret"]
    wrong = f"{(int(code(secret)) + 500000) % 1000000:06d}"
    assert mail_client.post("/mfa/totp/confirm", headers=headers, json={"code": wrong}).status_code == 422
    assert kinds(mail_app, alice["id"]) == []
    assert query(mail_app, "SELECT COUNT(*) AS n FROM mfa_recovery_code")[0]["n"] == 0


def test_second_steps_are_recorded_with_their_method_or_reason_class(mail_client, mail_app, alice):
    headers = log_in(mail_client)
    secret, codes = enable_totp(mail_client, headers)
    token = password_step(mail_client)
    wrong = f"{(int(code(secret)) + 500000) % 1000000:06d}"
    assert mail_client.post("/auth/mfa", json={"mfa_token": token, "code": wrong}, headers=UA).status_code == 401
    assert mail_client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": "aaaaa-bbbbb-ccccc-ddddd-eeeeee"},
                            headers=UA).status_code == 401
    assert mail_client.post("/auth/mfa", json={"mfa_token": token, "code": code(secret)},
                            headers=UA).status_code == 200
    # One step (POST /auth with otp): a replayed code fails, the next one works.
    one_step = {"username": "alice", "password": PASSWORD}
    assert mail_client.post("/auth", json=dict(one_step, otp=code(secret)), headers=UA).status_code == 401
    assert mail_client.post("/auth", json=dict(one_step, otp=code(secret, 1)), headers=UA).status_code == 200
    steps = [(k, d) for k, d in kinds(mail_app, alice["id"]) if k.startswith("mfa_login")]
    assert steps == [("mfa_login_failed", "bad_code"), ("mfa_login_failed", "bad_recovery_code"),
                     ("mfa_login_succeeded", "totp"), ("mfa_login_failed", "bad_code"),
                     ("mfa_login_succeeded", "totp")]
    dump = repr(query(mail_app, "SELECT * FROM security_event"))
    assert wrong not in dump and "aaaaa" not in dump


def test_rejected_mfa_tokens_are_recorded_with_why(mail_client, mail_app, alice):
    enable_totp(mail_client, log_in(mail_client))
    token = password_step(mail_client)
    recovery = {"recovery_code": "aaaaa-bbbbb-ccccc-ddddd-eeeeee"}
    for _ in range(5):  # the token's five attempts
        assert mail_client.post("/auth/mfa", json=dict(recovery, mfa_token=token)).status_code == 401
    assert mail_client.post("/auth/mfa", json=dict(recovery, mfa_token=token)).status_code == 401
    assert mail_client.post("/auth/mfa", json=dict(recovery, mfa_token="x" * 43)).status_code == 401
    assert mail_client.post("/auth/mfa", json=dict(recovery, mfa_token="short")).status_code == 401
    rejected = query(mail_app, "SELECT user_id, detail FROM security_event WHERE kind = 'mfa_token_rejected'"
                               " ORDER BY id")
    assert [(r["user_id"], r["detail"]) for r in rejected] == [
        (alice["id"], "too_many_attempts"), (None, "unknown"), (None, "malformed")]
    expired = password_step(mail_client)
    from test_password_reset import run_sql
    run_sql(mail_app, "UPDATE mfa_challenge SET expires_at = NOW() - INTERVAL 1 SECOND")
    assert mail_client.post("/auth/mfa", json=dict(recovery, mfa_token=expired)).status_code == 401
    last = query(mail_app, "SELECT user_id, detail FROM security_event ORDER BY id DESC LIMIT 1")[0]
    assert (last["user_id"], last["detail"]) == (alice["id"], "expired")


def test_a_recovery_code_use_is_recorded_and_mailed_with_what_is_left(mail_client, mail_app, smtp, alice):
    _, codes = enable_totp(mail_client, log_in(mail_client))
    token = password_step(mail_client)
    response = mail_client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[3]}, headers=UA)
    assert response.status_code == 200
    assert ("recovery_code_used", "9 left") in kinds(mail_app, alice["id"])
    assert ("mfa_login_succeeded", "recovery_code") in kinds(mail_app, alice["id"])
    assert deliver(mail_app) == 1
    message = wait_for_message_to(smtp, "alice@example.test")
    assert message["message"]["Subject"] == "A recovery code of your account was used"
    assert "9 unused codes are left." in text_of(message) and "9 unused codes are left." in html_of(message)
    assert "Hello alice," in text_of(message)
    assert all(c not in text_of(message) and c not in html_of(message) for c in codes)
    assert "/reset-password" in text_of(message)
    # The same code again: refused, no second event, no second mail.
    token = password_step(mail_client)
    assert mail_client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[3]}).status_code == 401
    assert [k for k, _ in kinds(mail_app, alice["id"])].count("recovery_code_used") == 1
    assert query(mail_app, "SELECT COUNT(*) AS n FROM mail_outbox")[0]["n"] == 1


def test_the_code_s_consumption_and_its_mail_are_one_transaction(mail_client, mail_app, alice):
    """Each use has exactly one outbox row, written with it (no use without mail, no mail without use)."""
    _, codes = enable_totp(mail_client, log_in(mail_client))
    for recovery in codes[:3]:
        token = password_step(mail_client)
        assert mail_client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": recovery}).status_code == 200
    used = query(mail_app, "SELECT COUNT(*) AS n FROM mfa_recovery_code WHERE used_at IS NOT NULL")[0]["n"]
    rows = query(mail_app, "SELECT kind, payload FROM mail_outbox ORDER BY id")
    assert used == 3 and [r["kind"] for r in rows] == ["recovery_code_used"] * 3
    assert ['"left":9', '"left":8', '"left":7'] == [r["payload"].split(",")[-1].rstrip("}") for r in rows]
    assert not any(c in r["payload"] for r in rows for c in codes)


def test_no_verified_address_no_mail_but_still_the_event(mail_client, mail_app, make_user):
    bob = make_user("bob")
    give_email(mail_app, bob["id"], "bob@example.test", verified=False)
    _, codes = enable_totp(mail_client, log_in(mail_client, "bob"))
    token = password_step(mail_client, "bob")
    assert mail_client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[0]}).status_code == 200
    assert ("recovery_code_used", "9 left") in kinds(mail_app, bob["id"])
    assert query(mail_app, "SELECT kind FROM mail_outbox WHERE kind <> 'verify_email'") == []


def test_turning_the_app_off_is_mailed(mail_client, mail_app, smtp, alice):
    headers = log_in(mail_client)
    secret, _ = enable_totp(mail_client, headers)
    assert mail_client.delete("/mfa/totp", headers=headers,
                              json={"password": PASSWORD, "code": code(secret)}).status_code == 204
    deliver(mail_app)
    message = wait_for_message_to(smtp, "alice@example.test")
    assert message["message"]["Subject"] == "A second factor of your account was turned off"
    text = text_of(message)
    assert "The authenticator app of your account was just turned off." in text
    assert "Your account now logs in with its password alone." in text and secret not in text


def test_an_operator_s_mfa_reset_is_recorded_and_mailed(mail_client, mail_app, smtp, alice):
    secret, codes = enable_totp(mail_client, log_in(mail_client))
    result = mail_app.test_cli_runner().invoke(args=["mfa-reset", "alice", "--yes"])
    assert result.exit_code == 0, result.output
    rows = events_of(mail_app, alice["id"])
    assert [(r["kind"], r["detail"]) for r in rows][-1] == ("mfa_reset", "operator")
    assert (rows[-1]["ip"], rows[-1]["user_agent"], rows[-1]["request_id"]) == (None, None, None)  # the CLI
    deliver(mail_app)
    message = wait_for_message_to(smtp, "alice@example.test")
    assert message["message"]["Subject"] == "A second factor of your account was turned off"
    assert "An operator just removed every second factor of your account" in " ".join(text_of(message).split())
    assert secret not in text_of(message) and not any(c in text_of(message) for c in codes)


def test_account_email_off_records_but_queues_nothing(make_app, make_user):
    app = make_app(ACCOUNT_EMAIL=False)
    client = app.test_client()
    user = make_user("alice")
    give_email(app, user["id"], "alice@example.test")  # left from when it was on
    _, codes = enable_totp(client, log_in(client))
    token = password_step(client)
    assert client.post("/auth/mfa", json={"mfa_token": token, "recovery_code": codes[0]}).status_code == 200
    assert ("recovery_code_used", "9 left") in kinds(app, user["id"])
    assert query(app, "SELECT id FROM mail_outbox") == []


@pytest.mark.parametrize("reason, words", [
    ("totp_disabled", "The authenticator app of your account was just turned off."),
    ("passkey_removed", "A passkey was just removed from your account."),
    ("mfa_reset", "An operator just removed every second factor of your account"),
])
@pytest.mark.parametrize("left", [True, False])
def test_each_factor_removed_mail_says_what_and_what_is_left(mail_app, reason, words, left):
    from accounts import mail_sender
    with mail_app.app_context():
        message = mail_sender.factor_removed({"to": "alice@example.test", "username": "alice",
                                              "reason": reason, "left": left})
    for part in (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()):
        flat = " ".join(part.split())
        assert words in flat and "Hello alice," in flat
        assert ("still has another second factor" in flat) is left
        assert ("logs in with its password alone" in flat) is not left
