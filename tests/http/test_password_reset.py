"""Forgot / reset password against a real SMTP server (aiosmtpd): the token comes from the delivered message."""
import statistics
import time

import pytest

import db
from accounts import mail_sender
from mail_catcher import MailCatcher, html_of, text_of, token_in
from support import bearer, free_port, query

NEW_PASSWORD = "a-brand-new-passphrase"
FORGOT_BODY = {"message": "If an account with a verified email address matches, "
                          "a message with a reset link is on its way."}
BAD_TOKEN = {"status_code": 422, "error": "Unprocessable Entity", "field": "token",
             "description": "This reset link is invalid or has expired. Ask for a new one."}
PUBLIC_URL = "https://accounts.example.test"
pytestmark = pytest.mark.smtp


@pytest.fixture(scope="module")
def smtp():
    server = MailCatcher().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(make_app, smtp):
    smtp.keeper.messages.clear()
    return make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=smtp.port, MAIL_SECURITY="none",
                    MAIL_FROM="Accounts <accounts@example.test>", PUBLIC_URL=PUBLIC_URL)


@pytest.fixture
def mail_client(mail_app):
    return mail_app.test_client()


def run_sql(app, sql, params=()):
    with app.app_context():
        try:
            return db.execute(sql, params)
        finally:
            db.close_db()


def give_email(app, user_id, address, verified=True):
    column = "email" if verified else "pending_email"
    run_sql(app, f"INSERT INTO user_email (user_id, {column}) VALUES (%s, %s)", (user_id, address))


def deliver(app):
    """Run the sender until the outbox has nothing due; return how many rows it processed."""
    total = 0
    with app.app_context():
        try:
            while True:
                done = mail_sender.deliver_due()
                total += done
                if not done:
                    return total
        finally:
            db.close_db()


@pytest.fixture
def alice(mail_app, make_user):
    user = make_user("alice")
    give_email(mail_app, user["id"], "alice@example.test")
    return user


def forgot(client, **body):
    response = client.post("/password/forgot", json=body)
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == FORGOT_BODY
    return response


def reset_token(client, app, smtp, **body):
    """Ask for a reset, deliver it, and return the token read from the newest message."""
    before = len(smtp.messages)
    forgot(client, **body)
    deliver(app)
    return token_in(smtp.wait_for(before + 1)[-1])


def test_forgot_by_username_mails_a_link_that_resets_the_password(mail_client, mail_app, smtp, alice):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    [entry] = smtp.messages
    assert entry["rcpt"] == ["alice@example.test"]
    message = entry["message"]
    assert message["Subject"] == "Reset your password"
    assert message["From"] == "Accounts <accounts@example.test>"
    assert f"{PUBLIC_URL}/reset-password#token={token}" in text_of(entry)
    assert f'href="{PUBLIC_URL}/reset-password#token={token}"' in html_of(entry)
    assert len(token) >= 43  # 256 bits, base64url
    # Only the SHA-256 is stored; the outbox row holds no token and is wiped once sent.
    [stored] = query(mail_app, "SELECT token_hash, purpose FROM one_time_token")
    assert stored["purpose"] == "password_reset" and token not in stored["token_hash"]
    [row] = query(mail_app, "SELECT state, payload FROM mail_outbox")
    assert row == {"state": "sent", "payload": None}

    response = mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 204 and response.data == b""
    assert mail_client.post("/auth", json={"username": "alice", "password": NEW_PASSWORD}).status_code == 200
    assert mail_client.post("/auth", json={"username": "alice",
                                           "password": alice["password"]}).status_code == 401


def test_forgot_by_email_ignores_case(mail_client, mail_app, smtp, alice):
    token = reset_token(mail_client, mail_app, smtp, email="  ALICE@Example.TEST")
    assert smtp.messages[0]["rcpt"] == ["alice@example.test"]
    assert mail_client.post("/password/reset",
                            json={"token": token, "password": NEW_PASSWORD}).status_code == 204


@pytest.mark.parametrize("body", [{"username": "nobody"}, {"email": "nobody@example.test"},
                                  {"username": "carol"}])
