"""Keys: HS256 by default, RS256/ES256/EdDSA from PEM files, rotation, JWKS, the keys CLI, iss/aud."""
import base64
import hashlib
import hmac
import json
import logging
import os
import pathlib
import stat

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

import app as app_module
import db
from config import ConfigError
from support import SECRET, app_config, bearer
from accounts import keys, tokens

PASSWORD = "correct-horse-battery"
ALGS = ["RS256", "ES256", "EdDSA"]
UNKNOWN_KEY = {"status_code": 401, "error": "Invalid token", "description": "Unknown signing key"}


def header(token):
    return jwt.get_unverified_header(token)


def log_in(client):
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def me(client, body):
    return client.get("/rest-auth", headers=bearer(body["access_token"]))


@pytest.fixture(scope="module")
def key_files(tmp_path_factory):
    """One private key file per algorithm (RSA generation is slow: once per module)."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for alg in ALGS:
        private = keys.generate(alg)
        path = folder / f"{alg}.pem"
        keys.write_file(path, keys.private_pem(private), 0o600)
        made[alg] = (path, private)
    return made


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


def asymmetric_app(make_app, path, alg, **overrides):
    return make_app(JWT_ALGORITHM=alg, JWT_PRIVATE_KEY_FILE=str(path), **overrides)


# --- RFC 7638 -------------------------------------------------------------------------------

def test_the_kid_is_the_rfc_7638_thumbprint():
    """The example key of RFC 7638 section 3.1 and its published thumbprint."""
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
         "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
         "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2Nc"
         "Rwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    public = RSAAlgorithm.from_jwk({"kty": "RSA", "n": n, "e": "AQAB"})
    assert keys.thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# --- signing with each algorithm ------------------------------------------------------------

@pytest.mark.parametrize("alg", ALGS)
def test_each_asymmetric_algorithm_signs_verifies_and_refreshes(make_app, key_files, alice, alg):
    path, private = key_files[alg]
    client = asymmetric_app(make_app, path, alg).test_client()
    body = log_in(client)
    for token in (body["access_token"], body["refresh_token"]):
        assert header(token) == {"alg": alg, "kid": keys.thumbprint(private.public_key()), "typ": "JWT"}
    assert me(client, body).status_code == 200
    refreshed = client.post("/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200
    assert me(client, refreshed.get_json()).status_code == 200


@pytest.mark.parametrize("alg", ALGS)
def test_jwks_publishes_the_public_key_only(make_app, key_files, alg):
    path, private = key_files[alg]
    client = asymmetric_app(make_app, path, alg).test_client()
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    [jwk] = response.get_json()["keys"]
    expected = keys.public_jwk(private.public_key())
    expected.update(kid=keys.thumbprint(private.public_key()), alg=alg, use="sig")
    assert jwk == expected
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)


@pytest.mark.parametrize("alg", ALGS)
def test_a_third_party_verifies_our_tokens_with_the_jwks(make_app, key_files, alice, alg):
    path, _ = key_files[alg]
    client = asymmetric_app(make_app, path, alg).test_client()
    token = log_in(client)["access_token"]
    jwk_set = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").get_json())
    signing = jwk_set[header(token)["kid"]]
    assert jwt.decode(token, signing.key, algorithms=[alg])["type"] == "access"


def test_jwks_with_hs256_is_an_empty_set(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.get_json() == {"keys": []}


# --- rotation without logging anyone out ----------------------------------------------------

def test_rotating_a_key_keeps_old_tokens_valid_until_the_old_key_is_removed(
        make_app, tmp_path, alice):
    key_file, verify_dir = tmp_path / "signing.pem", tmp_path / "verify"
    keys.write_file(key_file, keys.private_pem(keys.generate("ES256")), 0o600)
    config = {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": str(key_file),
              "JWT_VERIFY_KEYS_DIR": str(verify_dir)}
    before = make_app(**config)
    old = log_in(before.test_client())
    result = before.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    old_kid = header(old["access_token"])["kid"]
    assert (verify_dir / f"{old_kid}.pem").exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    after = make_app(**config).test_client()
    assert me(after, old).status_code == 200
    rotated = after.post("/refresh", json={"refresh_token": old["refresh_token"]})
    assert rotated.status_code == 200
    new_kid = header(rotated.get_json()["access_token"])["kid"]
    assert new_kid != old_kid
    published = [k["kid"] for k in after.get("/.well-known/jwks.json").get_json()["keys"]]
    assert published == [new_kid, old_kid]

    (verify_dir / f"{old_kid}.pem").unlink()
    retired = make_app(**config).test_client()
    response = me(retired, old)
    assert response.status_code == 401
    assert response.get_json() == UNKNOWN_KEY
    assert me(retired, rotated.get_json()).status_code == 200


def test_hs256_rotation_through_secret_key_previous(make_app, alice):
    old = log_in(make_app().test_client())
    new_secret = "another-secret-" + "y" * 40
    rotated = make_app(SECRET_KEY=new_secret, SECRET_KEY_PREVIOUS=[SECRET]).test_client()
    assert me(rotated, old).status_code == 200
    fresh = log_in(rotated)
    assert header(fresh["access_token"])["kid"] != header(old["access_token"])["kid"]
    retired = make_app(SECRET_KEY=new_secret).test_client()
    assert me(retired, old).get_json() == UNKNOWN_KEY
    assert me(retired, fresh).status_code == 200


def test_moving_from_hs256_to_es256_keeps_hs256_tokens_valid(make_app, key_files, alice):
    old = log_in(make_app().test_client())
    path, _ = key_files["ES256"]
    moved = asymmetric_app(make_app, path, "ES256", SECRET_KEY_PREVIOUS=[SECRET]).test_client()
    assert me(moved, old).status_code == 200
    assert header(log_in(moved)["access_token"])["alg"] == "ES256"
    # Without the old secret listed, SECRET_KEY does not verify in asymmetric mode.
    strict = asymmetric_app(make_app, path, "ES256").test_client()
    assert me(strict, old).get_json() == UNKNOWN_KEY
    assert strict.get("/.well-known/jwks.json").get_json()["keys"][0]["alg"] == "ES256"


def test_verify_keys_may_be_public_or_private_pem_files(make_app, key_files, tmp_path, alice):
    rsa_path, rsa_private = key_files["RS256"]
    ed_path, ed_private = key_files["EdDSA"]
    (tmp_path / "a.pem").write_bytes(keys.public_pem(rsa_private.public_key()))
    (tmp_path / "b.pem").write_bytes(ed_path.read_bytes())
    (tmp_path / "notes.txt").write_text("ignored: not a .pem")
    for alg, path in (("RS256", rsa_path), ("EdDSA", ed_path)):
        body = log_in(asymmetric_app(make_app, path, alg).test_client())
        checker = make_app(JWT_VERIFY_KEYS_DIR=str(tmp_path)).test_client()
        assert me(checker, body).status_code == 200


# --- what a kid or a header can never do --------------------------------------------------

def test_an_unknown_kid_is_refused_without_a_file_or_database_read(app, client, alice, monkeypatch):
    token = jwt.encode({"sub": "1"}, SECRET, algorithm="HS256", headers={"kid": "../../etc/passwd"})
    monkeypatch.setattr(keys, "load_pem", lambda path: pytest.fail("read a key file"))
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: pytest.fail("read a file"))
    monkeypatch.setattr(db, "_run", lambda *args: pytest.fail("queried the database"))
    response = client.get("/rest-auth", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json() == UNKNOWN_KEY


def test_an_embedded_jwk_is_not_trusted(make_app, key_files, alice):
    path, _ = key_files["ES256"]
    client = asymmetric_app(make_app, path, "ES256").test_client()
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = keys.public_jwk(attacker.public_key())
    token = jwt.encode({"sub": "1"}, attacker, algorithm="ES256",
                       headers={"kid": keys.thumbprint(attacker.public_key()), "jwk": jwk})
    assert me(client, {"access_token": token}).get_json() == UNKNOWN_KEY


def hs256_by_hand(secret, headers, claims):
    """HS256 without PyJWT, which (rightly) refuses a PEM as an HMAC secret."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = b64(json.dumps(headers).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def test_hs256_signed_with_the_public_key_is_refused(make_app, key_files, alice):
    """Algorithm confusion: the RS256 key's id with alg HS256 and its public PEM as the secret."""
    path, private = key_files["RS256"]
    client = asymmetric_app(make_app, path, "RS256").test_client()
    body = log_in(client)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    forged = hs256_by_hand(keys.public_pem(private.public_key()),
                           {"alg": "HS256", "kid": header(body["access_token"])["kid"], "typ": "JWT"},
                           claims)
    response = me(client, {"access_token": forged})
    assert response.status_code == 401
    assert response.get_json() == {"status_code": 401, "error": "Invalid token",
                                   "description": "The specified alg value is not allowed"}


