"""Chromium's virtual authenticator and py_webauthn agree, with no server of ours in between.

The smallest proof that passkeys can be tested end to end here: an empty page
on http://localhost:<port> (an origin WebAuthn accepts), Chromium's CDP
virtual authenticator (CTAP2, internal, resident keys, user verified),
options made by py_webauthn, the browser's parse*OptionsFromJSON()/toJSON(),
and py_webauthn's verification of what comes back. The service's passkey
tests (tests/http/test_webauthn.py, the account page) build on the same setup.
"""
import pytest

from support import require_tool
from virtual_authenticator import CHROMIUM, CHROMIUM_ARGS, BlankOrigin, VirtualAuthenticator

pytestmark = pytest.mark.browser


def test_register_then_log_in_with_a_discoverable_passkey():
    require_tool(CHROMIUM, "passkey tests with Chromium's virtual authenticator")
    import webauthn
    from playwright.sync_api import sync_playwright
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, ResidentKeyRequirement,
                                          UserVerificationRequirement)

    blank = BlankOrigin()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_context().new_page()
                page.goto(blank.origin + "/")
                authenticator = VirtualAuthenticator(page)
                registration = webauthn.generate_registration_options(
                    rp_id="localhost", rp_name="test", user_name="roy", user_id=b"7",
                    authenticator_selection=AuthenticatorSelectionCriteria(
                        resident_key=ResidentKeyRequirement.REQUIRED))
                created = authenticator.create(options_to_json_dict(registration))
                stored = webauthn.verify_registration_response(
                    credential=created, expected_challenge=registration.challenge,
                    expected_rp_id="localhost", expected_origin=blank.origin)
                request = webauthn.generate_authentication_options(
                    rp_id="localhost", user_verification=UserVerificationRequirement.REQUIRED)
                asserted = authenticator.get(options_to_json_dict(request))
                verified = webauthn.verify_authentication_response(
                    credential=asserted, expected_challenge=request.challenge,
                    expected_rp_id="localhost", expected_origin=blank.origin,
                    credential_public_key=stored.credential_public_key,
                    credential_current_sign_count=stored.sign_count, require_user_verification=True)
            finally:
                browser.close()
    finally:
        blank.close()
    assert asserted["id"] == created["id"]
    assert asserted["response"]["userHandle"] == "Nw"  # base64url of b"7": a discoverable credential
    assert verified.new_sign_count > stored.sign_count and verified.user_verified
