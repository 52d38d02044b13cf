"""Attacks on the token and the Authorization header of a protected route (GET /rest-auth).

Every forged token names a real user (alice), so a check that let it through
would answer 200 with her identity; each test asserts the exact 401 instead,
and forge.assert_error checks that no 5xx and nothing internal leaks.
"""
import base64
import hashlib
import json
import socket
import sys
import threading

import pytest
from jwt.algorithms import RSAAlgorithm

import db
from support import SECRET, bearer
from forge import (
    app_kid, assemble, assert_error, assert_invalid_token, b64, claims, header, hs256,
    new_rsa_key, pem_private, pem_public, rs256,
)

EXPECTED = "Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"
BAD_SIGNATURE = "Signature verification failed"
ALG_REFUSED = "The specified alg value is not allowed"
UNKNOWN_KEY = "Unknown signing key"


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def get(client, token=None, headers=None):
    return client.get("/rest-auth", headers=headers if headers is not None else bearer(token))


@pytest.fixture
def rs_app(make_app, tmp_path):
    """An app whose ring signs with RS256 (algorithm-confusion and jwk cases)."""
    private = new_rsa_key()
    path = tmp_path / "signing.pem"
    path.write_bytes(pem_private(private))
    app = make_app(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY_FILE=str(path))
    return app, private, app.extensions["keyring"].signing


# --- the Authorization header -------------------------------------------------------------

def test_no_header(client, alice):
    """No Authorization header: 401 Authorization Required, with a challenge and no error code."""
    response = client.get("/rest-auth")
    assert_error(response, 401, "Authorization Required", "Request does not contain an access token")
    assert "invalid_token" not in response.headers["WWW-Authenticate"]
    assert 'realm="Login Required"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bearer:", "Digest", "OAuth"])
def test_wrong_scheme(client, alice, login, scheme):
    """A valid token under a scheme other than Bearer/JWT is refused."""
    token = login("alice", alice["password"])
    response = get(client, headers={"Authorization": f"{scheme} {token}"})
    assert_invalid_token(response, f"Unsupported authorization type. {EXPECTED}", "Invalid JWT header")


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "JWT", "bearer   "])
def test_bare_bearer(client, alice, value):
    """The scheme with no token after it."""
    response = get(client, headers={"Authorization": value})
    assert_invalid_token(response, f"Token missing. {EXPECTED}", "Invalid JWT header")


def test_three_part_header(client, alice, login):
    """`Bearer <token> extra`: three space-separated parts."""
    token = login("alice", alice["password"])
    response = get(client, headers={"Authorization": f"Bearer {token} {token}"})
    assert_invalid_token(response, f"Token contains spaces. {EXPECTED}", "Invalid JWT header")


@pytest.mark.parametrize("name", ["Authorization", "x-access-tokens"])
def test_100_kb_header(client, alice, name):
    """A 100 KB token header: refused by length before any parsing (gunicorn: see docs/security.md)."""
    value = "a" * 100_000 + "." + "b" * 10 + "." + "c" * 10
    response = get(client, headers={name: f"Bearer {value}" if name == "Authorization" else value})
    assert_invalid_token(response, "Token is too large")


# --- alg and signature ----------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(client, alice, alg):
    """An unsigned token with alg none in any case, with and without a trailing dot."""
    token = assemble(header(alg), claims(alice["id"]))
    assert_invalid_token(get(client, token), "The 'none' algorithm is not allowed")
    assert_invalid_token(get(client, token.rstrip(".") + "."), "The 'none' algorithm is not allowed")


@pytest.mark.parametrize("cut", [None, 1, 2, 3, 4, 20, 42])
def test_stripped_and_truncated_signature(client, alice, login, cut):
    """A genuine token with its signature removed (None) or shortened by `cut` characters."""
    token = login("alice", alice["password"])
    signing_input, signature = token.rsplit(".", 1)
    forged = f"{signing_input}." + ("" if cut is None else signature[:-cut])
    body = assert_invalid_token(get(client, forged))
    assert body["description"] in (BAD_SIGNATURE, "Invalid crypto padding")