# --- iss and aud ---------------------------------------------------------------------------

def test_issuer_and_audience_are_set_and_verified(make_app, alice):
    client = make_app(JWT_ISSUER="https://auth.example", JWT_AUDIENCE="jwt-api").test_client()
    body = log_in(client)
    for token in (body["access_token"], body["refresh_token"]):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (claims["iss"], claims["aud"]) == ("https://auth.example", "jwt-api")
    assert me(client, body).status_code == 200
    assert client.post("/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 200


@pytest.mark.parametrize("issuer_config, checker_config, description", [
    ({}, {"JWT_ISSUER": "https://auth.example"}, 'Token is missing the "iss" claim'),
    ({"JWT_ISSUER": "https://evil.example"}, {"JWT_ISSUER": "https://auth.example"}, "Invalid issuer"),
    ({}, {"JWT_AUDIENCE": "jwt-api"}, 'Token is missing the "aud" claim'),
    ({"JWT_AUDIENCE": "other-api"}, {"JWT_AUDIENCE": "jwt-api"}, "Audience doesn't match"),
    ({"JWT_AUDIENCE": "jwt-api"}, {}, "Invalid audience"),
])
def test_a_token_for_another_issuer_or_audience_is_refused(make_app, alice, issuer_config,
                                                          checker_config, description):
    body = log_in(make_app(**issuer_config).test_client())
    response = me(make_app(**checker_config).test_client(), body)
    assert response.status_code == 401
    assert response.get_json() == {"status_code": 401, "error": "Invalid token",
                                   "description": description}


# --- configuration errors ------------------------------------------------------------------

def create(**overrides):
    """create_app on a database name that is never used (start-up fails before any query)."""
    return app_module.create_app(app_config("unused", **overrides), env={})


def write_pem(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o600)
    return str(path)


def private_bytes(private, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 encryption)


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ConfigError, match="JWT_ALGORITHM must be one of: HS256, RS256, ES256, EdDSA"):
        create(JWT_ALGORITHM="HS512")


