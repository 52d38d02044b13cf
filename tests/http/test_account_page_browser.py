"""The account page in Debian's Chromium against gunicorn, passkeys by the virtual authenticator.

Served at http://localhost:<port> with PUBLIC_URL naming it (WebAuthn's RP ID
is `localhost`). As the tutorial's user roy: log in with the password, see
the sessions and revoke another one, enroll an authenticator app by its QR
(the key is read from the page, the code computed with pyotp), keep the
recovery codes, add a passkey; then log in again with password + code, with
password + passkey, with a passkey alone; remove the passkey, make new recovery
codes and turn the app off; the recent security events list shows each change.
Screenshots of each stage are written and checked
(a PNG, non-trivial in size); any CSP violation or page error fails the test.
"""
import base64
import json
import time
import urllib.request

import pyotp
import pytest

from support import clear_of_a_totp_step_edge, free_port, require_tool, start_live_server, stop_live_server
from virtual_authenticator import CHROMIUM, CHROMIUM_ARGS, VirtualAuthenticator

pytestmark = [pytest.mark.browser, pytest.mark.live]
TIMEOUT_MS = 15_000
PNG = b"\x89PNG\r\n\x1a\n"


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    live = start_live_server(tmp_path_factory.mktemp("account"), port=port,
                             PUBLIC_URL=f"http://localhost:{port}")
    live.public = f"http://localhost:{port}"
    yield live
    stop_live_server(live)


