"""Request bodies that used to reach a 500: lone surrogates, deep nesting, NaN and 1e400.

Each is a 400 in the JSON error shape, naming the field when one is to blame
(rest/json_body.py; docs/security.md, "Request input"). Query strings, forms,
paths and headers cannot carry a surrogate (Werkzeug decodes them with
replacement): tested here too, as never a 5xx.
"""
import base64
import json
import re

import pytest

from support import assert_error, bearer

PASSWORD = "correct-horse-battery"
DEEP = "[" * 30000
NESTED = "JSON nested deeper than 32 levels."


@pytest.fixture
def alice(make_user, login):
    user = make_user("alice", PASSWORD)
    user["headers"] = bearer(login("alice", PASSWORD))
    return user


def post_raw(client, path, text, method="POST", headers=None):
    """Send `text` as it is (json.dumps would never write a lone surrogate escape)."""
    return client.open(path, method=method, data=text.encode("utf-8"),
                       content_type="application/json", headers=headers or {})


# --- lone surrogates: the endpoints the attacker named, each field -----------------------

SURROGATE_CASES = [
    ("/auth", '{"username": "al\\ud800ice", "password": "correct-horse-battery"}', "username"),
    ("/auth", '{"username": "alice", "password": "pass\\udfffword-long"}', "password"),
    ("/login", '{"username": "al\\ud800ice", "password": "correct-horse-battery"}', "username"),
    ("/login", '{"username": "alice", "password": "\\ud800"}', "password"),
    ("/users", '{"username": "carol", "password": "a-long-\\ud800-password"}', "password"),
    ("/register", '{"username": "car\\udc00ol", "password": "a-long-password-1"}', "username"),
    ("/signup", '{"username": "carol", "password": "a-long-password-1", "email": "c\\ud800@example.com"}',
     "email"),
    ("/refresh", '{"refresh_token": "eyJ\\ud800"}', "refresh_token"),
]


@pytest.mark.parametrize(("path", "text", "field"), SURROGATE_CASES,
                         ids=[f"{path} {field}" for path, _, field in SURROGATE_CASES])
def test_a_lone_surrogate_is_a_400_naming_the_field(client, alice, path, text, field):
    """A lone UTF-16 surrogate cannot be encoded as UTF-8: the hash and the driver crashed on it."""
    response = post_raw(client, path, text)
    assert_error(response, 400, "Bad Request", f"'{field}' must be valid Unicode text.", field=field)


@pytest.mark.parametrize("field", ["username", "password", "current_password"])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_lone_surrogate_in_a_user_update(client, alice, method, field):
    text = '{"%s": "x\\ud800y", "current_password": "%s"}' % (field, PASSWORD) \
        if field != "current_password" else '{"password": "a-new-long-password", "current_password": "\\ud800"}'
    response = post_raw(client, f"/users/{alice['id']}", text, method=method, headers=alice["headers"])
    assert_error(response, 400, "Bad Request", f"'{field}' must be valid Unicode text.", field=field)


def test_the_account_is_untouched_after_a_refused_update(client, alice):
    post_raw(client, f"/users/{alice['id']}", '{"username": "\\ud800"}', method="PATCH", headers=alice["headers"])
    assert client.get(f"/users/{alice['id']}", headers=alice["headers"]).get_json()["username"] == "alice"


@pytest.mark.parametrize(("text", "field"), [
    ('{"credential": {"response": {"clientDataJSON": "\\udbff"}}}', "credential.response.clientDataJSON"),
    ('{"username": ["ok", "\\ud800"]}', "username[1]"),
    ('{"a": [{"b": [0, {"c": "\\udc00"}]}]}', "a[0].b[1].c"),
])
def test_a_nested_string_is_named_by_its_key_path(client, text, field):
    response = post_raw(client, "/webauthn/login/verify", text)
    assert_error(response, 400, "Bad Request", f"'{field}' must be valid Unicode text.", field=field)


@pytest.mark.parametrize(("text", "description", "field"), [
    ('{"\\ud800": "x"}', "The JSON body has a key that is not valid Unicode text.", None),
    ('{"username": {"\\ud800": 1}}', "'username' has a key that is not valid Unicode text.", "username"),
    ('"\\ud800"', "The JSON body must be valid Unicode text.", None),
])
def test_a_bad_key_names_the_body_or_the_object_holding_it(client, text, description, field):
    assert_error(post_raw(client, "/auth", text), 400, "Bad Request", description, field=field)


