"""Chromium's virtual authenticator (CDP WebAuthn domain) driven through Playwright, for passkey tests.

`VirtualAuthenticator(page)` adds a CTAP2 platform authenticator with
resident keys and user verification to the page's browser tab; `create()`
and `get()` take WebAuthn JSON options (what the service answers) and return
`credential.toJSON()` (what the service verifies), exactly as a site's script
would with PublicKeyCredential.parse*OptionsFromJSON(). `credentials()`,
`remove()` and `add()` give the authenticator's stored keys, to clone one.
"""
import http.server
import threading

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OPTIONS = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
           "hasUserVerification": True, "isUserVerified": True}
CREATE = """async (options) => (await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})).toJSON()"""
GET = """async (options) => (await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})).toJSON()"""


class VirtualAuthenticator:
    """One virtual authenticator attached to `page`'s tab."""

    def __init__(self, page):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": OPTIONS})["authenticatorId"]

    def create(self, options: dict) -> dict:
        """navigator.credentials.create() with these creation options; the credential's toJSON()."""
        return self.page.evaluate(CREATE, options)

    def get(self, options: dict) -> dict:
        """navigator.credentials.get() with these request options; the credential's toJSON()."""
        return self.page.evaluate(GET, options)

    def credentials(self) -> list[dict]:
        """The stored credentials (id, privateKey, userHandle, signCount, rpId...)."""
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def remove(self, credential_id: str) -> None:
        self.cdp.send("WebAuthn.removeCredential", {"authenticatorId": self.id, "credentialId": credential_id})

    def add(self, credential: dict) -> None:
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential})


class _Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>blank</title>")

    def log_message(self, *args):
        pass


class BlankOrigin:
    """An empty page at http://localhost:<port>: an origin for the browser side of in-process tests."""

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