def test_unknown_account_or_no_verified_address_same_answer_same_work_no_mail(
        mail_client, mail_app, smtp, make_user, body):
    carol = make_user("carol")
    give_email(mail_app, carol["id"], "carol@example.test", verified=False)  # pending: does not count
    response = forgot(mail_client, **body)
    # The same work as for a known account: one outbox row, written by the request.
    [row] = query(mail_app, "SELECT kind, state FROM mail_outbox")
    assert row == {"kind": "password_reset", "state": "queued"}
    assert response.headers.get("Content-Length") == str(len(response.data))
    assert deliver(mail_app) == 1
    assert query(mail_app, "SELECT state, payload FROM mail_outbox") == [{"state": "skipped", "payload": None}]
    assert query(mail_app, "SELECT * FROM one_time_token") == []
    time.sleep(0.2)
    assert smtp.messages == []


def test_a_token_works_once(mail_client, mail_app, smtp, alice):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    assert mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    again = mail_client.post("/password/reset", json={"token": token, "password": "yet-another-passphrase"})
    assert again.status_code == 422 and again.get_json() == BAD_TOKEN


def test_an_expired_token_is_refused(mail_client, mail_app, smtp, alice):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    run_sql(mail_app, "UPDATE one_time_token SET expires_at = NOW() - INTERVAL 1 SECOND")
    response = mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 422 and response.get_json() == BAD_TOKEN


def test_a_token_issued_before_a_password_change_is_dead(mail_client, mail_app, smtp, alice, login):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    headers = bearer(login("alice", alice["password"]))
    changed = mail_client.patch(f"/users/{alice['id']}", headers=headers, json={
        "password": "changed-the-usual-way", "current_password": alice["password"]})
    assert changed.status_code == 200
    response = mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 422 and response.get_json() == BAD_TOKEN


@pytest.mark.parametrize("change", [
    "UPDATE user SET password = 'pbkdf2:sha256:by-hand' WHERE username = 'alice'",  # the mysql client
    "UPDATE user SET token_version = token_version + 1 WHERE username = 'alice'",  # logout-all
])
def test_a_token_dies_when_the_password_changes_by_hand_or_everything_is_revoked(
        mail_client, mail_app, smtp, alice, change):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    run_sql(mail_app, change)
    response = mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 422 and response.get_json() == BAD_TOKEN


def test_a_newer_token_kills_the_older(mail_client, mail_app, smtp, alice):
    older = reset_token(mail_client, mail_app, smtp, username="alice")
    newer = reset_token(mail_client, mail_app, smtp, username="alice")
    assert older != newer
    response = mail_client.post("/password/reset", json={"token": older, "password": NEW_PASSWORD})
    assert response.status_code == 422 and response.get_json() == BAD_TOKEN
    assert mail_client.post("/password/reset", json={"token": newer, "password": NEW_PASSWORD}).status_code == 204


def test_a_reset_ends_every_session_and_tells_the_user(mail_client, mail_app, smtp, alice):
    tokens = mail_client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    response = mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD},
                                headers={"User-Agent": "reset-test/1.0"})
    assert response.status_code == 204
    assert mail_client.get("/rest-auth", headers=bearer(tokens["access_token"])).status_code == 401
    assert mail_client.post("/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert query(mail_app, "SELECT COUNT(*) AS n FROM refresh_family WHERE user_id = %s"
                           " AND revoked_at IS NULL", (alice["id"],)) == [{"n": 0}]
    deliver(mail_app)
    notice = smtp.wait_for(2)[-1]
    assert notice["rcpt"] == ["alice@example.test"]
    assert notice["message"]["Subject"] == "Your password was changed"
    assert "#token=" not in text_of(notice)
    [event] = query(mail_app, "SELECT user_id, kind, ip, user_agent, request_id FROM security_event"
                              " WHERE kind = 'password_reset'")
    assert event["user_id"] == alice["id"] and event["user_agent"] == "reset-test/1.0"
    assert event["ip"] == "127.0.0.1" and event["request_id"]