def test_an_encoded_surrogate_is_not_utf8(client):
    """The same surrogate as raw UTF-8-style bytes: json.loads(bytes) would let it through."""
    response = client.post("/auth", data=b'{"username": "\xed\xa0\x80", "password": "x"}',
                           content_type="application/json")
    assert_error(response, 400, "Bad Request", "The body is not valid UTF-8 text.", field=None)


def test_an_escaped_surrogate_pair_is_one_character_and_welcome(client, alice):
    """A pair ("\\ud83d\\ude00") is how JSON escapes an emoji: stored and read back as one."""
    path = f"/users/{alice['id']}/posts"
    response = post_raw(client, path, '{"title": "smile \\ud83d\\ude00", "body": "b"}', headers=alice["headers"])
    assert response.status_code == 201, response.get_json()
    read = client.get(f"{path}/{response.get_json()['id']}", headers=alice["headers"])
    assert read.get_json()["title"] == "smile \U0001F600"


# --- nesting --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/auth", "/login", "/users", "/register", "/refresh", "/password/forgot"])
@pytest.mark.parametrize("text", [DEEP, '{"a":' * 10000, "[" * 33 + "]" * 33, '{"username":' + "[" * 32 + "]" * 32 + "}"])
def test_deep_nesting_is_a_400(client, path, text):
    """30,000 '[' was a RecursionError (500); anything past 32 levels is refused before parsing."""
    assert_error(post_raw(client, path, text), 400, "Bad Request", NESTED, field=None)


def test_32_levels_are_parsed(client):
    """The cap is 32: a body at exactly 32 levels reaches the view, which judges its fields."""
    text = '{"username":' + "[" * 31 + "]" * 31 + ', "password": "x"}'
    assert_error(post_raw(client, "/auth", text), 400, "Bad Request", "'username' must be a string.",
                 field="username")


def test_brackets_inside_strings_do_not_count(client):
    text = json.dumps({"username": "[" * 500 + "{" * 500, "password": '\\"[[[[' + "]" * 50})
    response = post_raw(client, "/auth", text)
    assert_error(response, 401, description="Invalid credentials")


def test_deep_nesting_on_every_body_route(app, client, alice):
    """Every route that takes a body, with a valid token: never a 5xx, and the routes reading JSON say why."""
    answered = {}
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            if rule.rule.startswith(("/logout", "/users/<id:user_id>")) and method in ("POST", "DELETE"):
                continue  # they end the session or the account the next routes need
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>",
                          lambda m: str(alice["id"]) if m.group(1) in ("uid", "user_id") else "1", rule.rule)
            response = post_raw(client, path, DEEP, method=method, headers=alice["headers"])
            assert response.status_code < 500, (method, path, response.get_json())
            if response.status_code >= 400:
                assert_error(response, response.status_code)
                answered[method, rule.rule] = response.get_json()["description"]
    refused = sorted(route for route, description in answered.items() if description == NESTED)
    assert len(refused) >= 25, refused
    for route in [("POST", "/auth"), ("POST", "/login"), ("POST", "/users"), ("POST", "/refresh"),
                  ("PATCH", "/users/<id:user_id>"), ("POST", "/users/<id:uid>/posts"),
                  ("POST", "/webauthn/login/verify"), ("POST", "/tokens")]:
        assert route in refused, route


@pytest.mark.parametrize(("path", "status", "description"), [
    ("/webauthn/login/verify", 401, "The passkey could not be verified."),
    ("/webauthn/register/verify", 422, "The passkey was not registered: The passkey could not be verified."),
])
def test_deep_json_inside_a_passkeys_base64_is_refused(client, alice, path, status, description):
    """clientDataJSON is JSON inside base64, out of the body parser's sight: 30,000 '[' was a 500 there."""
    client_data = base64.urlsafe_b64encode(b"[" * 30000).rstrip(b"=").decode()
    credential = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                  "response": {"clientDataJSON": client_data, "attestationObject": "oA",
                               "authenticatorData": "AAAA", "signature": "AAAA"}}
    response = client.post(path, json=credential, headers=alice["headers"])
    assert_error(response, status, description=description)


# --- what json.loads reads but JSON is not ---------------------------------------------------

@pytest.mark.parametrize(("literal", "description"), [
    ("NaN", "NaN is not a JSON number."),
    ("Infinity", "Infinity is not a JSON number."),
    ("-Infinity", "-Infinity is not a JSON number."),
    ("1e400", "The number 1e400 is out of range."),
    ("-1e400", "The number -1e400 is out of range."),
])
def test_non_finite_numbers_are_refused(client, literal, description):
    text = '{"username": %s, "password": "x"}' % literal
    assert_error(post_raw(client, "/auth", text), 400, "Bad Request", description, field=None)


