"""Attacks through request input: login bodies of every JSON type, MySQL's string-to-number
comparison, SQL injection in every field and path id, oversized bodies, password
guessing until 429, and self-promotion at registration."""
import json
import secrets
from urllib.parse import quote

import pytest

import db
from support import bearer
from forge import assert_error, assert_safe
from accounts import auth, throttle, tokens
from rest import rate_limits

INVALID = {"status_code": 401, "error": "Bad Request", "description": "Invalid credentials"}
LOGIN_PATHS = ["/auth", "/login"]


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def user_count(app):
    with app.app_context():
        count = db.one("SELECT COUNT(*) AS n FROM user")["n"]
        db.close_db()
    return count


# --- login bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", LOGIN_PATHS)
@pytest.mark.parametrize("raw, description", [
    ("[]", "The JSON body must be an object."),
    ('"s"', "The JSON body must be an object."),
    ("null", "The JSON body must be an object."),
    ("0", "The JSON body must be an object."),
    ("-1.5e300", "The JSON body must be an object."),
    ("true", "The JSON body must be an object."),
    ("false", "The JSON body must be an object."),
    ('[{"username": "alice", "password": "x"}]', "The JSON body must be an object."),
    ('{"username": "alice", "password": ', "The body is not valid JSON."),
    ("", None),
])
def test_login_body_not_an_object(client, alice, path, raw, description):
    """Login bodies that are JSON but not an object (or not JSON at all): a 400, never a 500."""
    response = client.post(path, data=raw, content_type="application/json")
    body = assert_error(response, 400 if raw else response.status_code, description=description)
    if not raw:  # an empty JSON body is "no credentials"
        assert response.status_code in (400, 401), body


FIELD_VALUES = [0, 1, -1, 1.5, 1e308, True, False, [], ["alice"], {}, {"$ne": None},
                {"username": "alice"}, [[["deep"]]]]


@pytest.mark.parametrize("path", LOGIN_PATHS)
@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", FIELD_VALUES, ids=repr)
def test_login_field_of_the_wrong_type(client, alice, path, field, value):
    """Numbers, booleans, arrays and objects in each login field: 400 naming the field."""
    body = {"username": "alice", "password": alice["password"], field: value}
    response = client.post(path, json=body)
    assert_error(response, 400, "Bad Request", f"'{field}' must be a string.")
    assert response.get_json()["field"] == field


@pytest.mark.parametrize("path", LOGIN_PATHS)
@pytest.mark.parametrize("body", [{}, {"username": None, "password": None},
                                  {"username": "", "password": ""}, {"username": "alice"},
                                  {"password": "x"}], ids=json.dumps)
def test_login_fields_missing_null_or_empty(client, alice, path, body):
    """Missing, null or empty credentials: Flask-JWT's 401 Invalid credentials."""
    response = client.post(path, json=body)
    assert_error(response, 401, "Bad Request", "Invalid credentials")


def test_username_zero(client, app, make_user):
    """username 0: MySQL compares a string column to a number as floats, so `'alice' = 0` is true."""
    for name in ("alice", "bob", "0abc"):
        make_user(name)
    with app.app_context():
        # The trap is real on this server...
        assert db.one("SELECT COUNT(*) AS n FROM user WHERE username = 0")["n"] == 3
        # ...and authenticate() never walks into it.
        assert auth.authenticate(0, "correct-horse-battery") is None
        assert auth.authenticate(0.0, "correct-horse-battery") is None
        assert auth.authenticate("0", "correct-horse-battery") is None
        db.close_db()
    for path in LOGIN_PATHS:
        response = client.post(path, json={"username": 0, "password": "correct-horse-battery"})
        assert_error(response, 400, "Bad Request", "'username' must be a string.")
        response = client.post(path, json={"username": "0", "password": "correct-horse-battery"})
        assert response.get_json() == INVALID
    response = client.post("/login", data={"username": "0", "password": "correct-horse-battery"})
    assert response.get_json() == INVALID
    response = client.post("/login", auth=("0", "correct-horse-battery"))
    assert response.get_json() == INVALID


# --- SQL injection --------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1", "' OR 1=1 -- ", "alice' -- ", "alice'#", '" OR ""="', "admin'/*",
    "1; DROP TABLE user; --", "' UNION SELECT id, username, password, is_admin, token_version FROM user -- ",
    "1 OR 1=1", "' OR SLEEP(3) -- ", "%", "_", "\\", "alice\\' -- ", "alice\x00", "ａｌｉｃｅ' -- ",
]


def _login_json(client, ctx, value, field):
    body = {"username": "alice", "password": ctx["password"], field: value}
    return client.post("/auth", json=body), {401}


