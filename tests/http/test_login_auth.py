"""POST /auth and GET /rest-auth on the wire: Flask-JWT 0.3.2's contract, done safely."""
import base64
import json
import time

import jwt
import pytest

from support import SECRET, bearer
from accounts import tokens

INVALID = {"status_code": 401, "error": "Bad Request", "description": "Invalid credentials"}
EXPECTED = "Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"
KID = tokens.hmac_kid(SECRET)


@pytest.fixture
def alice(make_user):
    return make_user("alice", "correct-horse-battery")


def test_auth_returns_an_access_token_that_rest_auth_accepts(client, alice):
    response = client.post("/auth", json={"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert response.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(alice["id"]) and claims["identity"] == alice["id"]
    for scheme in ("JWT", "Bearer", "jwt", "bearer"):
        answer = client.get("/rest-auth", headers=bearer(body["access_token"], scheme))
        assert answer.status_code == 200
        assert answer.get_json() == {
            "message": "You are an authenticated person to see this message",
            "user": {"id": alice["id"], "username": "alice"},
        }


def test_tokens_never_appear_with_the_hash(client, alice):
    body = client.post("/auth", json={"username": "alice", "password": "correct-horse-battery"}).get_data(as_text=True)
    assert "argon2" not in body and "password" not in body


@pytest.mark.parametrize("body", [
    {"username": "alice", "password": "wrong-password"},
    {"username": "nobody", "password": "correct-horse-battery"},
    {"username": "alice"}, {"password": "correct-horse-battery"}, {},
    {"username": "alice", "password": ""},
    {"username": None, "password": "correct-horse-battery"},
    {"username": "alice", "password": None},
])
def test_bad_credentials_are_flask_jwt_401(client, alice, body):
    response = client.post("/auth", json=body)
    assert response.status_code == 401
    assert response.get_json() == INVALID


def test_unknown_user_and_wrong_password_answer_identically(client, alice):
    wrong = client.post("/auth", json={"username": "alice", "password": "nope-nope-nope"})
    unknown = client.post("/auth", json={"username": "mallory", "password": "nope-nope-nope"})
    assert (wrong.status_code, wrong.get_json()) == (unknown.status_code, unknown.get_json())
    assert set(wrong.headers.keys()) == set(unknown.headers.keys())


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("value", [0, 1.5, True, [], ["alice"], {}, {"a": 1}])
def test_wrongly_typed_fields_are_400_naming_the_field(client, alice, field, value):
    body = {"username": "alice", "password": "correct-horse-battery", field: value}
    response = client.post("/auth", json=body)
    assert response.status_code == 400
    assert response.get_json() == {
        "status_code": 400, "error": "Bad Request",
        "description": f"'{field}' must be a string.", "field": field,
    }


@pytest.mark.parametrize("raw", ["[]", '"s"', "null", "42", "true", '[{"username": "alice"}]'])
def test_json_that_is_not_an_object_is_400(client, raw):
    response = client.post("/auth", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["description"] == "The JSON body must be an object."


def test_malformed_json_is_400(client):
    response = client.post("/auth", data='{"username": "alice",', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["description"] == "The body is not valid JSON."


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_body_is_415(client, content_type):
    response = client.post("/auth", data="username=alice&password=x", content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["status_code"] == 415


def test_a_1mb_password_is_a_fast_413(client, alice):
    response = client.post("/auth", json={"username": "alice", "password": "p" * 1_000_000})
    assert response.status_code == 413
    assert response.get_json()["error"] == "Request Entity Too Large"


def test_a_password_over_the_cap_is_400_without_hashing(client, alice):
    response = client.post("/auth", json={"username": "alice", "password": "p" * 1025})
    assert response.status_code == 400
    assert response.get_json()["field"] == "password"


def test_get_on_a_post_route_is_405_json(client):
    response = client.put("/auth")
    assert response.status_code == 405
    assert response.get_json()["error"] == "Method Not Allowed"
    assert "POST" in response.headers["Allow"]


def test_unknown_path_is_404_json(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404 and response.get_json()["status_code"] == 404


# --- GET /rest-auth: every way a token can be wrong -----------------------------

def _token(client, alice):
    response = client.post("/auth", json={"username": "alice", "password": "correct-horse-battery"})
    return response.get_json()["access_token"]


def _claims(alice, **changes):
    now = int(time.time())
    claims = {"sub": str(alice["id"]), "identity": alice["id"], "iat": now, "nbf": now,
              "exp": now + 300, "jti": "a" * 32, "type": "access", "ver": 0}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims, key=SECRET, alg="HS256", headers=None):
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": KID, **(headers or {})})


def _rejected(client, headers, error, description):
    response = client.get("/rest-auth", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"status_code": 401, "error": error, "description": description}
    assert response.headers["WWW-Authenticate"].startswith(("Bearer", "JWT"))
    return response


def test_missing_token_is_401_with_a_challenge(client):
    response = _rejected(client, {}, "Authorization Required", "Request does not contain an access token")
    assert response.headers["WWW-Authenticate"] == (
        'JWT realm="Login Required", Bearer realm="Login Required", DPoP algs="ES256 EdDSA RS256 PS256"')


@pytest.mark.parametrize("header, description", [
    ("Basic YWxpY2U6eA==", f"Unsupported authorization type. {EXPECTED}"),
    ("Token abc", f"Unsupported authorization type. {EXPECTED}"),
    ("Bearer", f"Token missing. {EXPECTED}"),
    ("JWT", f"Token missing. {EXPECTED}"),
    ("Bearer a b", f"Token contains spaces. {EXPECTED}"),
    ("", f"Unsupported authorization type. {EXPECTED}"),
])
def test_malformed_authorization_header(client, header, description):
    _rejected(client, {"Authorization": header}, "Invalid JWT header", description)


def test_expired_token(client, alice):
    now = int(time.time())
    token = _sign(_claims(alice, iat=now - 600, nbf=now - 600, exp=now - 60))
    _rejected(client, bearer(token), "Invalid token", "Signature has expired")


def test_not_yet_valid_token(client, alice):
    token = _sign(_claims(alice, nbf=int(time.time()) + 600))
    _rejected(client, bearer(token), "Invalid token", "The token is not yet valid (nbf)")


def test_tampered_payload_keeps_the_old_signature(client, alice):
    header, payload, signature = _token(client, alice).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "999"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _rejected(client, bearer(f"{header}.{forged}.{signature}"), "Invalid token", "Signature verification failed")


def test_signed_with_another_key(client, alice):
    _rejected(client, bearer(_sign(_claims(alice), key="another-secret-" * 4)),
              "Invalid token", "Signature verification failed")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(client, alice, alg):
    seg = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    token = f"{seg({'alg': alg, 'typ': 'JWT', 'kid': KID})}.{seg(_claims(alice))}."
    _rejected(client, bearer(token), "Invalid token", "The 'none' algorithm is not allowed")


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_non_allowlisted_algorithm(client, alice, alg):
    _rejected(client, bearer(_sign(_claims(alice), key=SECRET * 2, alg=alg)),
              "Invalid token", "The specified alg value is not allowed")


@pytest.mark.parametrize("token, description", [
    ("abc", "Not enough segments"),
    ("a.b", "Not enough segments"),
    ("a.b.c", "Invalid header padding"),
    ("eyJhbGciOiJIUzI1NiJ9.e30.", "Token header has no key id (kid)"),
])
def test_malformed_segments(client, token, description):
    _rejected(client, bearer(token), "Invalid token", description)


@pytest.mark.parametrize("claim", ["exp", "sub", "jti", "iat"])
def test_missing_required_claim(client, alice, claim):
    _rejected(client, bearer(_sign(_claims(alice, **{claim: None}))),
              "Invalid token", f'Token is missing the "{claim}" claim')


def test_oversized_token(client):
    _rejected(client, bearer("a" * 5000), "Invalid token", "Token is too large")


def test_token_of_a_deleted_user(client, alice, app):
    token = _token(client, alice)
    with app.app_context():
        import db
        db.execute("DELETE FROM user WHERE id = %s", (alice["id"],))
    _rejected(client, bearer(token), "Invalid JWT", "User does not exist or the token was revoked")


def test_refresh_typed_token_is_not_an_access_token(client, alice):
    _rejected(client, bearer(_sign(_claims(alice, type="refresh"))), "Invalid token", "Expected an access token")


@pytest.mark.parametrize("field", ["admin", "remember_me"])
def test_unknown_fields_are_refused_like_everywhere_else(client, alice, field):
    body = {"username": "alice", "password": "correct-horse-battery", field: True}
    response = client.post("/auth", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