def test_a_reset_clears_the_login_throttle_of_the_account(make_app, smtp, alice):
    """Guesses made the owner wait; after a reset from their address they log in at once."""
    app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=smtp.port, MAIL_SECURITY="none",
                   RATELIMIT_ENABLED=True, LOGIN_FREE_FAILURES=1, LOGIN_MAX_DELAY=60,
                   RATELIMIT_LOGIN="100/minute", RATELIMIT_LOGIN_PER_USER="3/hour",
                   RATELIMIT_FORGOT="100/minute", RATELIMIT_FORGOT_PER_ACCOUNT="100/hour")
    client = app.test_client()
    statuses = [client.post("/auth", json={"username": "alice", "password": f"guess-{n}"}).status_code
                for n in range(4)]
    assert statuses[-1] == 429
    assert client.post("/auth", json={"username": "alice", "password": alice["password"]}).status_code == 429
    token = reset_token(client, app, smtp, username="alice")
    assert client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    assert client.post("/auth", json={"username": "alice", "password": NEW_PASSWORD}).status_code == 200


def test_a_weak_password_is_refused_and_the_token_stays_usable(mail_client, mail_app, smtp, alice):
    token = reset_token(mail_client, mail_app, smtp, username="alice")
    weak = mail_client.post("/password/reset", json={"token": token, "password": "short"})
    assert weak.status_code == 422 and weak.get_json()["field"] == "password"
    assert mail_client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204


@pytest.mark.parametrize("path, body, status, field", [
    ("/password/forgot", {}, 400, None),
    ("/password/forgot", {"username": "alice", "email": "alice@example.test"}, 400, None),
    ("/password/forgot", {"username": 7}, 400, "username"),
    ("/password/forgot", {"username": ""}, 400, "username"),
    ("/password/forgot", {"username": "alice", "admin": True}, 400, "admin"),
    ("/password/forgot", {"email": "not-an-address"}, 422, "email"),
    ("/password/forgot", {"email": "alice@example.test\r\nBcc: eve@evil.test"}, 422, "email"),
    ("/password/forgot", {"email": "alice@example.test\nBcc: eve@evil.test"}, 422, "email"),
    ("/password/forgot", {"email": "Eve <eve@evil.test>"}, 422, "email"),
    ("/password/forgot", {"email": "a@example.test,eve@evil.test"}, 422, "email"),
    ("/password/forgot", {"email": "älice@example.test"}, 422, "email"),
    ("/password/reset", {"password": NEW_PASSWORD}, 400, "token"),
    ("/password/reset", {"token": "x"}, 400, "password"),
    ("/password/reset", {"token": 12, "password": NEW_PASSWORD}, 400, "token"),
    ("/password/reset", {"token": "x" * 5000, "password": NEW_PASSWORD}, 422, "token"),
    ("/password/reset", {"token": "not-a-token", "password": NEW_PASSWORD}, 422, "token"),
])
def test_bad_input_is_a_clear_error_and_queues_nothing(mail_client, mail_app, path, body, status, field):
    response = mail_client.post(path, json=body)
    assert response.status_code == status, response.get_json()
    answer = response.get_json()
    assert answer["status_code"] == status and answer["description"]
    assert answer.get("field") == field
    assert query(mail_app, "SELECT id FROM mail_outbox") == []


def test_non_json_is_415(mail_client):
    response = mail_client.post("/password/forgot", data="username=alice")
    assert response.status_code == 415


def test_the_smtp_server_down_then_back_delivers_once(make_app, mail_app, make_user):
    port = free_port()  # nothing listens here yet
    app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none", MAIL_TIMEOUT=2)
    user = make_user("dora")
    give_email(app, user["id"], "dora@example.test")
    client = app.test_client()
    for _ in range(3):
        forgot(client, username="dora")
    assert deliver(app) == 3
    rows = query(app, "SELECT state, attempts, last_error, next_attempt_at > NOW() AS later"
                      " FROM mail_outbox ORDER BY id")
    assert all(r["state"] == "queued" and r["attempts"] == 1 and r["later"] for r in rows)
    assert "ConnectionRefused" in rows[0]["last_error"]
    # Once the server did not answer, the batch's other rows wait without a try (and a timeout each).
    assert all(r["last_error"].startswith("not tried: ConnectionRefused") for r in rows[1:])
    assert deliver(app) == 0  # not due yet: backoff
    server = MailCatcher(port).start()
    try:
        run_sql(app, "UPDATE mail_outbox SET next_attempt_at = NOW()")  # the backoff elapsed
        assert deliver(app) == 3
        assert len(server.wait_for(3)) == 3
        run_sql(app, "UPDATE mail_outbox SET next_attempt_at = NOW()")
        assert deliver(app) == 0
        time.sleep(0.3)
        assert len(server.messages) == 3  # each delivered once; the newest link is the live one
        assert query(app, "SELECT state, attempts FROM mail_outbox") == [{"state": "sent", "attempts": 2}] * 3
    finally:
        server.stop()


