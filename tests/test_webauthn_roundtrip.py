"""Chromium's virtual authenticator and py_webauthn agree, with no server of ours in between.

The smallest proof that the passkey flow can be tested end to end here: a
page on http://localhost:<port> (an origin WebAuthn accepts), Chromium's
CDP virtual authenticator (CTAP2, internal, resident keys, user verified),
options made by py_webauthn, the browser's own parse*FromJSON()/toJSON(),
and py_webauthn's verification of what comes back. The service's own
passkey tests (tests/test_webauthn*.py) build on the same setup.
"""
import http.server
import threading

import pytest

from conftest import require_tool

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True}
CREATE = """async (options) => (await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})).toJSON()"""
GET = """async (options) => (await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})).toJSON()"""


class _Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>blank</title>")

    def log_message(self, *args):
        pass


@pytest.fixture
def blank_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_register_then_log_in_with_a_discoverable_passkey(blank_page):
    require_tool(CHROMIUM, "passkey tests with Chromium's virtual authenticator")
    import webauthn
    from playwright.sync_api import sync_playwright
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, ResidentKeyRequirement,
                                          UserVerificationRequirement)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context().new_page()
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
            page.goto(blank_page + "/")
            registration = webauthn.generate_registration_options(
                rp_id="localhost", rp_name="test", user_name="roy", user_id=b"7",
                authenticator_selection=AuthenticatorSelectionCriteria(
                    resident_key=ResidentKeyRequirement.REQUIRED))
            created = page.evaluate(CREATE, options_to_json_dict(registration))
            stored = webauthn.verify_registration_response(
                credential=created, expected_challenge=registration.challenge,
                expected_rp_id="localhost", expected_origin=blank_page)
            request = webauthn.generate_authentication_options(
                rp_id="localhost", user_verification=UserVerificationRequirement.REQUIRED)
            asserted = page.evaluate(GET, options_to_json_dict(request))
            verified = webauthn.verify_authentication_response(
                credential=asserted, expected_challenge=request.challenge,
                expected_rp_id="localhost", expected_origin=blank_page,
                credential_public_key=stored.credential_public_key,
                credential_current_sign_count=stored.sign_count, require_user_verification=True)
        finally:
            browser.close()
    assert asserted["id"] == created["id"]
    assert asserted["response"]["userHandle"] == "Nw"  # base64url of b"7": discoverable
    assert verified.new_sign_count > stored.sign_count
    assert verified.user_verified
