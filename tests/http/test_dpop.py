"""DPoP (RFC 9449) through HTTP: binding at login and refresh, bound tokens at resources, the attacks."""
import sys
import time

import pytest

from accounts import dpop
from support import ROOT, assert_error, bearer, query

sys.path.insert(0, str(ROOT / "docs"))  # the documented client
from dpop_client import DPoPKey  # noqa: E402

BASE = "http://localhost"


def dpop_headers(key, method, path, token=None, **proof):
    headers = {"DPoP": key.proof(method, BASE + path, access_token=token, **proof)}
    if token is not None:
        headers["Authorization"] = f"DPoP {token}"
    return headers


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def dpop_login(client, key, user, path="/auth"):
    response = client.post(path, json={"username": user["username"], "password": user["password"]},
                           headers=dpop_headers(key, "POST", path))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def claims(token):
    import jwt
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize("path", ["/auth", "/login"])
def test_a_proof_at_login_binds_both_tokens_to_the_key(client, alice, path):
    key = DPoPKey()
    body = dpop_login(client, key, alice, path)
    assert body["token_type"] == "DPoP"
    assert claims(body["access_token"])["cnf"] == {"jkt": key.jkt}
    assert claims(body["refresh_token"])["cnf"] == {"jkt": key.jkt}


def test_without_a_proof_tokens_stay_bearer(client, alice):
    body = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims(body["access_token"])
    assert client.get("/rest-auth", headers=bearer(body["access_token"])).status_code == 200


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_a_bound_token_with_a_fresh_proof_reaches_the_resource(client, alice, alg):
    key = DPoPKey(alg)
    token = dpop_login(client, key, alice)["access_token"]
    response = client.get("/rest-auth?x=1", headers=dpop_headers(key, "GET", "/rest-auth", token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["username"] == "alice"


def _refused(response, error="invalid_dpop_proof", status=401):
    body = assert_error(response, status, error)
    if status == 401:
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("DPoP ") and f'error="{error}"' in challenge
        assert 'algs="ES256 EdDSA RS256 PS256"' in challenge
    return body


def test_a_replayed_proof_is_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    headers = dpop_headers(key, "GET", "/rest-auth", token)
    assert client.get("/rest-auth", headers=headers).status_code == 200
    body = _refused(client.get("/rest-auth", headers=headers))
    assert "already used" in body["description"]


def test_a_proof_for_another_method_or_url_is_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    _refused(client.get("/rest-auth", headers=dpop_headers(key, "POST", "/rest-auth", token)))
    _refused(client.get("/rest-auth", headers=dpop_headers(key, "GET", "/auth", token)))


def test_a_proof_from_another_key_is_refused(client, alice):
    key, thief = DPoPKey(), DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    body = _refused(client.get("/rest-auth", headers=dpop_headers(thief, "GET", "/rest-auth", token)))
    assert "another key" in body["description"]


def test_a_proof_with_a_private_key_in_its_header_is_refused(client, alice):
    from jwt.algorithms import ECAlgorithm
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    private = ECAlgorithm.to_jwk(key.private_key, as_dict=True)
    headers = {"Authorization": f"DPoP {token}",
               "DPoP": key.proof("GET", BASE + "/rest-auth", access_token=token, headers={"jwk": private})}
    body = _refused(client.get("/rest-auth", headers=headers))
    assert "secret members" in body["description"]


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hs256_proofs_are_refused(client, alice, alg):
    import base64
    import json

    import jwt
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    claims_ = {"jti": "j", "htm": "GET", "htu": BASE + "/rest-auth", "iat": int(time.time()),
               "ath": dpop.access_token_hash(token)}
    if alg == "none":
        enc = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
        proof = enc({"alg": "none", "typ": "dpop+jwt", "jwk": key.public_jwk}) + "." + enc(claims_) + "."
    else:
        proof = jwt.encode(claims_, "k" * 32, algorithm="HS256",
                           headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "a2traw"}})
    _refused(client.get("/rest-auth", headers={"Authorization": f"DPoP {token}", "DPoP": proof}))


def test_an_old_proof_is_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    old = dpop_headers(key, "GET", "/rest-auth", token, iat=int(time.time()) - 120)
    assert "too old" in _refused(client.get("/rest-auth", headers=old))["description"]


def test_a_proof_without_ath_or_for_another_token_is_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", BASE + "/rest-auth")}
    assert "ath" in _refused(client.get("/rest-auth", headers=headers))["description"]


@pytest.mark.parametrize("how", ["Bearer", "JWT", "x-access-tokens"])
def test_a_bound_token_sent_as_bearer_is_refused(client, alice, how):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    headers = {"x-access-tokens": token} if how == "x-access-tokens" else bearer(token, how)
    headers["DPoP"] = key.proof("GET", BASE + "/rest-auth", access_token=token)
    _refused(client.get("/rest-auth", headers=headers), error="invalid_token")


def test_a_bound_token_without_a_proof_is_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    _refused(client.get("/rest-auth", headers={"Authorization": f"DPoP {token}"}))