def test_an_asymmetric_algorithm_needs_a_key_file():
    with pytest.raises(ConfigError, match="JWT_ALGORITHM=ES256 needs JWT_PRIVATE_KEY_FILE"):
        create(JWT_ALGORITHM="ES256")


def test_a_missing_key_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read key file .*missing.pem: No such file"):
        create(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("make_pem, alg, message", [
    (lambda: keys.public_pem(ec.generate_private_key(ec.SECP256R1()).public_key()), "ES256",
     "holds a public key; it must be private"),
    (lambda: private_bytes(ec.generate_private_key(ec.SECP256R1())), "RS256",
     "is a ES256 key, but JWT_ALGORITHM is RS256"),
    (lambda: private_bytes(ec.generate_private_key(ec.SECP384R1())), "ES256",
     "EC keys must be on P-256 for ES256, not secp384r1"),
    (lambda: private_bytes(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "RS256",
     "RSA keys under 2048 bits are refused"),
    (lambda: private_bytes(ec.generate_private_key(ec.SECP256R1()), b"passphrase"), "ES256",
     "is encrypted"),
    (lambda: b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "ES256",
     "is not a PEM private key"),
    (lambda: b"hello", "ES256", "is not a PEM public or private key"),
])
def test_an_unusable_signing_key_is_refused(tmp_path, make_pem, alg, message):
    path = write_pem(tmp_path, "key.pem", make_pem())
    with pytest.raises(ConfigError, match=message):
        create(JWT_ALGORITHM=alg, JWT_PRIVATE_KEY_FILE=path)


def test_an_unusable_verify_key_is_refused(tmp_path):
    write_pem(tmp_path, "old.pem", b"garbage")
    with pytest.raises(ConfigError, match="old.pem is not a PEM public or private key"):
        create(JWT_VERIFY_KEYS_DIR=str(tmp_path))


def test_a_private_key_readable_by_others_is_warned_about(tmp_path, caplog):
    path = write_pem(tmp_path, "key.pem", private_bytes(ec.generate_private_key(ec.SECP256R1())))
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="accounts.keys"):
        app = create(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY_FILE=path)
    db.close_pool(app)
    assert f"{path} can be read by other users: chmod 600 it" in caplog.messages


# --- the keys CLI ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, alg", [([], "ES256"), (["--alg", "EdDSA"], "EdDSA"),
                                      (["--alg", "RS256"], "RS256")])
