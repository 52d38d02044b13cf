"""Where a token may travel: Authorization (always), x-access-tokens (seed 000), ?token= (seed 001).

TOKEN_LOCATIONS is the one list. Default: authorization, x-access-tokens.
The query string is off by default (tokens in URLs end up in logs).
"""
import pytest

from support import bearer

PASSWORD = "correct-horse-battery"


@pytest.fixture
def token(make_user, login):
    make_user("alice", PASSWORD)
    return login("alice", PASSWORD)


def test_default_locations(app):
    assert app.config["TOKEN_LOCATIONS"] == ["authorization", "x-access-tokens"]


@pytest.mark.parametrize("scheme", ["Bearer", "JWT", "bearer", "jwt"])
def test_authorization_header(client, token, scheme):
    response = client.get("/rest-auth", headers=bearer(token, scheme))
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "alice"


def test_x_access_tokens_header_works_by_default(client, token):
    response = client.get("/rest-auth", headers={"x-access-tokens": token})
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "alice"


def test_x_access_tokens_header_off(make_app, token):
    client = make_app(TOKEN_LOCATIONS=["authorization"]).test_client()
    response = client.get("/rest-auth", headers={"x-access-tokens": token})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Authorization Required"
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 200


def test_query_token_is_off_by_default(client, token):
    response = client.get("/rest-auth", query_string={"token": token})
    assert response.status_code == 401
    assert response.get_json() == {
        "status_code": 401, "error": "Authorization Required",
        "description": "Request does not contain an access token",
    }
    assert "WWW-Authenticate" in response.headers


def test_query_token_when_turned_on(make_app, token):
    client = make_app(TOKEN_LOCATIONS=["authorization", "x-access-tokens", "query"]).test_client()
    response = client.get("/rest-auth", query_string={"token": token})
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "alice"
    # seed 001's dashboard route, the way seed 001 calls it
    response = client.get("/auth", query_string={"token": token})
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "alice"


def test_query_token_when_on_still_rejects_a_bad_token(make_app, token):
    client = make_app(TOKEN_LOCATIONS=["query"]).test_client()
    response = client.get("/rest-auth", query_string={"token": token[:-2] + "xx"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Invalid token"


def test_only_query_turns_the_headers_off(make_app, token):
    client = make_app(TOKEN_LOCATIONS=["query"]).test_client()
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 401
    assert client.get("/rest-auth", headers={"x-access-tokens": token}).status_code == 401


@pytest.mark.parametrize("value", ["", "   ", "two parts"])
def test_malformed_x_access_tokens_is_401(client, token, value):
    response = client.get("/rest-auth", headers={"x-access-tokens": value})
    assert response.status_code == 401
    assert response.get_json()["status_code"] == 401


def test_x_access_tokens_on_a_user_route(client, token):
    response = client.get("/users", headers={"x-access-tokens": token})
    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()["users"]] == ["alice"]
