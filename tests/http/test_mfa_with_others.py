"""Second factors beside DPoP and personal access tokens.

- the second step of a login with a DPoP proof binds its tokens like /auth does;
- re-authenticating with a DPoP-bound token gives a token bound to the same
  key, never a bearer token (no downgrade);
- creating a personal access token is a step-up operation: a login older than
  STEP_UP_SECONDS is refused; a personal access token reaches no factor route.
"""
import sys
import time

import jwt
import pyotp
import pytest

from support import ROOT, bearer, clear_of_a_totp_step_edge

sys.path.insert(0, str(ROOT / "docs"))  # the documented DPoP client
from dpop_client import DPoPKey  # noqa: E402

BASE = "http://localhost"


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def proof_headers(key, method, path, token=None):
    headers = {"DPoP": key.proof(method, BASE + path, access_token=token)}
    if token is not None:
        headers["Authorization"] = f"DPoP {token}"
    return headers


@pytest.fixture
def alice(make_user, client):
    user = make_user("alice")
    body = client.post("/auth", json={"username": "alice", "password": user["password"]}).get_json()
    user["headers"], user["refresh_token"] = bearer(body["access_token"]), body["refresh_token"]
    return user


def _with_totp(client, user):
    clear_of_a_totp_step_edge()
    secret = client.post("/mfa/totp", headers=user["headers"]).get_json()["secret"]
    code = pyotp.TOTP(secret).at(time.time() - 30)
    assert client.post("/mfa/totp/confirm", headers=user["headers"], json={"code": code}).status_code == 200
    return secret


def test_the_second_step_binds_its_tokens_to_the_dpop_key(client, alice):
    secret = _with_totp(client, alice)
    step = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    key = DPoPKey()
    response = client.post("/auth/mfa", json={"mfa_token": step["mfa_token"], "code": pyotp.TOTP(secret).now()},
                           headers=proof_headers(key, "POST", "/auth/mfa"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    assert claims(body["access_token"])["cnf"] == {"jkt": key.jkt}
    assert claims(body["access_token"])["amr"] == ["pwd", "otp"]


def test_reauth_keeps_the_dpop_binding(client, alice):
    key = DPoPKey()
    login = client.post("/auth", json={"username": "alice", "password": alice["password"]},
                        headers=proof_headers(key, "POST", "/auth")).get_json()
    token = login["access_token"]
    response = client.post("/auth/reauth", json={"password": alice["password"]},
                           headers=proof_headers(key, "POST", "/auth/reauth", token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "DPoP" and claims(body["access_token"])["cnf"] == {"jkt": key.jkt}
    # Sent as a bearer token it is refused: the binding survived.
    assert client.get("/rest-auth", headers=bearer(body["access_token"])).status_code == 401


def test_creating_a_personal_access_token_needs_a_recent_login(client, alice, app):
    with app.app_context():
        import db
        db.execute("UPDATE session_auth SET auth_time = auth_time - 3600")
        db.close_db()
    stale = client.post("/refresh", json={"refresh_token": alice["refresh_token"]}).get_json()
    refused = client.post("/tokens", headers=bearer(stale["access_token"]),
                          json={"name": "ci", "scopes": ["posts:read"]})
    assert refused.status_code == 401 and refused.get_json()["reauth_required"] is True
    fresh = client.post("/auth/reauth", headers=bearer(stale["access_token"]),
                        json={"password": alice["password"]}).get_json()
    created = client.post("/tokens", headers=bearer(fresh["access_token"]),
                          json={"name": "ci", "scopes": ["posts:read"]})
    assert created.status_code == 201, created.get_json()


def test_a_personal_access_token_reaches_no_factor_route(client, alice):
    pat = client.post("/tokens", headers=alice["headers"], json={"name": "ci", "scopes": ["posts:read"]})
    assert pat.status_code == 201, pat.get_json()
    headers = bearer(pat.get_json()["token"])
    for method, path in [("GET", "/mfa"), ("POST", "/mfa/totp"), ("POST", "/mfa/recovery-codes"),
                         ("POST", "/auth/reauth"), ("POST", "/webauthn/register/options"),
                         ("GET", "/webauthn/credentials")]:
        response = client.open(path, method=method, headers=headers, json={})
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["error"] == "insufficient_scope"
