"""Reset a password and verify an address in real Chromium, through the pages the mailed links open.

gunicorn (with its sender threads) delivers to an aiosmtpd server; the test
reads the link from the message, opens it in Chromium, and the page's script
(under the strict CSP) posts the fragment's token.
"""
import json
import urllib.request

import pytest

import db
from support import server_config, start_live_server, stop_live_server
from mail_catcher import MailCatcher, token_in, wait_for_message_to
from test_login_browser import browser, csp_violations, page  # noqa: F401 (fixtures)

PUBLIC_URL = "https://accounts.example.test"
pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.smtp]


@pytest.fixture(scope="module")
def smtp():
    server = MailCatcher().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory, smtp):
    server = start_live_server(tmp_path_factory.mktemp("mail-live"), MAIL_HOST="127.0.0.1",
                               MAIL_PORT=smtp.port, MAIL_SECURITY="none", PUBLIC_URL=PUBLIC_URL)
    yield server
    stop_live_server(server)


def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def verified_user(server, username, address):
    status, body = post(server.url + "/users", {"username": username, "password": "first-passphrase-1"})
    assert status == 201, body
    user_id = json.loads(body)["id"]
    config = server_config(server.database)
    db.run_script(config, f"INSERT INTO user_email (user_id, email) VALUES ({int(user_id)}, '{address}')")
    return user_id


def test_reset_through_the_page_in_chromium(page, mail_server, smtp):  # noqa: F811
    from playwright.sync_api import expect
    verified_user(mail_server, "pagereset", "pagereset@example.test")
    before = len(smtp.messages)
    assert post(mail_server.url + "/password/forgot", {"username": "pagereset"})[0] == 202
    message = smtp.wait_for(before + 1)[-1]  # delivered by the workers' sender thread
    token = token_in(message)
    page.goto(f"{mail_server.url}/reset-password#token={token}")
    assert "#token" not in page.url  # the script took it out of the address bar
    page.fill("#password", "chosen-in-chromium-1")
    page.click("#reset-form button[type=submit]")
    expect(page.locator("#status")).to_have_text(
        "Your password was changed. Every session was logged out; log in again.")
    status, _ = post(mail_server.url + "/auth", {"username": "pagereset", "password": "chosen-in-chromium-1"})
    assert status == 200
    page.goto("about:blank")  # a new load: going to the same path with a fragment would not reload
    page.goto(f"{mail_server.url}/reset-password#token={token}")  # the link works once
    page.fill("#password", "chosen-in-chromium-2")
    page.click("#reset-form button[type=submit]")
    expect(page.locator("#status")).to_have_text(
        "Error 422: This reset link is invalid or has expired. Ask for a new one.")
    assert csp_violations(page) == [] and page.errors == []
    # The access log holds the page's path, never the token (it was in the fragment).
    assert token not in mail_server.log_path.read_text(errors="replace")


def test_the_page_without_a_token_asks_for_a_link(page, mail_server, smtp):  # noqa: F811
    from playwright.sync_api import expect
    page.goto(f"{mail_server.url}/reset-password")
    expect(page.locator("#forgot-form")).to_be_visible()
    expect(page.locator("#reset-form")).to_be_hidden()
    page.fill("#username", "nobody-at-all")
    page.click("#forgot-form button[type=submit]")
    expect(page.locator("#status")).to_have_text(
        "If an account with a verified address matches, a link is on its way.")
    assert csp_violations(page) == [] and page.errors == []


def test_verify_email_through_the_page_in_chromium(page, mail_server, smtp):  # noqa: F811
    from playwright.sync_api import expect
    status, body = post(mail_server.url + "/users", {"username": "pageverify", "password": "first-passphrase-1",
                                                     "email": "pageverify@example.test"})
    assert status == 201, body
    message = wait_for_message_to(smtp, "pageverify@example.test")
    token = token_in(message, "verify-email")
    page.goto(f"{mail_server.url}/verify-email#token={token}")
    expect(page.locator("#status")).to_have_text("Your email address is verified.")
    assert csp_violations(page) == [] and page.errors == []