def _login_form(client, ctx, value, field):
    body = {"username": "alice", "password": ctx["password"], field: value}
    return client.post("/login", data=body), {401}


def _login_basic(client, ctx, value, field):
    credentials = {"username": "alice", "password": ctx["password"], field: value}
    if field == "username" and ":" in value:
        return client.post("/login", auth=(value.replace(":", ""), ctx["password"])), {401}
    return client.post("/login", auth=(credentials["username"], credentials["password"])), {401}


def _register(client, ctx, value, field):
    body = {"username": "newcomer", "password": "a fine long passphrase", field: value}
    return client.post("/register", json=body), {201, 400, 422}


def _refresh(client, ctx, value, field):
    return client.post("/refresh", json={"refresh_token": value}), {401}


def _update_user(client, ctx, value, field):
    names = {"username": "username", "password": "current_password"}
    body = {names[field]: value}
    if field == "password":
        body["password"] = "a fine long passphrase"
    return client.patch(f"/users/{ctx['id']}", json=body, headers=bearer(ctx["token"])), {
        200, 400, 403, 409, 422}


def _create(path_template, defaults):
    def call(client, ctx, value, field):
        body = dict(defaults, **{field: value})
        response = client.post(path_template.format(id=ctx["id"]), json=body,
                               headers=bearer(ctx["token"]))
        if response.status_code == 201:  # stored and read back verbatim: it was only ever data
            assert response.get_json()[field] == value
        return response, {201, 400, 422}
    return call


def _path_id(template, method="GET"):
    def call(client, ctx, value, field):
        path = template.format(quote(value, safe=""))
        return client.open(path, method=method, headers=bearer(ctx["token"])), {404}
    return call


def _query(path, name, allowed=frozenset({400})):
    def call(client, ctx, value, field):
        return client.get(path, query_string={name: value}, headers=bearer(ctx["token"])), allowed
    return call


TARGETS = {
    "auth-json": _login_json, "login-form": _login_form, "login-basic": _login_basic,
    "register": _register, "refresh": _refresh, "update-user": _update_user,
    "create-post": _create("/users/{id}/posts", {"title": "t", "body": "b"}),
    "create-author": _create("/authors", {"name": "n", "book": "b", "country": "c"}),
    "users/<id>": _path_id("/users/{}"), "users/<id>/posts": _path_id("/users/{}/posts"),
    "posts/<id>": _path_id("/users/1/posts/{}"), "authors/<id>": _path_id("/authors/{}"),
    "sessions/<id>": _path_id("/sessions/{}", "DELETE"),
    # A cursor is base64url: junk around valid characters may decode to some id (a 200 page).
    "?cursor": _query("/users", "cursor", {200, 400}), "?limit": _query("/users", "limit"),
    "?user_id": _query("/sessions", "user_id"),
}


LOGIN_TARGETS = ("auth-json", "login-form", "login-basic")
FIELDS = {t: ("username", "password") for t in LOGIN_TARGETS + ("register", "update-user")}
FIELDS.update({"create-post": ("title", "body"), "create-author": ("name", "book", "country")})
TARGET_FIELDS = [(t, f) for t in TARGETS for f in FIELDS.get(t, ("value",))]


@pytest.mark.parametrize("target, field", TARGET_FIELDS)
@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
def test_sql_injection_in_every_field_and_path_id(client, app, alice, target, field, value):
    """SQL injection strings in every login/registration/update field, path id and query id."""
    with app.app_context():  # a genuine token without a login's argon2 cost
        token = tokens.issue(auth.User(alice["id"], "alice", False, 0), tokens.ACCESS, 600)
    ctx = dict(alice, token=token)
    before = user_count(app)
    response, allowed = TARGETS[target](client, ctx, value, field)
    if target in LOGIN_TARGETS and field == "username" and value == "alice\x00":
        allowed = {200}  # see below: alice herself
    assert_safe(response, echoed=[value] if target.startswith("create-") else [])
    assert response.status_code in allowed, (response.status_code, response.get_json())
    if response.status_code >= 400:
        assert set(response.get_json()) <= {"status_code", "error", "description", "field"}
    # Nothing dropped, nobody logged in as someone else, no extra rows but a real registration.
    assert user_count(app) == before + (target == "register" and response.status_code == 201)
    if response.status_code == 200 and target in ("auth-json", "login-form", "login-basic"):
        # Only alice, with her own password, under a name her collation equates
        # to 'alice' (utf8mb4_unicode_ci ignores NUL): never another account.
        assert field == "username" and value == "alice\x00"
        assert client.get("/auth", headers=bearer(response.get_json()["access_token"])
                          ).get_json()["user"]["id"] == alice["id"]
    if target == "?cursor" and response.status_code == 200:
        assert [u["id"] for u in response.get_json()["users"]] in ([], [alice["id"]])