def test_the_backoff_doubles_up_to_the_cap(mail_app):
    with mail_app.app_context():
        assert [mail_sender.backoff(n) for n in (1, 2, 3, 4, 12)] == [1, 2, 4, 8, 300]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, nothing catches it."""


def test_a_crash_between_send_and_mark_resends_with_a_new_token(mail_client, mail_app, smtp, alice,
                                                                  monkeypatch):
    """The documented at-least-once window: the resend carries a new token, the first link dies."""
    forgot(mail_client, username="alice")
    real_finish = mail_sender.outbox.finish

    def crash(item, state, error=None):
        raise Crash()
    monkeypatch.setattr(mail_sender.outbox, "finish", crash)
    with pytest.raises(Crash):
        deliver(mail_app)
    monkeypatch.setattr(mail_sender.outbox, "finish", real_finish)
    first = smtp.wait_for(1)[0]
    assert query(mail_app, "SELECT state FROM mail_outbox") == [{"state": "sending"}]
    assert deliver(mail_app) == 0  # the lease still holds: no second sender takes it
    run_sql(mail_app, "UPDATE mail_outbox SET lease_until = NOW() - INTERVAL 1 SECOND")  # lease ran out
    assert deliver(mail_app) == 1
    second = smtp.wait_for(2)[1]
    assert query(mail_app, "SELECT state, attempts FROM mail_outbox") == [{"state": "sent", "attempts": 2}]
    old, new = token_in(first), token_in(second)
    assert old != new
    assert mail_client.post("/password/reset", json={"token": old, "password": NEW_PASSWORD}).get_json() == BAD_TOKEN
    assert mail_client.post("/password/reset", json={"token": new, "password": NEW_PASSWORD}).status_code == 204


def test_account_email_off_hides_the_routes(make_app):
    client = make_app(ACCOUNT_EMAIL=False).test_client()
    for path in ("/password/forgot", "/password/reset", "/email/verify"):
        assert client.post(path, json={}).status_code == 404
    assert client.get("/reset-password").status_code == 404


def test_forgot_is_throttled_per_account_the_same_for_an_unknown_one(make_app, mail_app, alice):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_FORGOT="100/minute",
                      RATELIMIT_FORGOT_PER_ACCOUNT="2/hour").test_client()
    for body in ({"username": "alice"}, {"username": "nobody"}):
        for _ in range(2):
            assert client.post("/password/forgot", json=body).status_code == 202
        refused = client.post("/password/forgot", json=body)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Case and width do not make a new account name.
    assert client.post("/password/forgot", json={"username": "ALICE"}).status_code == 429


def timings_ms(client, body, rounds):
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post("/password/forgot", json=body)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202
    return times


def test_forgot_takes_the_same_time_for_a_known_and_an_unknown_account(mail_client, mail_app, alice):
    """Enumeration through timing: medians of 60 requests each (interleaved blocks), within 5 ms."""
    timings_ms(mail_client, {"username": "alice"}, 5)  # warm up
    known, unknown = [], []
    for _ in range(6):
        known += timings_ms(mail_client, {"username": "alice"}, 10)
        unknown += timings_ms(mail_client, {"username": "nobody-here"}, 10)
    known_ms, unknown_ms = statistics.median(known), statistics.median(unknown)
    print(f"\nPOST /password/forgot median of {len(known)}: known {known_ms:.2f} ms, "
          f"unknown {unknown_ms:.2f} ms")
    assert abs(known_ms - unknown_ms) < 5.0


def test_the_sender_records_the_request_for_a_known_account_only(mail_client, mail_app, smtp, alice):
    headers = {"User-Agent": "forgot-test/1.0", "X-Request-ID": "req-forgot-1"}
    mail_client.post("/password/forgot", json={"username": "alice"}, headers=headers)
    mail_client.post("/password/forgot", json={"username": "nobody"}, headers=headers)
    assert query(mail_app, "SELECT id FROM security_event") == []  # the request itself writes no event
    deliver(mail_app)
    assert query(mail_app, "SELECT user_id, kind, ip, user_agent, request_id FROM security_event") == [
        {"user_id": alice["id"], "kind": "password_reset_requested", "ip": "127.0.0.1",
         "user_agent": "forgot-test/1.0", "request_id": "req-forgot-1"}]


class Refusing:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such mailbox"


def test_a_permanent_refusal_fails_the_row_at_once(make_app, make_user):
    from aiosmtpd.controller import Controller
    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none")
        user = make_user("erin")
        give_email(app, user["id"], "erin@example.test")
        forgot(app.test_client(), username="erin")
        assert deliver(app) == 1
        [row] = query(app, "SELECT state, attempts, last_error, payload FROM mail_outbox")
        assert row == {"state": "failed", "attempts": 1, "last_error": "recipient refused: [550]",
                       "payload": None}
    finally:
        controller.stop()


def test_without_mail_host_development_logs_the_message(make_app, make_user, caplog):
    app = make_app(MAIL_HOST="", APP_ENV="development", PUBLIC_URL="http://127.0.0.1:5000")
    user = make_user("fred")
    give_email(app, user["id"], "fred@example.test")
    forgot(app.test_client(), username="fred")
    with caplog.at_level("WARNING", logger="accounts.mail"):
        assert deliver(app) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "accounts.mail")
    assert "MAIL_HOST is not set" in logged and "To: fred@example.test" in logged
    assert "http://127.0.0.1:5000/reset-password#token=" in logged
    assert query(app, "SELECT state FROM mail_outbox") == [{"state": "sent"}]


def test_concurrent_senders_deliver_every_row_exactly_once(mail_app, smtp):
    """Four senders (as four gunicorn workers would) claim with SKIP LOCKED: 40 rows, 40 messages."""
    import threading
    with mail_app.app_context():
        with db.transaction():
            for n in range(40):
                mail_sender.queue("password_changed", {"to": f"user{n}@example.test", "username": f"user{n}"})
        db.close_db()
    errors = []

    def sender():
        try:
            with mail_app.app_context():
                try:
                    while mail_sender.deliver_due(batch=3):
                        pass
                finally:
                    db.close_db()
        except Exception as exc:  # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    recipients = sorted(m["rcpt"][0] for m in smtp.wait_for(40))
    time.sleep(0.3)
    assert len(smtp.messages) == 40
    assert recipients == sorted(f"user{n}@example.test" for n in range(40))
    assert query(mail_app, "SELECT state, COUNT(*) AS n, MAX(attempts) AS tries FROM mail_outbox"
                           " GROUP BY state") == [{"state": "sent", "n": 40, "tries": 1}]


def test_housekeeping_purges_old_finished_rows_and_expired_tokens(mail_app, make_user):
    user = make_user("gina")
    run_sql(mail_app, "INSERT INTO mail_outbox (kind, state, done_at) VALUES"
                      " ('password_changed', 'sent', NOW() - INTERVAL 8 DAY),"
                      " ('password_changed', 'sent', NOW() - INTERVAL 1 DAY),"
                      " ('password_changed', 'queued', NULL)")
    run_sql(mail_app, "INSERT INTO one_time_token (token_hash, user_id, purpose, binding, expires_at) VALUES"
                      " (REPEAT('a', 64), %s, 'password_reset', REPEAT('b', 64), NOW() - INTERVAL 1 SECOND),"
                      " (REPEAT('c', 64), %s, 'verify_email', REPEAT('d', 64), NOW() + INTERVAL 1 HOUR)",
            (user["id"], user["id"]))
    with mail_app.app_context():
        mail_sender.housekeeping()
        db.close_db()
    assert query(mail_app, "SELECT state FROM mail_outbox ORDER BY id") == [{"state": "sent"}, {"state": "queued"}]
    assert query(mail_app, "SELECT purpose FROM one_time_token") == [{"purpose": "verify_email"}]


def test_the_sender_logs_in_with_mail_username_and_password(make_app):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from mail_catcher import _Keeper
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)
    port, keeper = free_port(), _Keeper()
    controller = Controller(keeper, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none",
                       MAIL_USERNAME="mailer", MAIL_PASSWORD="s3cret-pass")
        with app.app_context():
            with db.transaction():
                mail_sender.queue("password_changed", {"to": "hal@example.test", "username": "hal"})
            assert mail_sender.deliver_due() == 1
            db.close_db()
        assert query(app, "SELECT state FROM mail_outbox") == [{"state": "sent"}]
        assert seen == [(b"mailer", b"s3cret-pass")]
        assert [m["rcpt"] for m in keeper.messages] == [["hal@example.test"]]
    finally:
        controller.stop()


def test_token_redemptions_are_throttled_per_address(make_app):
    """One RATELIMIT_TOKEN budget per client address, shared by /password/reset and /email/verify."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN="3/minute").test_client()
    assert [client.post("/password/reset", json={"token": "x", "password": NEW_PASSWORD}).status_code,
            client.post("/password/reset", json={"token": "x", "password": NEW_PASSWORD}).status_code,
            client.post("/email/verify", json={"token": "x"}).status_code] == [422, 422, 422]
    refused = client.post("/email/verify", json={"token": "x"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["description"].startswith("Too many attempts")


def test_an_account_gets_at_most_so_many_reset_links_an_hour(make_app, smtp, make_user):
    """However requests are spread (username, address, any client), the sender caps the links."""
    smtp.keeper.messages.clear()
    app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=smtp.port, MAIL_SECURITY="none",
                   PASSWORD_RESET_MAILS_PER_HOUR=2)
    user = make_user("jill")
    give_email(app, user["id"], "jill@example.test")
    client = app.test_client()
    for body in ({"username": "jill"}, {"email": "JILL@example.test"}, {"username": "jill"}):
        forgot(client, **body)  # the answer never changes
    assert deliver(app) == 3
    time.sleep(0.3)
    assert len(smtp.messages) == 2
    states = [r["state"] for r in query(app, "SELECT state FROM mail_outbox ORDER BY id")]
    assert states == ["sent", "sent", "skipped"]


def test_a_refused_smtp_login_keeps_the_mail_queued(make_app):
    """Our settings are wrong, not the message: it waits for them to be fixed, saying what to fix."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from mail_catcher import _Keeper

    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)  # answers 535
    port, keeper = free_port(), _Keeper()
    controller = Controller(keeper, hostname="127.0.0.1", port=port, authenticator=refuse,
                            auth_require_tls=False)
    controller.start()
    try:
        app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none", MAIL_TIMEOUT=3,
                       MAIL_USERNAME="mailer", MAIL_PASSWORD="wrong")
        with app.app_context():
            with db.transaction():
                mail_sender.queue("password_changed", {"to": "hal@example.test", "username": "hal"})
            assert mail_sender.deliver_due() == 1
            db.close_db()
        [row] = query(app, "SELECT state, last_error, payload IS NOT NULL AS kept FROM mail_outbox")
        assert row["state"] == "queued" and row["kept"]
        assert "SMTP login refused (535): check MAIL_USERNAME and MAIL_PASSWORD" == row["last_error"]
        assert keeper.messages == []
    finally:
        controller.stop()


def test_retries_while_the_server_is_down_count_as_one_request(make_app, make_user):
    """The hourly cap counts requests, not delivery attempts: a long outage does not skip the mail."""
    port = free_port()
    app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none", MAIL_TIMEOUT=2,
                   PASSWORD_RESET_MAILS_PER_HOUR=1)
    user = make_user("kim")
    give_email(app, user["id"], "kim@example.test")
    forgot(app.test_client(), username="kim")
    for _ in range(3):  # three failed attempts
        run_sql(app, "UPDATE mail_outbox SET next_attempt_at = NOW()")
        assert deliver(app) == 1
    server = MailCatcher(port).start()
    try:
        run_sql(app, "UPDATE mail_outbox SET next_attempt_at = NOW()")
        assert deliver(app) == 1
        assert len(server.wait_for(1)) == 1 and token_in(server.messages[0])
        assert query(app, "SELECT state, attempts FROM mail_outbox") == [{"state": "sent", "attempts": 4}]
        assert query(app, "SELECT COUNT(*) AS n FROM security_event"
                          " WHERE kind = 'password_reset_requested'") == [{"n": 1}]
    finally:
        server.stop()