@pytest.fixture(scope="module")
def browser():
    require_tool(CHROMIUM, "the account page browser test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 900, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.console_messages, page.errors = [], []
    page.on("console", lambda message: page.console_messages.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def screenshot(page, path):
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5_000, path
    return path


def clean(page):
    assert [m for m in page.console_messages if "Content Security Policy" in m] == []
    assert page.errors == []


def log_in(page, url, password="roy"):
    page.goto(url + "/login")
    page.fill("#username", "roy")
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


def totp_code(secret, steps=0):
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def test_the_account_page_end_to_end(page, server, tmp_path):
    from playwright.sync_api import expect
    authenticator = VirtualAuthenticator(page)
    # Another session of roy's, to revoke from the page.
    request = urllib.request.Request(server.url + "/auth", data=json.dumps(
        {"username": "roy", "password": "roy"}).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()

    log_in(page, server.public)
    expect(page.locator("#status")).to_have_text("Logged in.")
    expect(page.locator("#account")).to_be_visible()
    sessions = page.locator("#sessions li")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has_text="This session")).to_have_count(1)
    sessions.filter(has_text="Revoke").get_by_role("button", name="Revoke").click()
    expect(page.locator("#account-status")).to_have_text("Session revoked.")
    expect(sessions).to_have_count(1)
    screenshot(page, tmp_path / "1-logged-in.png")

    # Enroll the authenticator app by its QR code.
    page.click("#totp-start")
    expect(page.locator("#totp-qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").text_content()
    qr = page.locator("#totp-qr svg")
    assert qr.bounding_box()["width"] > 100
    screenshot(page, tmp_path / "2-totp-qr.png")
    clear_of_a_totp_step_edge()
    page.fill("#totp-code", totp_code(secret, -1))
    page.click("#totp-confirm-form button[type=submit]")
    expect(page.locator("#account-status")).to_have_text("Authenticator app turned on.")
    codes = page.locator("#recovery-codes").text_content().split("\n")
    assert len(codes) == 10 and len(set(codes)) == 10
    expect(page.locator("#totp-state")).to_have_text("On.")
    expect(page.locator("#recovery-state")).to_have_text("10 unused recovery codes.")
    screenshot(page, tmp_path / "3-recovery-codes.png")
    # The enrollment is a security event, shown newest first in the account's list.
    enabled = page.locator("#events li[data-kind=totp_enabled]")
    expect(enabled).to_have_count(1)
    expect(enabled).to_contain_text("Authenticator app turned on")
    expect(enabled).to_contain_text("from 127.0.0.1")
    expect(page.locator("#events li").first).to_have_attribute("data-kind", "totp_enabled")
    enabled.scroll_into_view_if_needed()
    screenshot(page, tmp_path / "3b-security-events.png")

    # Add a passkey (Chromium's virtual authenticator answers the prompt).
    page.click("#passkey-add")
    expect(page.locator("#account-status")).to_have_text("Passkey added.")
    expect(page.locator("#passkeys li")).to_have_count(1)
    assert len(authenticator.credentials()) == 1
    expect(page.locator("#events li").first).to_have_attribute("data-kind", "passkey_added")
    screenshot(page, tmp_path / "4-passkey.png")
    clean(page)

    # Log in again: password, then the app's code.
    log_in(page, server.public)
    expect(page.locator("#mfa-form")).to_be_visible()
    expect(page.locator("#mfa-passkey")).to_be_visible()
    screenshot(page, tmp_path / "5-second-step.png")
    page.fill("#mfa-code", totp_code(secret))
    page.click("#mfa-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("Logged in.")
    assert claims(page.locator("#token").text_content())["amr"] == ["pwd", "otp"]

    # Password, then the passkey as the second factor.
    log_in(page, server.public)
    expect(page.locator("#mfa-form")).to_be_visible()
    page.click("#mfa-passkey")
    expect(page.locator("#status")).to_have_text("Logged in.")
    assert claims(page.locator("#token").text_content())["amr"] == ["pwd", "hwk"]

    # A passkey alone.
    page.goto(server.public + "/login")
    page.click("#passkey-login")
    expect(page.locator("#status")).to_have_text("Logged in.")
    assert claims(page.locator("#token").text_content())["amr"] == ["hwk"]
    answer = json.loads(page.locator("#answer").text_content())
    assert answer["user"]["username"] == "roy"

    # Remove the passkey (a fresh login: no re-authentication needed).
    page.locator("#passkeys li").get_by_role("button", name="Remove").click()
    expect(page.locator("#account-status")).to_have_text("Passkey removed.")
    expect(page.locator("#passkeys li")).to_have_count(0)
    screenshot(page, tmp_path / "6-passkey-removed.png")

    # New recovery codes, then the app turned off with the password and the next code.
    old_codes = page.locator("#recovery-codes").text_content()
    page.click("#recovery-new")
    expect(page.locator("#account-status")).to_have_text("New recovery codes made; the old ones no longer work.")
    new_codes = page.locator("#recovery-codes").text_content().split("\n")
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes.split("\n"))
    page.fill("#totp-off-password", "roy")
    page.fill("#totp-off-code", totp_code(secret, 1))
    page.click("#totp-off-form button[type=submit]")
    expect(page.locator("#account-status")).to_have_text("Authenticator app turned off.")
    expect(page.locator("#totp-state")).to_have_text("Off.")
    expect(page.locator("#totp-start")).to_be_visible()
    expect(page.locator("#events li").first).to_have_attribute("data-kind", "totp_disabled")
    for kind in ("passkey_removed", "recovery_codes_regenerated", "mfa_login_succeeded"):
        expect(page.locator(f"#events li[data-kind={kind}]").first).to_be_visible()
    screenshot(page, tmp_path / "7-totp-off.png")
    clean(page)


def test_a_wrong_code_is_shown_not_thrown(page, server):
    from playwright.sync_api import expect
    # A fresh account of its own, so the test does not depend on the one above.
    request = urllib.request.Request(server.url + "/register", data=json.dumps(
        {"username": "zoe", "password": "zoe-password-123"}).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
    page.goto(server.public + "/login")
    page.fill("#username", "zoe")
    page.fill("#password", "zoe-password-123")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("Logged in.")
    page.click("#totp-start")
    expect(page.locator("#totp-qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").text_content()
    page.fill("#totp-code", totp_code(secret))
    page.click("#totp-confirm-form button[type=submit]")
    expect(page.locator("#totp-state")).to_have_text("On.")
    page.goto(server.public + "/login")
    page.fill("#username", "zoe")
    page.fill("#password", "zoe-password-123")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#mfa-form")).to_be_visible()
    wrong = f"{(int(totp_code(secret, 1)) + 500000) % 1000000:06d}"
    page.fill("#mfa-code", wrong)
    page.click("#mfa-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("Error 401: Invalid second factor code")
    expect(page.locator("#status")).to_have_class("error")
    clean(page)