def test_tampered_payload_with_old_signature(client, alice, make_user, login):
    """alice's genuine signature on a payload rewritten to name another user."""
    bob = make_user("bob")
    token = login("alice", alice["password"])
    head, payload, signature = token.split(".")
    padded = payload + "=" * (-len(payload) % 4)
    body = json.loads(base64.urlsafe_b64decode(padded))
    body.update(sub=str(bob["id"]), identity=bob["id"])
    assert_invalid_token(get(client, f"{head}.{b64(body)}.{signature}"), BAD_SIGNATURE)


@pytest.mark.parametrize("secret", ["another-long-secret-" + "y" * 40, "", "secret"])
def test_signed_with_another_blank_or_weak_secret(client, alice, secret):
    """HS256 with another secret, a blank one, or the classic 'secret', claiming our kid."""
    token = hs256(claims(alice["id"]), secret=secret)
    assert_invalid_token(get(client, token), BAD_SIGNATURE)
    # Under the kid such a secret would have, the key is simply unknown.
    token = hs256(claims(alice["id"]), secret=secret, head=header(kid=app_kid(secret)))
    assert_invalid_token(get(client, token), UNKNOWN_KEY)


def test_hs256_signed_with_the_rs_public_key(rs_app, alice):
    """Algorithm confusion: HS256 keyed with the server's own RSA public key (PEM and DER)."""
    app, private, ring_key = rs_app
    public_pem = pem_public(private)
    client = app.test_client()
    for key_bytes in (public_pem, public_pem.strip()):
        token = hs256(claims(alice["id"]), secret=key_bytes, head=header("HS256", kid=ring_key.kid))
        assert_invalid_token(get(client, token), ALG_REFUSED)
    # And the genuine RS256 token still works, so the refusal is about the alg.
    genuine = rs256(claims(alice["id"]), private, header("RS256", kid=ring_key.kid))
    assert get(client, genuine).status_code == 200


@pytest.mark.parametrize("alg", ["HS512", "HS384", "RS256", "ES256", "PS256"])
def test_alg_switched(client, alice, alg):
    """Our kid with another algorithm: refused before any signature check (one alg per key)."""
    if alg.startswith("HS"):
        digest = {"HS512": hashlib.sha512, "HS384": hashlib.sha384}[alg]
        token = hs256(claims(alice["id"]), head=header(alg), digest=digest)
    else:
        token = rs256(claims(alice["id"]), new_rsa_key(), header(alg))
    assert_invalid_token(get(client, token), ALG_REFUSED)


NOT_A_STRING = "Key ID header parameter must be a string"


@pytest.mark.parametrize("kid, description", [
    *[(kid, UNKNOWN_KEY) for kid in (
        "../../etc/passwd", "../../../../../../dev/zero", "/etc/shadow", "file:///etc/passwd",
        "' OR '1'='1", "x'; DROP TABLE user; --", "1 UNION SELECT password FROM user", "\x00", "")],
    *[(kid, NOT_A_STRING) for kid in (12, None, ["../../etc/passwd"], {"$ne": None})],
])
def test_kid_path_traversal_and_sql(client, alice, monkeypatch, kid, description):
    """Hostile kid values: an unknown key, decided without opening a file or querying the database."""
    opened, queries = [], []
    real_run = db._run

    def counting_run(sql, params, fetch):
        queries.append(sql)
        return real_run(sql, params, fetch)

    def audit(event, args):
        if event == "open" and guard.active:
            opened.append(args[0])

    monkeypatch.setattr(db, "_run", counting_run)
    guard.install(audit)
    token = hs256(claims(alice["id"]), head=header(kid=kid))
    try:
        guard.active = True
        response = get(client, token)
    finally:
        guard.active = False
    assert_invalid_token(response, description)
    assert opened == [] and queries == []