# --- oversized input ------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


@pytest.mark.parametrize("path, kind", [
    ("/auth", "json"), ("/login", "form"), ("/login", "json"), ("/register", "json"),
    ("/refresh", "json"), ("/users/1/posts", "json"), ("/rest-auth", "json"),
])
def test_ten_megabyte_body(client, alice, login, path, kind):
    """A 10 MB body is refused with 413 by the app (MAX_CONTENT_LENGTH) before it is parsed."""
    headers = bearer(login("alice", alice["password"]))
    path = path.replace("/users/1/", f"/users/{alice['id']}/")
    if kind == "json":
        data = '{"username": "alice", "password": "' + "x" * TEN_MB + '"}'
        response = client.post(path, data=data, content_type="application/json", headers=headers)
    else:
        response = client.post(path, data="username=alice&password=" + "x" * TEN_MB,
                               content_type="application/x-www-form-urlencoded", headers=headers)
    if path == "/rest-auth":  # GET-only route: the method is refused before the body matters
        assert_error(response, 405, "Method Not Allowed")
        return
    assert_error(response, 413, "Request Entity Too Large")


# --- guessing -------------------------------------------------------------------------------

def test_repeated_failed_logins_reach_429(make_app, make_user):
    """Password guessing: after LOGIN_FREE_FAILURES failures the account answers 429, even to the right password."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_KEY_PREFIX="sec-" + secrets.token_hex(6),
                   RATELIMIT_LOGIN="1000/minute")
    user = make_user("alice")
    client = app.test_client()
    free = app.config["LOGIN_FREE_FAILURES"]
    for name in ("alice", "nobody"):  # a known and an unknown account behave alike
        for guess in range(free):
            response = client.post("/auth", json={"username": name, "password": f"guess-{guess}"})
            assert response.get_json() == INVALID
        for password in ("guess-x", user["password"]):
            response = client.post("/auth", json={"username": name, "password": password})
            body = assert_error(response, 429, "Too Many Requests", rate_limits.TOO_MANY)
            assert "access_token" not in body
            assert 1 <= int(response.headers["Retry-After"]) <= 2


def test_guessing_the_current_password_with_a_stolen_token(make_app, make_user):
    """A stolen access token guessing current_password (to take the account over) meets the same delay."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_KEY_PREFIX="sec-" + secrets.token_hex(6))
    user = make_user("alice")
    client = app.test_client()
    token = client.post("/auth", json={"username": "alice", "password": user["password"]}
                        ).get_json()["access_token"]
    free = app.config["LOGIN_FREE_FAILURES"]
    for guess in range(free):
        response = client.patch(f"/users/{user['id']}", headers=bearer(token), json={
            "password": "a new passphrase 123", "current_password": f"guess-{guess}"})
        assert_error(response, 403, "Forbidden", "'current_password' is not correct.")
    response = client.patch(f"/users/{user['id']}", headers=bearer(token), json={
        "password": "a new passphrase 123", "current_password": user["password"]})
    assert_error(response, 429, "Too Many Requests", rate_limits.TOO_MANY)
    assert client.post("/auth", json={"username": "alice", "password": "a new passphrase 123"}
                       ).status_code in (401, 429)


def test_per_ip_limit_stops_spraying_many_accounts(make_app, make_user):
    """Password spraying: one guess each against many accounts from one address meets the per-IP limit."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_KEY_PREFIX="sec-" + secrets.token_hex(6),
                   RATELIMIT_LOGIN="5/minute")
    client = app.test_client()
    statuses = [client.post("/auth", json={"username": f"user{n}", "password": "Summer2024!"}
                            ).status_code for n in range(7)]
    assert statuses == [401] * 5 + [429] * 2


# --- privilege escalation at registration -----------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("admin", True), ("admin", "true"), ("admin", 1), ("is_admin", True), ("role", "admin"),
    ("id", 1), ("password_hash", "$argon2id$v=19$m=19456,t=2,p=1$x$y"),
])
@pytest.mark.parametrize("path", ["/register", "/signup", "/users"])
def test_registering_with_admin_true(client, app, path, field, value):
    """Registration that tries to set admin (or id, or a hash): 400 naming the field, no account."""
    body = {"username": "mallory", "password": "a fine long passphrase", field: value}
    response = client.post(path, json=body)
    assert_error(response, 400, "Bad Request", f"'{field}' cannot be set here.")
    assert response.get_json()["field"] == field
    assert user_count(app) == 0
