"""Introspection (RFC 7662), revocation (RFC 7009) and the metadata document (RFC 8414)."""
import sys

import pytest

from support import ROOT, assert_error, bearer

sys.path.insert(0, str(ROOT / "docs"))  # the documented client
from dpop_client import DPoPKey  # noqa: E402

INACTIVE = {"active": False}


def _pat(client, headers, scopes, name="gateway"):
    response = client.post("/tokens", json={"name": name, "scopes": scopes}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


@pytest.fixture
def gateway(client, people):
    """Headers of an admin-made PAT holding `introspect`."""
    return bearer(_pat(client, people.admin.headers, ["introspect"]))


def _tokens(client, user):
    response = client.post("/auth", json={"username": user.username, "password": user.password})
    return response.get_json()


def introspect(client, headers, token, **form):
    response = client.post("/introspect", data={"token": token, **form}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


# --- introspection -------------------------------------------------------------------

def test_a_live_access_token_of_another_user_is_described(client, people, gateway):
    body = _tokens(client, people.bob)
    answer = introspect(client, gateway, body["access_token"])
    assert answer["active"] is True
    assert answer["sub"] == str(people.bob.id) and answer["username"] == "bob"
    assert answer["token_type"] == "Bearer" and answer["token_use"] == "access"
    assert answer["scope"].split() == ["posts:read", "posts:write", "authors:read", "authors:write",
                                       "users:read", "users:write"]
    assert answer["exp"] > answer["iat"] and "cnf" not in answer


def test_a_refresh_token_is_live_until_it_is_exchanged(client, people, gateway):
    body = _tokens(client, people.bob)
    answer = introspect(client, gateway, body["refresh_token"], token_type_hint="refresh_token")
    assert answer["active"] is True and answer["token_use"] == "refresh"
    assert client.post("/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 200
    assert introspect(client, gateway, body["refresh_token"]) == INACTIVE


def test_a_personal_token_is_described_with_its_scopes(client, people, gateway):
    token = _pat(client, people.bob.headers, ["posts:read", "authors:read"], name="ci")
    answer = introspect(client, gateway, token, token_type_hint="access_token")
    assert answer["active"] is True and answer["token_use"] == "personal"
    assert answer["scope"] == "authors:read posts:read" and answer["username"] == "bob"


def test_a_dpop_bound_token_shows_its_confirmation(client, people, gateway):
    key = DPoPKey()
    response = client.post("/auth", json={"username": "bob", "password": people.bob.password},
                           headers={"DPoP": key.proof("POST", "http://localhost/auth")})
    answer = introspect(client, gateway, response.get_json()["access_token"])
    assert answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": key.jkt}


def test_revoked_expired_forged_and_unknown_tokens_are_just_inactive(client, people, gateway):
    body = _tokens(client, people.bob)
    assert client.post("/logout", headers=bearer(body["access_token"])).status_code == 204
    pat = _pat(client, people.bob.headers, ["posts:read"], name="gone")
    client.post("/revoke", data={"token": pat})
    forged = body["access_token"][:-4] + "AAAA"
    for token in (body["access_token"], body["refresh_token"], pat, forged, "nonsense",
                  "jwtapi_pat_" + "0" * 49, "x" * 5000):
        assert introspect(client, gateway, token) == INACTIVE


def test_introspection_needs_the_introspect_scope(client, people):
    body = _tokens(client, people.bob)
    no_scope = bearer(_pat(client, people.admin.headers, ["users:read"]))
    response = client.post("/introspect", data={"token": body["access_token"]}, headers=no_scope)
    assert_error(response, 403, "insufficient_scope")
    assert 'scope="introspect"' in response.headers["WWW-Authenticate"]
    # An admin's login token has no scopes: a gateway needs its own PAT.
    assert_error(client.post("/introspect", data={"token": body["access_token"]},
                             headers=people.admin.headers), 403, "insufficient_scope")
    # A user cannot ask about another user's token at all.
    assert_error(client.post("/introspect", data={"token": body["access_token"]},
                             headers=people.alice.headers), 403, "insufficient_scope")
    assert_error(client.post("/introspect", data={"token": body["access_token"]}), 401)


def test_introspection_ends_with_the_admin_flag(client, people):
    gateway = bearer(_pat(client, people.admin.headers, ["introspect"]))
    other_admin = client.post("/users", json={"username": "root2", "password": "another-long-password"})
    assert other_admin.status_code == 201
    assert client.patch(f"/users/{people.admin.id}", json={"admin": False}, headers=people.admin.headers
                        ).status_code == 200
    assert_error(client.post("/introspect", data={"token": "x"}, headers=gateway), 401)


@pytest.mark.parametrize("kwargs,status", [
    ({"data": {}}, 400),
    ({"data": {"token": ""}}, 400),
    ({"json": {"token": "x"}}, 415),
])
def test_a_bad_introspection_request_is_a_clear_error(client, gateway, kwargs, status):
    assert_error(client.post("/introspect", headers=gateway, **kwargs), status)


# --- revocation ----------------------------------------------------------------------

def test_revoking_an_access_token_ends_only_that_token(client, people):
    body = _tokens(client, people.bob)
    response = client.post("/revoke", data={"token": body["access_token"], "token_type_hint": "access_token"})
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Cache-Control"] == "no-store"
    assert_error(client.get("/rest-auth", headers=bearer(body["access_token"])), 401)
    assert client.post("/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 200


def test_revoking_a_refresh_token_ends_its_session(client, people):
    body = _tokens(client, people.bob)
    assert client.post("/revoke", data={"token": body["refresh_token"]}).status_code == 200
    assert_error(client.post("/refresh", json={"refresh_token": body["refresh_token"]}), 401)
    assert_error(client.get("/rest-auth", headers=bearer(body["access_token"])), 401)


def test_revoking_a_personal_token_deletes_it(client, people):
    token = _pat(client, people.bob.headers, ["posts:read"])
    assert client.post("/revoke", data={"token": token, "token_type_hint": "refresh_token"}).status_code == 200
    assert_error(client.get("/rest-auth", headers=bearer(token)), 401)
    assert client.get("/tokens", headers=people.bob.headers).get_json()["tokens"] == []


@pytest.mark.parametrize("token", ["unknown", "jwtapi_pat_" + "0" * 49, "a.b.c"])
def test_revoking_an_unknown_token_is_200(client, token):
    response = client.post("/revoke", data={"token": token, "token_type_hint": "whatever"})
    assert response.status_code == 200 and response.data == b""


def test_revocation_without_a_token_is_400(client):
    assert_error(client.post("/revoke", data={}), 400, "invalid_request", field="token")


# --- metadata ------------------------------------------------------------------------

def test_the_metadata_document_points_at_everything(client):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["issuer"] == "http://localhost"
    assert doc["jwks_uri"] == "http://localhost/.well-known/jwks.json"
    assert doc["token_endpoint"] == "http://localhost/auth"
    assert doc["introspection_endpoint"] == "http://localhost/introspect"
    assert doc["revocation_endpoint"] == "http://localhost/revoke"
    assert doc["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256", "PS256"]
    assert "introspect" in doc["scopes_supported"]
    for url in ("jwks_uri", "service_documentation"):
        assert client.get(doc[url].removeprefix("http://localhost")).status_code == 200


def test_the_issuer_is_jwt_issuer_when_set(make_app):
    doc = make_app(JWT_ISSUER="https://auth.example.com").test_client().get(
        "/.well-known/oauth-authorization-server").get_json()
    assert doc["issuer"] == "https://auth.example.com"


def test_expired_tokens_are_just_inactive(client, app, people, gateway):
    from accounts import tokens
    from accounts.users import User
    from support import query
    with app.app_context():
        expired_jwt = tokens.issue(User(people.bob.id, "bob", False, 0), tokens.ACCESS, -60)
    pat = _pat(client, people.bob.headers, ["posts:read"], name="old")
    query(app, "UPDATE personal_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE name = 'old'")
    assert introspect(client, gateway, expired_jwt) == INACTIVE
    assert introspect(client, gateway, pat) == INACTIVE
