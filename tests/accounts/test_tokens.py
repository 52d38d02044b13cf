"""rest/tokens.py: issuing, verifying, the key ring."""
import base64
import json
import time

import jwt
import pytest

from accounts import tokens
from accounts.users import User

ALICE = User(7, "alice", False, 3)


def _issue(app, ttl=60, token_type=tokens.ACCESS, **extra):
    with app.app_context():
        return tokens.issue(ALICE, token_type, ttl, **extra)


def _decode(app, token, token_type=tokens.ACCESS):
    with app.app_context():
        return tokens.decode(token, token_type)


def test_claims_and_header(app):
    token = _issue(app, ttl=900)
    header = jwt.get_unverified_header(token)
    payload = _decode(app, token)
    assert header["alg"] == "HS256" and header["typ"] == "JWT"
    assert header["kid"] == tokens.hmac_kid(app.config["SECRET_KEY"])
    assert payload["sub"] == "7" and payload["identity"] == 7
    assert payload["type"] == "access" and payload["ver"] == 3
    assert payload["exp"] - payload["iat"] == 900 and payload["nbf"] == payload["iat"]
    assert len(payload["jti"]) == 32
    assert _decode(app, _issue(app))["jti"] != payload["jti"]


def test_kid_does_not_reveal_the_secret(app):
    kid = tokens.hmac_kid(app.config["SECRET_KEY"])
    assert app.config["SECRET_KEY"] not in kid and len(kid) == 15


def test_wrong_type_is_rejected(app):
    refresh = _issue(app, token_type=tokens.REFRESH)
    with pytest.raises(tokens.TokenError, match="Expected an access token"):
        _decode(app, refresh)
    with pytest.raises(tokens.TokenError, match="Expected a refresh token"):
        _decode(app, _issue(app), tokens.REFRESH)


def test_expiry_honours_the_leeway(make_app):
    app = make_app(JWT_LEEWAY=10)
    with app.app_context():
        now = int(time.time())
        within = tokens.issue(ALICE, tokens.ACCESS, 1, iat=now - 30, nbf=now - 30, exp=now - 5)
        beyond = tokens.issue(ALICE, tokens.ACCESS, 1, iat=now - 30, nbf=now - 30, exp=now - 11)
        assert tokens.decode(within)["sub"] == "7"
        with pytest.raises(tokens.TokenError, match="Signature has expired"):
            tokens.decode(beyond)


def test_not_yet_valid(app):
    with app.app_context():
        now = int(time.time())
        token = tokens.issue(ALICE, tokens.ACCESS, 600, nbf=now + 120)
        with pytest.raises(tokens.TokenError, match="not yet valid"):
            tokens.decode(token)


def test_previous_secret_still_verifies_but_never_signs(make_app):
    old = make_app(SECRET_KEY="o" * 40)
    token = _issue(old)
    rotated = make_app(SECRET_KEY="n" * 40, SECRET_KEY_PREVIOUS=["o" * 40])
    assert _decode(rotated, token)["sub"] == "7"
    assert jwt.get_unverified_header(_issue(rotated))["kid"] == tokens.hmac_kid("n" * 40)
    forgotten = make_app(SECRET_KEY="n" * 40)
    with pytest.raises(tokens.TokenError, match="Unknown signing key"):
        _decode(forgotten, token)


def _segment(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_casing(app, alg):
    payload = _decode(app, _issue(app))
    kid = tokens.hmac_kid(app.config["SECRET_KEY"])
    forged = f"{_segment({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{_segment(payload)}."
    with pytest.raises(tokens.TokenError, match="'none' algorithm is not allowed"):
        _decode(app, forged)


def test_another_algorithm_for_the_key_is_refused(app):
    secret = app.config["SECRET_KEY"]
    payload = _decode(app, _issue(app))
    forged = jwt.encode(payload, secret, algorithm="HS512", headers={"kid": tokens.hmac_kid(secret)})
    with pytest.raises(tokens.TokenError, match="alg value is not allowed"):
        _decode(app, forged)


def test_signed_with_another_secret(app):
    payload = _decode(app, _issue(app))
    forged = jwt.encode(payload, "x" * 48, algorithm="HS256",
                        headers={"kid": tokens.hmac_kid(app.config["SECRET_KEY"])})
    with pytest.raises(tokens.TokenError, match="Signature verification failed"):
        _decode(app, forged)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "sub", "jti", "type"])
def test_required_claims(app, claim):
    secret = app.config["SECRET_KEY"]
    payload = _decode(app, _issue(app))
    del payload[claim]
    token = jwt.encode(payload, secret, algorithm="HS256", headers={"kid": tokens.hmac_kid(secret)})
    with pytest.raises(tokens.TokenError, match=f"missing the \"{claim}\" claim"):
        _decode(app, token)


def test_oversized_token_is_refused_before_parsing(app):
    with pytest.raises(tokens.TokenError, match="too large"):
        _decode(app, "a" * 5000)


@pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", "!!!.???.###", ""])
def test_malformed_tokens(app, token):
    with pytest.raises(tokens.TokenError):
        _decode(app, token)


def test_issuer_and_audience_are_set_and_checked(make_app):
    strict = make_app(JWT_ISSUER="https://api.example", JWT_AUDIENCE="clients")
    token = _issue(strict)
    payload = _decode(strict, token)
    assert payload["iss"] == "https://api.example" and payload["aud"] == "clients"
    other = make_app(JWT_ISSUER="https://other.example", JWT_AUDIENCE="clients")
    with pytest.raises(tokens.TokenError, match="Invalid issuer"):
        _decode(other, token)
    plain = make_app()
    with pytest.raises(tokens.TokenError, match="missing the \"iss\" claim"):
        _decode(strict, _issue(plain))
