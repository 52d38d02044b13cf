"""GET /public, GET /auth (who am I), and the login page at / and /login under a strict CSP."""
import re
from html.parser import HTMLParser

import pytest

from support import bearer

PASSWORD = "correct-horse-battery"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class Page(HTMLParser):
    """Collects what a CSP cares about: scripts, styles, inline handlers, forms, inputs."""

    def __init__(self):
        super().__init__()
        self.scripts, self.inline_scripts, self.styles, self.inline_styles = [], 0, [], 0
        self.handlers, self.forms, self.inputs = [], [], []
        self._in_script = self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [name for name in attrs if name.startswith("on")]
        if "style" in attrs:
            self.inline_styles += 1
        if tag == "script":
            self._in_script = True
            if "src" in attrs:
                self.scripts.append(attrs["src"])
        if tag == "style":
            self._in_style = True
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])
        if tag == "form":
            self.forms.append(attrs)
        if tag == "input":
            self.inputs.append(attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1
        if self._in_style and data.strip():
            self.inline_styles += 1


def parse(html):
    page = Page()
    page.feed(html)
    return page


def test_public_needs_no_token(client):
    response = client.get("/public")
    assert response.status_code == 200
    assert response.get_json() == {"message": "This is a public page"}


def test_public_ignores_a_bad_token(client):
    response = client.get("/public", headers=bearer("not-a-token"))
    assert response.status_code == 200


def test_get_auth_says_who_the_caller_is(client, make_user, login):
    alice = make_user("alice", PASSWORD)
    response = client.get("/auth", headers=bearer(login("alice", PASSWORD)))
    assert response.status_code == 200
    assert response.get_json() == {
        "message": "You are verified. Welcome to your dashboard!",
        "user": {"id": alice["id"], "username": "alice"},
    }


@pytest.mark.parametrize("headers, error", [
    ({}, "Authorization Required"),
    (bearer("garbage"), "Invalid token"),
    ({"Authorization": "Basic YWxpY2U6eA=="}, "Invalid JWT header"),
])
def test_get_auth_without_a_valid_token_is_401(client, headers, error):
    response = client.get("/auth", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == error
    assert "WWW-Authenticate" in response.headers


def test_post_auth_still_issues_tokens(client, make_user):
    make_user("alice", PASSWORD)
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "access_token" in response.get_json()


@pytest.mark.parametrize("path", ["/", "/login"])
def test_login_page_has_a_strict_csp_and_no_inline_code(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = parse(response.get_data(as_text=True))
    assert page.inline_scripts == 0 and page.inline_styles == 0 and page.handlers == []
    assert page.scripts == ["/static/webauthn.js", "/static/login.js", "/static/account.js"]
    assert page.styles == ["/static/login.css"]
    assert not re.search(r"javascript:", response.get_data(as_text=True), re.I)


def test_the_form_posts_username_and_password_to_login(client):
    page = parse(client.get("/login").get_data(as_text=True))
    # The other forms (second step, account) are script-only: no action, no named inputs.
    assert [f for f in page.forms if "action" in f] == [page.forms[0]]
    form = page.forms[0]
    assert form["action"] == "/login" and form["method"].lower() == "post"
    assert form["data-rest-auth"] == "/rest-auth"
    named = [i for i in page.inputs if "name" in i]
    assert [i["name"] for i in named] == ["username", "password"]
    assert named[1]["type"] == "password"


def test_the_form_works_without_javascript(client, make_user):
    """A browser without JS posts the form as application/x-www-form-urlencoded."""
    make_user("alice", PASSWORD)
    page = parse(client.get("/login").get_data(as_text=True))
    fields = {i["name"]: ("alice" if i["name"] == "username" else PASSWORD) for i in page.inputs if "name" in i}
    response = client.post(page.forms[0]["action"], data=fields)
    assert response.status_code == 200
    assert response.get_json()["token"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("asset, mimetype", [
    ("/static/login.js", "text/javascript"), ("/static/login.css", "text/css"),
    ("/static/account.js", "text/javascript"), ("/static/webauthn.js", "text/javascript"),
])
def test_static_assets_are_served(client, asset, mimetype):
    response = client.get(asset)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    response.close()


def test_the_script_uses_no_eval_or_inline_html(client):
    response = client.get("/static/login.js")
    source = response.get_data(as_text=True)
    response.close()
    for forbidden in ("eval(", "innerHTML", "new Function", "document.write"):
        assert forbidden not in source

