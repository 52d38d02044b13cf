"""rest/tokens.py's memory of verified tokens: faster, and never more lenient than PyJWT."""
import time

import pytest

from accounts import tokens
from accounts.users import User

ALICE = User(7, "alice", False, 3)


def _issue(app, ttl=60, token_type=tokens.ACCESS):
    with app.app_context():
        return tokens.issue(ALICE, token_type, ttl)


def _decode(app, token, token_type=tokens.ACCESS):
    with app.app_context():
        return tokens.decode(token, token_type)


def test_a_verified_token_is_remembered_and_answers_the_same(app):
    token = _issue(app)
    first = _decode(app, token)
    assert token in app.extensions["keyring"].verified
    second = _decode(app, token)
    assert second == first and second is not first
    second["sub"] = "changed"  # a caller's edit never reaches the memory
    assert _decode(app, token)["sub"] == "7"


def test_a_remembered_token_still_expires(app, monkeypatch):
    token = _issue(app, ttl=60)
    _decode(app, token)
    later = time.time() + 60 + app.config["JWT_LEEWAY"] + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.TokenError, match="^Signature has expired$"):
        _decode(app, token)


def test_a_remembered_token_is_refused_within_the_leeway_edge_as_pyjwt_does(app, monkeypatch):
    token = _issue(app, ttl=60)
    exp = _decode(app, token)["exp"]
    monkeypatch.setattr(tokens.time, "time", lambda: exp + app.config["JWT_LEEWAY"] - 0.5)
    assert _decode(app, token)["exp"] == exp  # still inside the leeway
    monkeypatch.setattr(tokens.time, "time", lambda: exp + app.config["JWT_LEEWAY"])
    with pytest.raises(tokens.TokenError, match="^Signature has expired$"):
        _decode(app, token)


def test_a_remembered_token_is_still_checked_for_its_type(app):
    refresh = _issue(app, token_type=tokens.REFRESH)
    assert _decode(app, refresh, tokens.REFRESH)["type"] == "refresh"
    for _ in range(2):
        with pytest.raises(tokens.TokenError, match="Expected an access token"):
            _decode(app, refresh, tokens.ACCESS)


def test_a_remembered_token_passes_for_one_type_and_fails_for_the_other_at_every_use(app):
    access = _issue(app)
    for _ in range(2):
        assert _decode(app, access)["type"] == "access"
        with pytest.raises(tokens.TokenError, match="^Expected a refresh token$"):
            _decode(app, access, tokens.REFRESH)


def test_a_signed_token_with_a_malformed_claim_is_refused_at_every_use(app):
    with app.app_context():
        token = tokens.issue(ALICE, tokens.ACCESS, 60, jti="not-hex")
    for _ in range(3):
        with pytest.raises(tokens.TokenError, match=r"^Token id \(jti\) is malformed$"):
            _decode(app, token)


def test_a_new_key_ring_forgets_every_token(make_app):
    app = make_app(SECRET_KEY="old-secret-" + "o" * 40)
    token = _issue(app)
    _decode(app, token)
    app.extensions["keyring"] = tokens.hmac_ring("new-secret-" + "n" * 40)  # the old key retired
    with pytest.raises(tokens.TokenError, match="Unknown signing key"):
        _decode(app, token)


def test_another_issuer_setting_verifies_again(make_app):
    app = make_app()
    token = _issue(app)
    _decode(app, token)
    app.config["JWT_ISSUER"] = "https://issuer.example"
    with pytest.raises(tokens.TokenError, match="iss"):
        _decode(app, token)


def test_a_refused_token_is_never_remembered(app):
    token = _issue(app)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(tokens.TokenError):
        _decode(app, forged)
    assert forged not in app.extensions["keyring"].verified


def test_the_memory_is_bounded(app, monkeypatch):
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    for _ in range(10):
        _decode(app, _issue(app))
    assert 1 <= len(app.extensions["keyring"].verified) <= 3
