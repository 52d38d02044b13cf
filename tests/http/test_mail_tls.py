"""Mail over TLS against real aiosmtpd servers (STARTTLS and implicit TLS) with a test CA.

The sender verifies the server's certificate (MAIL_CA_FILE names the test
CA); an untrusted server, or one that does not offer STARTTLS when asked,
gets nothing: neither the message nor the SMTP login. The row waits in the
outbox and the log says why, in one line without the password.
"""
import logging

import pytest

import db
from accounts import mail_sender
from mail_catcher import CertificateAuthority, MailCatcher, token_in
from support import query

# Some servers here offer AUTH in clear on purpose (aiosmtpd warns about it).
pytestmark = [pytest.mark.smtp,
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")]

LOGIN, PASSWORD = "mailer", "smtp-secret-Zq81"
NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("mail-ca"))


@pytest.fixture
def catchers():
    """Start MailCatchers through the returned function; all are stopped afterwards."""
    started = []

    def start(**options):
        catcher = MailCatcher(**options).start()
        started.append(catcher)
        return catcher

    yield start
    for catcher in started:
        catcher.stop()


def mail_app(make_app, catcher, security, ca, host="127.0.0.1", **overrides):
    settings = dict(MAIL_HOST=host, MAIL_PORT=catcher.port, MAIL_SECURITY=security,
                    MAIL_CA_FILE=str(ca.ca_file), MAIL_USERNAME=LOGIN, MAIL_PASSWORD=PASSWORD,
                    MAIL_FROM="Accounts <accounts@example.test>", MAIL_TIMEOUT=5,
                    PUBLIC_URL="https://accounts.example.test")
    settings.update(overrides)
    return make_app(**settings)


def with_email(app, make_user, name="alice"):
    user = make_user(name)
    with app.app_context():
        try:
            db.execute("INSERT INTO user_email (user_id, email) VALUES (%s, %s)",
                       (user["id"], f"{name}@example.test"))
        finally:
            db.close_db()
    return user


def ask_and_deliver(app, name="alice"):
    """POST /password/forgot, then one pass of the sender; the outbox row afterwards."""
    client = app.test_client()
    assert client.post("/password/forgot", json={"username": name}).status_code == 202
    with app.app_context():
        try:
            mail_sender.deliver_due()
        finally:
            db.close_db()
    [row] = query(app, "SELECT state, attempts, last_error FROM mail_outbox")
    return row


@pytest.mark.parametrize("security, host", [("starttls", "localhost"), ("tls", "127.0.0.1")])
def test_reset_mail_is_delivered_inside_tls_and_its_link_works(make_app, make_user, catchers, ca,
                                                               security, host):
    # The STARTTLS server offers AUTH before TLS too (auth_require_tls=False): only
    # the client keeps the password inside TLS, and that is what is tested.
    catcher = catchers(security=security, certificate=ca.server_context(),
                       credentials=(LOGIN, PASSWORD), auth_require_tls=False)
    app = mail_app(make_app, catcher, security, ca, host=host)
    with_email(app, make_user)

    row = ask_and_deliver(app)

    assert row["state"] == "sent", row
    [entry] = catcher.wait_for(1)
    assert entry["rcpt"] == ["alice@example.test"]
    assert entry["tls"] is True and entry["authenticated"] is True
    assert catcher.logins == [{"login": LOGIN, "password": PASSWORD, "tls": True}]
    client = app.test_client()
    token = token_in(entry)
    assert client.post("/password/reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    response = client.post("/auth", json={"username": "alice", "password": NEW_PASSWORD})
    assert response.status_code == 200 and "access_token" in response.get_json()


@pytest.mark.parametrize("security", ["starttls", "tls"])
@pytest.mark.parametrize("problem", ["another CA", "wrong host name"])
def test_an_untrusted_server_gets_nothing_and_the_row_waits(make_app, make_user, catchers, ca, tmp_path,
                                                            caplog, security, problem):
    if problem == "another CA":
        certificate = CertificateAuthority(tmp_path, "Someone else's CA").server_context()
        reason = "unable to get local issuer certificate"
    else:
        certificate = ca.server_context(names=("mail.example.test",))
        reason = "mismatch, certificate is not valid for '127.0.0.1'"
    catcher = catchers(security=security, certificate=certificate,
                       credentials=(LOGIN, PASSWORD), auth_require_tls=False)
    app = mail_app(make_app, catcher, security, ca)
    with_email(app, make_user)
    caplog.set_level(logging.INFO, logger="accounts.mail_sender")

    row = ask_and_deliver(app)

    assert row["state"] == "queued" and row["attempts"] == 1  # retried later, not lost
    assert "certificate of 127.0.0.1 is not trusted" in row["last_error"]
    assert reason in row["last_error"]
    assert catcher.messages == [] and catcher.logins == []
    [line] = [r.getMessage() for r in caplog.records if "is not trusted" in r.getMessage()]
    assert "\n" not in line and reason in line and "MAIL_CA_FILE" in line
    assert PASSWORD not in caplog.text and PASSWORD not in row["last_error"]


def test_starttls_asked_but_not_offered_sends_nothing_in_clear(make_app, make_user, catchers, ca, caplog):
    # A server (or a man in the middle) that strips STARTTLS and offers AUTH in clear.
    catcher = catchers(credentials=(LOGIN, PASSWORD), auth_require_tls=False)
    app = mail_app(make_app, catcher, "starttls", ca)
    with_email(app, make_user)
    caplog.set_level(logging.INFO, logger="accounts.mail_sender")

    row = ask_and_deliver(app)

    assert row["state"] == "queued" and "does not offer STARTTLS" in row["last_error"]
    assert catcher.messages == [] and catcher.logins == []
    [line] = [r.getMessage() for r in caplog.records if "does not offer STARTTLS" in r.getMessage()]
    assert "\n" not in line and PASSWORD not in caplog.text


def test_the_row_kept_by_an_untrusted_server_is_delivered_once_trust_is_fixed(make_app, make_user,
                                                                              catchers, ca, tmp_path):
    other = CertificateAuthority(tmp_path, "The mail provider's new CA")
    catcher = catchers(security="tls", certificate=other.server_context(), credentials=(LOGIN, PASSWORD))
    app = mail_app(make_app, catcher, "tls", ca)
    with_email(app, make_user)
    assert ask_and_deliver(app)["state"] == "queued"

    fixed = mail_app(make_app, catcher, "tls", other, MAIL_RETRY_MAX=1)
    with fixed.app_context():
        try:
            db.execute("UPDATE mail_outbox SET next_attempt_at = NOW()")  # skip the backoff wait
            mail_sender.deliver_due()
        finally:
            db.close_db()

    [entry] = catcher.wait_for(1)
    assert entry["tls"] is True and token_in(entry)
    [row] = query(fixed, "SELECT state, attempts FROM mail_outbox")
    assert row == {"state": "sent", "attempts": 2}