class _Guard:
    """One audit hook for the whole run (hooks cannot be removed), switched on per request."""

    def __init__(self):
        self.active = False
        self.hook = None

    def install(self, hook):
        if self.hook is None:
            sys.addaudithook(lambda event, args: self.hook(event, args))
        self.hook = hook


guard = _Guard()


def test_embedded_jwk(rs_app, alice):
    """An attacker's RSA key embedded as `jwk` in the header is never used to verify."""
    app, _, ring_key = rs_app
    attacker = new_rsa_key()
    jwk = json.loads(RSAAlgorithm.to_jwk(attacker.public_key()))
    client = app.test_client()
    with_our_kid = rs256(claims(alice["id"]), attacker, header("RS256", kid=ring_key.kid, jwk=jwk))
    assert_invalid_token(get(client, with_our_kid), BAD_SIGNATURE)
    with_its_kid = rs256(claims(alice["id"]), attacker, header("RS256", kid="attacker", jwk=jwk))
    assert_invalid_token(get(client, with_its_kid), UNKNOWN_KEY)


@pytest.mark.parametrize("field", ["jku", "x5u"])
def test_jku_x5u_never_fetched(client, alice, field):
    """jku/x5u pointing at a loopback listener: the listener must receive no connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(listener.accept())
        except OSError:
            pass

    waiter = threading.Thread(target=accept)
    waiter.start()
    try:
        url = f"http://127.0.0.1:{port}/jwks.json"
        attacker = new_rsa_key()
        for head, description in ((header("RS256", kid="attacker", **{field: url}), UNKNOWN_KEY),
                                  (header("RS256", **{field: url}), ALG_REFUSED),
                                  (header("RS256", kid=None, **{field: url}), NOT_A_STRING)):
            response = get(client, rs256(claims(alice["id"]), attacker, head))
            assert_invalid_token(response, description)
        waiter.join()
    finally:
        listener.close()
    assert connections == []


def test_unknown_crit(client, alice):
    """A correctly signed token whose crit names an extension we do not understand."""
    token = hs256(claims(alice["id"]), head=header(crit=["exp-hint"], **{"exp-hint": 1}))
    assert_invalid_token(get(client, token), "Unsupported critical extension: exp-hint")


# --- claims ---------------------------------------------------------------------------------

def test_expired_beyond_leeway(client, alice, app):
    """Correctly signed, expired longer ago than JWT_LEEWAY."""
    leeway = app.config["JWT_LEEWAY"]
    token = hs256(claims(alice["id"], iat=1, nbf=1, exp=claims()["iat"] - leeway - 5))
    assert_invalid_token(get(client, token), "Signature has expired")


def test_nbf_in_the_future(client, alice, app):
    """Correctly signed, not valid before a moment beyond the leeway."""
    nbf = claims()["iat"] + app.config["JWT_LEEWAY"] + 60
    token = hs256(claims(alice["id"], nbf=nbf))
    assert_invalid_token(get(client, token), "The token is not yet valid (nbf)")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "nbf", "type"])
def test_missing_claim(client, alice, claim):
    """Correctly signed without one of the claims we rely on."""
    token = hs256(claims(alice["id"], drop=[claim]))
    assert_invalid_token(get(client, token), f'Token is missing the "{claim}" claim')


@pytest.mark.parametrize("overrides, description", [
    ({"exp": "9999999999"}, "Expiration time (exp) must be a number"),
    ({"exp": "soon"}, "Expiration Time claim (exp) must be an integer."),
    ({"exp": True}, "Signature has expired"),  # PyJWT reads True as 1
    ({"exp": 9999999999.5}, None),  # a fractional NumericDate is a number: accepted
    ({"sub": 1}, "Subject must be a string"),
    ({"sub": "1 OR 1=1"}, "Subject (sub) must be a string holding a user id"),
    ({"sub": "-1"}, "Subject (sub) must be a string holding a user id"),
    ({"iat": "now"}, "Issued At claim (iat) must be an integer."),
    ({"jti": ["x"]}, "JWT ID must be a string"),
    ({"jti": "../../etc/passwd"}, "Token id (jti) is malformed"),
    ({"ver": "0"}, "Token version (ver) is malformed"),
    ({"ver": False}, "Token version (ver) is malformed"),
    ({"nbf": [1]}, "Not Before claim (nbf) must be an integer."),
    ({"iat": False}, "Issued at (iat) must be a number"),
])
def test_claims_of_the_wrong_type(client, alice, overrides, description):
    """exp as a string, sub as a number, and other claims of the wrong type or shape."""
    response = get(client, hs256(claims(alice["id"], **overrides)))
    if description is None:
        assert response.status_code == 200
    else:
        assert_invalid_token(response, description)


def test_payload_is_a_json_array(client, alice):
    """A correctly signed token whose payload is a JSON array, not an object."""
    token = hs256([claims(alice["id"])])
    assert_invalid_token(get(client, token), "Invalid payload string: must be a json object")


# --- malformed tokens -----------------------------------------------------------------------

def _valid_parts(alice):
    return hs256(claims(alice["id"])).split(".")


@pytest.mark.parametrize("shape, description", [
    ("two", "Not enough segments"), ("one", "Not enough segments"),
    ("four", "Invalid payload padding"),
    ("empty-parts", "Invalid header string: Expecting value: line 1 column 1 (char 0)"),
])
def test_wrong_number_of_segments(client, alice, shape, description):
    """Two or four segments (and one, and empty ones) instead of three."""
    h, p, s = _valid_parts(alice)
    token = {"two": f"{h}.{p}", "four": f"{h}.{p}.{s}.{s}", "one": h, "empty-parts": ".."}[shape]
    assert_invalid_token(get(client, token), description)


@pytest.mark.parametrize("segment, description", [
    (0, "Invalid header padding"), (1, "Invalid payload padding"), (2, "Invalid crypto padding"),
])
def test_bad_base64url(client, alice, segment, description):
    """A segment that is not base64url (characters outside the alphabet, bad length)."""
    parts = _valid_parts(alice)
    parts[segment] = "%%%***" + parts[segment][:5]
    assert_invalid_token(get(client, ".".join(parts)), description)


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_non_utf8_bytes(client, alice, segment):
    """A header or (correctly signed) payload that decodes to bytes that are not UTF-8."""
    junk = b"\xc3\x28{}\xff"
    token = hs256(junk) if segment == "payload" else f"{b64(junk)}.{_valid_parts(alice)[1]}.x"
    body = assert_invalid_token(get(client, token))
    assert body["description"].startswith(f"Invalid {segment} string")


def test_non_utf8_in_the_header_line(client, alice):
    """Raw non-ASCII bytes in the Authorization header itself."""
    response = client.get("/rest-auth", environ_base={"HTTP_AUTHORIZATION": "Bearer \xff\xfe.\xfd.x"})
    assert_invalid_token(response, "Invalid header padding")


@pytest.mark.parametrize("token", ["null", "undefined", "{}", "[]", "''", '""', "0", "true"])
def test_empty_and_null_tokens(client, alice, token):
    """What broken clients send: `Bearer null`, `Bearer undefined`, JSON literals; and empty headers."""
    assert_invalid_token(get(client, token), "Not enough segments")
    for empty in ("", "   "):
        response = get(client, headers={"x-access-tokens": empty})
        assert_invalid_token(response, "Expected 'x-access-tokens: <JWT>'", "Invalid JWT header")


def test_valid_token_is_still_accepted(client, alice, login):
    """Control: the genuine token passes, so every refusal above is about the attack."""
    response = get(client, login("alice", alice["password"]))
    assert response.status_code == 200
    assert response.get_json()["user"] == {"id": alice["id"], "username": "alice"}
    assert SECRET not in response.get_data(as_text=True)
