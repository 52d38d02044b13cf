"""POST /login: HTTP Basic (seed 000), a form (seed 001) and JSON; 401 on failure, never 403."""
import base64

import pytest

from support import bearer
from accounts import tokens

PASSWORD = "correct-horse-battery"
INVALID = {"status_code": 401, "error": "Bad Request", "description": "Invalid credentials"}
BASIC_CHALLENGE = 'Basic realm="Login Required", charset="UTF-8"'


def basic(username, password):
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assert_token_answer(client, app, response, user):
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # /auth's token body (whatever it grows, e.g. a refresh token) plus `token`.
    assert {"access_token", "token_type", "expires_in", "token"} <= set(body)
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["JWT_ACCESS_TTL"]
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        assert tokens.decode(body["token"])["sub"] == str(user["id"])
    answer = client.get("/rest-auth", headers=bearer(body["token"]))
    assert answer.status_code == 200
    assert answer.get_json()["user"] == {"id": user["id"], "username": user["username"]}


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


def test_basic_login(client, app, alice):
    response = client.post("/login", headers=basic("alice", PASSWORD))
    assert_token_answer(client, app, response, alice)


def test_form_login(client, app, alice):
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.request.content_type == "application/x-www-form-urlencoded"
    assert_token_answer(client, app, response, alice)


def test_multipart_form_login(client, app, alice):
    response = client.post("/login", data={"username": "alice", "password": PASSWORD},
                           content_type="multipart/form-data")
    assert_token_answer(client, app, response, alice)


def test_json_login(client, app, alice):
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert_token_answer(client, app, response, alice)


def test_legacy_tutorial_hash_logs_in_through_basic(client, app, make_user):
    roy = make_user("roy", "roy", password_hash="pbkdf2:sha256:150000$k1Ud5dzh$d0347f416e89ea486b33c988c9be65730329b2dd6d712f73c9920103a006a82e")
    assert_token_answer(client, app, client.post("/login", headers=basic("roy", "roy")), roy)


@pytest.mark.parametrize("username, password", [
    ("alice", "wrong-password"), ("nobody", PASSWORD), ("alice", ""), ("", PASSWORD),
])
def test_basic_failure_is_401_with_a_basic_challenge(client, alice, username, password):
    response = client.post("/login", headers=basic(username, password))
    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert "Cache-Control" not in response.headers or response.headers["Cache-Control"] != "public"


def test_no_credentials_at_all_is_a_basic_challenge(client, alice):
    response = client.post("/login")
    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE


@pytest.mark.parametrize("kind", ["form", "json"])
@pytest.mark.parametrize("fields", [
    {"username": "alice", "password": "wrong-password"},
    {"username": "nobody", "password": PASSWORD},
    {"username": "alice"},
    {"password": PASSWORD},
    {},
])
def test_form_and_json_failures_are_401_without_basic_challenge(client, alice, kind, fields):
    if kind == "form":
        response = client.post("/login", data=fields, content_type="application/x-www-form-urlencoded")
    else:
        response = client.post("/login", json=fields)
    assert response.status_code == 401  # not seed 001's 403
    assert response.get_json() == INVALID
    assert "Basic" not in response.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("kind", ["form", "json"])
def test_unknown_fields_are_refused(client, alice, kind):
    fields = {"username": "alice", "password": PASSWORD, "remember": "1"}
    if kind == "form":
        response = client.post("/login", data=fields)
    else:
        response = client.post("/login", json=fields)
    assert response.status_code == 400
    assert response.get_json()["field"] == "remember"


@pytest.mark.parametrize("body, field", [
    ({"username": 1, "password": PASSWORD}, "username"),
    ({"username": "alice", "password": ["x"]}, "password"),
    ({"username": "alice", "password": "p" * 1025}, "password"),
])
def test_json_fields_of_the_wrong_type_are_400(client, alice, body, field):
    response = client.post("/login", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


@pytest.mark.parametrize("kwargs, status", [
    ({"data": "username=alice", "content_type": "text/plain"}, 415),
    ({"data": "{not json", "content_type": "application/json"}, 400),
    ({"data": "[1]", "content_type": "application/json"}, 400),
])
def test_bad_bodies(client, alice, kwargs, status):
    response = client.post("/login", **kwargs)
    assert response.status_code == status
    assert response.get_json()["status_code"] == status


def test_oversized_body_is_413(client):
    response = client.post("/login", data={"username": "alice", "password": "p" * 70_000})
    assert response.status_code == 413
    assert response.get_json()["status_code"] == 413


def test_bearer_header_is_not_a_login(client, alice, login):
    token = login("alice", PASSWORD)
    response = client.post("/login", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_basic_wins_over_a_body(client, app, alice):
    response = client.post("/login", headers=basic("alice", PASSWORD),
                           json={"username": "alice", "password": "wrong-password"})
    assert_token_answer(client, app, response, alice)


def test_get_login_without_credentials_is_the_page(client, alice):
    response = client.get("/login")
    assert response.status_code == 200
    assert response.mimetype == "text/html"


def test_get_login_with_basic_logs_in_like_seed_000(client, app, alice):
    """Seed 000's route took GET and POST; Postman sends GET unless told otherwise."""
    response = client.get("/login", headers=basic("alice", PASSWORD))
    assert_token_answer(client, app, response, alice)


def test_get_login_with_a_wrong_basic_password_is_401(client, alice):
    response = client.get("/login", headers=basic("alice", "wrong-password"))
    assert response.status_code == 401
    assert response.get_json() == INVALID
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE


def test_get_root_with_basic_is_still_the_page(client, alice):
    response = client.get("/", headers=basic("alice", PASSWORD))
    assert response.status_code == 200
    assert response.mimetype == "text/html"


def test_login_answer_is_auth_answer_plus_token(client, alice):
    by_auth = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    by_login = client.post("/login", json={"username": "alice", "password": PASSWORD}).get_json()
    assert set(by_login) == set(by_auth) | {"token"}


@pytest.mark.parametrize("method", ["post", "get"])
def test_basic_login_is_rate_limited_per_ip(make_app, make_user, method):
    """GET /login with Basic goes through the same login limit as POST /login and /auth."""
    make_user("alice", PASSWORD)
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2/minute",
                      RATELIMIT_LOGIN_PER_USER="100/minute", LOGIN_FREE_FAILURES=100).test_client()
    call = getattr(client, method)
    assert [call("/login", headers=basic("alice", PASSWORD)).status_code for _ in range(2)] == [200, 200]
    response = call("/login", headers=basic("alice", PASSWORD))
    assert response.status_code == 429
    assert response.get_json()["status_code"] == 429
    assert int(response.headers["Retry-After"]) >= 1