@pytest.mark.parametrize("literal", ["-0", "-0.0", "1e308", "1" + "0" * 40])
def test_other_numbers_reach_the_view(client, literal):
    text = '{"username": %s, "password": "x"}' % literal
    assert_error(post_raw(client, "/auth", text), 400, "Bad Request", "'username' must be a string.",
                 field="username")


def test_an_integer_of_5000_digits_is_not_valid_json(client):
    """Python refuses to read an int over 4,300 digits (a ValueError): the usual 400."""
    text = '{"username": %s}' % ("9" * 5000)
    assert_error(post_raw(client, "/auth", text), 400, "Bad Request", "The body is not valid JSON.")


# --- the parses made before the view: rate limiter and PAT scopes ----------------------------------------

@pytest.mark.parametrize(("text", "description", "field"), [
    ('{"email": "a\\ud800@example.com"}', "'email' must be valid Unicode text.", "email"),
    (DEEP, NESTED, None),
    ('{"email": NaN}', "NaN is not a JSON number.", None),
])
def test_the_rate_limiters_own_parse_does_not_crash(make_app, text, description, field):
    """/password/forgot's limit reads the body for the account it names, before the view does."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://").test_client()
    response = post_raw(client, "/password/forgot", text)
    assert_error(response, 400, "Bad Request", description, field=field)


@pytest.mark.parametrize(("text", "description", "field"), [
    ('{"username": "alicia", "password": "\\ud800"}', "'password' must be valid Unicode text.", "password"),
    ('{"username": ' + "[" * 40 + "]" * 40 + "}", NESTED, None),
])
def test_the_scope_checks_own_parse_does_not_crash(client, alice, text, description, field):
    """A PAT's request to /users is read for password fields before the view: a refused body is refused once."""
    created = client.post("/tokens", json={"name": "ci", "scopes": ["users:write"]}, headers=alice["headers"])
    pat = bearer(created.get_json()["token"])
    response = post_raw(client, f"/users/{alice['id']}", text, method="PATCH", headers=pat)
    assert_error(response, 400, "Bad Request", description, field=field)
    assert client.get(f"/users/{alice['id']}", headers=alice["headers"]).get_json()["username"] == "alice"


def test_a_duplicate_key_keeps_the_last_value(client, alice):
    text = '{"username": "nobody", "username": "alice", "password": "%s"}' % PASSWORD
    response = post_raw(client, "/auth", text)
    assert response.status_code == 200 and "access_token" in response.get_json()


# --- other input: decoded with replacement, never a surrogate -------------------------------

def test_a_percent_encoded_surrogate_in_the_query(make_app):
    client = make_app(TOKEN_LOCATIONS=["authorization", "query"]).test_client()
    response = client.get("/rest-auth?token=%ED%A0%80")
    assert_error(response, 401)


def test_a_percent_encoded_surrogate_in_a_login_form(client, alice):
    response = client.post("/login", data=b"username=%ED%A0%80&password=%FF",
                           content_type="application/x-www-form-urlencoded")
    assert_error(response, 401, description="Invalid credentials")


def test_invalid_utf8_in_a_multipart_login_form(client, alice):
    body = (b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\n\xed\xa0\x80\r\n'
            b'--b\r\nContent-Disposition: form-data; name="password"\r\n\r\n\xff\r\n--b--\r\n')
    response = client.post("/login", data=body, content_type="multipart/form-data; boundary=b")
    assert_error(response, 401, description="Invalid credentials")


@pytest.mark.parametrize("path", ["/users/%ED%A0%80", "/sessions/%ED%A0%80", "/docs/assets/%ED%A0%80"])
def test_a_percent_encoded_surrogate_in_the_path(client, alice, path):
    method = "DELETE" if path.startswith("/sessions") else "GET"
    response = client.open(path, method=method, headers=alice["headers"])
    assert_error(response, 404)


@pytest.mark.parametrize("header", ["Authorization", "x-access-tokens", "X-Request-ID", "If-Match"])
def test_latin1_bytes_in_a_header(client, alice, header):
    response = client.get("/rest-auth", headers={header: "Bearer \xed\xa0\x80\xff"})
    assert response.status_code in (200, 401), response.get_json()
    assert response.get_json()["status_code"] if response.status_code == 401 else True
