"""Malformed passkey bodies: every one is a clean 4xx with the error shape, never a 500."""
import pytest

from support import assert_error, bearer

GOOD_B64 = "AAAA"
BODIES = [
    {"id": "x", "rawId": "!!!", "response": {"clientDataJSON": GOOD_B64, "attestationObject": GOOD_B64},
     "type": "public-key"},
    {"id": "x", "rawId": GOOD_B64, "response": "text", "type": "public-key"},
    {"id": "x", "rawId": GOOD_B64, "response": {"clientDataJSON": 5, "attestationObject": []}, "type": "public-key"},
    {"id": "x", "rawId": GOOD_B64, "response": {"clientDataJSON": GOOD_B64, "authenticatorData": GOOD_B64,
                                                 "signature": GOOD_B64, "userHandle": 7}, "type": "public-key"},
    {"id": "x", "rawId": GOOD_B64, "response": {"clientDataJSON": "eyJjaGFsbGVuZ2UiOjV9",  # {"challenge":5}
                                                 "authenticatorData": GOOD_B64, "signature": GOOD_B64},
     "type": "public-key"},
    {"id": 1, "rawId": None, "response": None, "type": "other"},
    {"id": "x", "rawId": GOOD_B64, "response": {}, "type": "public-key", "name": ["not", "a", "name"]},
]


@pytest.fixture
def alice(make_user, login):
    user = make_user("alice")
    user["headers"] = bearer(login("alice", user["password"]))
    return user


@pytest.mark.parametrize("body", BODIES)
def test_malformed_registrations_are_4xx(client, alice, body):
    client.post("/webauthn/register/options", headers=alice["headers"])
    response = client.post("/webauthn/register/verify", headers=alice["headers"], json=body)
    assert_error(response, 422)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("path", ["/webauthn/login/verify"])
def test_malformed_assertions_are_401(client, body, path):
    client.post("/webauthn/login/options")
    assert_error(client.post(path, json=body), 401)


@pytest.mark.parametrize("body", BODIES)
def test_malformed_second_step_credentials_are_4xx(client, body):
    response = client.post("/auth/mfa", json={"mfa_token": "x" * 43, "credential": body})
    assert_error(response, 401)