def test_an_unbound_token_under_the_dpop_scheme_is_refused(client, alice, login):
    token = login("alice", alice["password"])
    key = DPoPKey()
    _refused(client.get("/rest-auth", headers=dpop_headers(key, "GET", "/rest-auth", token)),
             error="invalid_token")


def test_two_dpop_headers_are_refused(client, alice):
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    headers = [("Authorization", f"DPoP {token}"),
               ("DPoP", key.proof("GET", BASE + "/rest-auth", access_token=token)),
               ("DPoP", key.proof("GET", BASE + "/rest-auth", access_token=token))]
    _refused(client.get("/rest-auth", headers=headers))


def test_a_bad_proof_at_login_is_400_and_issues_nothing(client, app, alice):
    key = DPoPKey()
    response = client.post("/auth", json={"username": "alice", "password": alice["password"]},
                           headers={"DPoP": key.proof("POST", BASE + "/login")})
    body = assert_error(response, 400, "invalid_dpop_proof")
    assert "htu" in body["description"]
    assert query(app, "SELECT id FROM refresh_family") == []


# --- refresh ---------------------------------------------------------------------------

def test_a_bound_refresh_token_refreshes_with_a_proof_from_its_key(client, alice):
    key = DPoPKey()
    first = dpop_login(client, key, alice)
    response = client.post("/refresh", json={"refresh_token": first["refresh_token"]},
                           headers=dpop_headers(key, "POST", "/refresh"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "DPoP" and claims(body["access_token"])["cnf"] == {"jkt": key.jkt}


def test_a_bound_refresh_token_with_another_key_is_refused_and_stays_usable(client, alice):
    key, thief = DPoPKey(), DPoPKey()
    first = dpop_login(client, key, alice)
    stolen = client.post("/refresh", json={"refresh_token": first["refresh_token"]},
                         headers=dpop_headers(thief, "POST", "/refresh"))
    assert "another DPoP key" in assert_error(stolen, 400, "invalid_dpop_proof")["description"]
    without = client.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(without, 400, "invalid_dpop_proof")
    # Nothing was spent: the owner still refreshes.
    mine = client.post("/refresh", json={"refresh_token": first["refresh_token"]},
                       headers=dpop_headers(key, "POST", "/refresh"))
    assert mine.status_code == 200


# --- settings ----------------------------------------------------------------------------

def test_dpop_required_refuses_bearer_logins_and_tokens(make_app, alice):
    client = make_app(DPOP_REQUIRED=True).test_client()
    response = client.post("/auth", json={"username": "alice", "password": alice["password"]})
    assert "required" in assert_error(response, 400, "invalid_dpop_proof")["description"]
    key = DPoPKey()
    token = dpop_login(client, key, alice)["access_token"]
    assert client.get("/rest-auth", headers=dpop_headers(key, "GET", "/rest-auth", token)).status_code == 200


def test_dpop_required_refuses_an_unbound_access_token(make_app, alice, login):
    token = login("alice", alice["password"])  # issued by the default app, without DPoP
    client = make_app(DPOP_REQUIRED=True).test_client()
    _refused(client.get("/rest-auth", headers=bearer(token)), error="invalid_token")


def test_server_nonces_are_demanded_then_accepted(make_app, alice):
    client = make_app(DPOP_NONCE=True).test_client()
    key = DPoPKey()
    login_body = {"username": "alice", "password": alice["password"]}
    first = client.post("/auth", json=login_body, headers=dpop_headers(key, "POST", "/auth"))
    assert_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    second = client.post("/auth", json=login_body, headers=dpop_headers(key, "POST", "/auth", nonce=nonce))
    assert second.status_code == 200, second.get_json()
    token = second.get_json()["access_token"]
    at_resource = client.get("/rest-auth", headers=dpop_headers(key, "GET", "/rest-auth", token))
    _refused(at_resource, error="use_dpop_nonce")
    assert at_resource.headers["DPoP-Nonce"] == nonce
    ok = client.get("/rest-auth", headers=dpop_headers(key, "GET", "/rest-auth", token, nonce=nonce))
    assert ok.status_code == 200


@pytest.mark.redis
def test_the_replay_cache_is_shared_through_redis(make_app, alice):
    from support import require_redis
    require_redis("redis://127.0.0.1:6379/0", "the shared DPoP replay cache")
    first = make_app(REDIS_URL="redis://127.0.0.1:6379/0").test_client()
    second = make_app(REDIS_URL="redis://127.0.0.1:6379/0").test_client()
    key = DPoPKey()
    token = dpop_login(first, key, alice)["access_token"]
    headers = dpop_headers(key, "GET", "/rest-auth", token)
    assert first.get("/rest-auth", headers=headers).status_code == 200
    _refused(second.get("/rest-auth", headers=headers))


def test_the_replay_cache_is_shared_through_the_database(make_app, app, alice):
    first, second = make_app().test_client(), make_app().test_client()
    key = DPoPKey()
    token = dpop_login(first, key, alice)["access_token"]
    headers = dpop_headers(key, "GET", "/rest-auth", token)
    assert first.get("/rest-auth", headers=headers).status_code == 200
    _refused(second.get("/rest-auth", headers=headers))
    assert len(query(app, "SELECT jti_hash FROM dpop_replay")) >= 2  # the login's proof and this one
