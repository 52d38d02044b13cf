"""The login page in headless Chromium (Debian's), against gunicorn on the seeded database.

Logs in as the tutorial's user roy, sees the token and /rest-auth's answer;
a wrong password shows an error in the page. Any Content-Security-Policy
violation on the console fails the test (and a positive control proves the
listener would see one).
"""
import base64
import json

import pytest

from support import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    require_tool(CHROMIUM, "the login page browser test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.console_messages, page.errors = [], []
    page.on("console", lambda message: page.console_messages.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def csp_violations(page):
    return [m for m in page.console_messages if "Content Security Policy" in m]


def log_in(page, url, username, password):
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("path", ["/", "/login"])
def test_login_shows_the_token_and_the_rest_auth_answer(page, live_server, path):
    from playwright.sync_api import expect
    log_in(page, live_server.url + path, "roy", "roy")
    expect(page.locator("#status")).to_have_text("Logged in.")
    expect(page.locator("#result")).to_be_visible()
    token = page.locator("#token").text_content()
    assert claims(token)["type"] == "access"
    answer = json.loads(page.locator("#answer").text_content())
    assert answer["user"]["username"] == "roy"
    assert str(answer["user"]["id"]) == claims(token)["sub"]
    assert csp_violations(page) == [] and page.errors == []


def test_a_wrong_password_is_shown_not_thrown(page, live_server):
    from playwright.sync_api import expect
    log_in(page, live_server.url + "/login", "roy", "not-roys-password")
    status = page.locator("#status")
    expect(status).to_have_text("Error 401: Invalid credentials")
    expect(status).to_have_class("error")
    expect(page.locator("#result")).to_be_hidden()
    assert page.locator("#token").text_content() == ""
    assert csp_violations(page) == [] and page.errors == []


def test_a_csp_violation_would_be_caught(page, live_server):
    """Positive control: an inline script is refused by our policy and reported on the console."""
    page.goto(live_server.url + "/login")
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
    }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.injected === undefined")
    assert csp_violations(page), page.console_messages