def test_keys_generate_writes_a_private_key_readable_only_by_its_owner(runner, tmp_path, args, alg):
    result = runner.invoke(args=["keys", "generate", "--out", str(tmp_path)] + args)
    assert result.exit_code == 0, result.output
    [path] = tmp_path.glob("*.pem")
    private, public = keys.load_pem(path)
    kid = keys.thumbprint(public)
    # Named by its role: rotation replaces its content, so a kid in its name would lie.
    assert path.name == "signing.pem" and keys.key_alg(public) == alg
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert result.output == (f"wrote {alg} private key {path} (kid {kid})\n"
                             f"to sign with it set: JWT_ALGORITHM={alg} JWT_PRIVATE_KEY_FILE={path} "
                             f"JWT_VERIFY_KEYS_DIR={tmp_path}\n")
    assert "-----BEGIN" not in result.output


def test_keys_generate_never_overwrites_a_key(runner, tmp_path):
    (tmp_path / "signing.pem").write_bytes(b"the key in use")
    result = runner.invoke(args=["keys", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (f"error: {tmp_path / 'signing.pem'} exists; rotate it with "
                             "`flask keys rotate`, or choose another --out\n")
    assert (tmp_path / "signing.pem").read_bytes() == b"the key in use"


def test_keys_generate_into_an_unwritable_place_says_so_in_one_line(runner, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(args=["keys", "generate", "--out", str(blocker / "keys")])
    assert result.exit_code == 1
    assert result.output == (f"error: cannot write {blocker / 'keys' / 'signing.pem'}: Not a directory; "
                             "choose a folder you can write\n")


def test_keys_rotate_refuses_a_key_file_named_after_its_kid(make_app, tmp_path):
    private = keys.generate("ES256")
    kid = keys.thumbprint(private.public_key())
    path = tmp_path / f"{kid}.pem"
    keys.write_file(path, keys.private_pem(private), 0o600)
    runner = make_app(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY_FILE=str(path),
                      JWT_VERIFY_KEYS_DIR=str(tmp_path)).test_cli_runner()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: JWT_PRIVATE_KEY_FILE {path} is named after its key id")
    assert f"mv {path} {tmp_path / 'signing.pem'}" in result.output
    assert sorted(tmp_path.iterdir()) == [path] and keys.load_pem(path)[0].private_numbers() == \
        private.private_numbers()


def test_keys_generate_refuses_an_unknown_algorithm(runner, tmp_path):
    result = runner.invoke(args=["keys", "generate", "--alg", "HS256", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_keys_rotate_with_hs256_explains_the_configuration_way(runner):
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert result.output == ("error: HS256 secrets rotate by configuration: add the current SECRET_KEY "
                             "to SECRET_KEY_PREVIOUS and set a new SECRET_KEY (make secret), then restart\n")


def test_keys_rotate_needs_a_verify_directory(make_app, tmp_path):
    path = tmp_path / "signing.pem"
    keys.write_file(path, keys.private_pem(keys.generate("EdDSA")), 0o600)
    runner = make_app(JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEY_FILE=str(path)).test_cli_runner()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert "set JWT_VERIFY_KEYS_DIR" in result.output
    assert list(tmp_path.iterdir()) == [path]


def test_keys_list_shows_ids_and_roles_never_secrets(make_app, key_files, tmp_path):
    path, private = key_files["ES256"]
    (tmp_path / "old.pem").write_bytes(keys.public_pem(key_files["EdDSA"][1].public_key()))
    old_secret = "previous-secret-" + "z" * 40
    runner = asymmetric_app(make_app, path, "ES256", JWT_VERIFY_KEYS_DIR=str(tmp_path),
                            SECRET_KEY_PREVIOUS=[old_secret]).test_cli_runner()
    result = runner.invoke(args=["keys", "list"])
    assert result.exit_code == 0, result.output
    es_kid = keys.thumbprint(private.public_key())
    ed_kid = keys.thumbprint(key_files["EdDSA"][1].public_key())
    hs_kid = tokens.hmac_ring(old_secret).signing.kid
    assert result.output.splitlines() == [
        "kid\talg\trole\tsource",
        f"{es_kid}\tES256\tsigning\t{path}",
        f"{ed_kid}\tEdDSA\tverify-only\t{tmp_path / 'old.pem'}",
        f"{hs_kid}\tHS256\tverify-only\tSECRET_KEY_PREVIOUS #1",
    ]
    assert old_secret not in result.output and SECRET not in result.output


def test_keys_list_with_hs256(runner):
    result = runner.invoke(args=["keys", "list"])
    assert result.exit_code == 0
    assert result.output.splitlines()[1] == f"{tokens.hmac_ring(SECRET).signing.kid}\tHS256\tsigning\tSECRET_KEY"
    assert SECRET not in result.output
