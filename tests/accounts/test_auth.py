"""authenticate() and identity(): the Flask-JWT pair, hash upgrades, no timing oracle."""
import pytest
from werkzeug.security import generate_password_hash

import db
from accounts import auth, passwords, tokens

ROY_HASH = "pbkdf2:sha256:150000$k1Ud5dzh$d0347f416e89ea486b33c988c9be65730329b2dd6d712f73c9920103a006a82e"


def _stored_hash(app, username):
    with app.app_context():
        return db.one("SELECT password FROM user WHERE username = %s", (username,))["password"]


def test_returns_the_user_without_its_hash(app, make_user):
    alice = make_user("alice", "correct-horse-battery", admin=True)
    with app.app_context():
        user = auth.authenticate("alice", "correct-horse-battery")
    assert user == auth.User(alice["id"], "alice", True, 0)
    assert not hasattr(user, "password")


@pytest.mark.parametrize("username, password", [
    ("alice", "wrong-password"), ("nobody", "correct-horse-battery"),
    ("alice", ""), ("", "correct-horse-battery"), (None, "x"), ("alice", None),
    (0, "correct-horse-battery"), (["alice"], "x"), ({"a": 1}, "x"), ("alice", 12345678),
])
def test_returns_none_for_anything_else(app, make_user, username, password):
    make_user("alice", "correct-horse-battery")
    with app.app_context():
        assert auth.authenticate(username, password) is None


def _count_verifies(monkeypatch):
    calls = []
    real = passwords.verify_password

    def counting(stored, password):
        calls.append(stored[:10])
        return real(stored, password)
    monkeypatch.setattr(passwords, "verify_password", counting)
    return calls


def test_unknown_user_costs_one_argon2id_verify_like_a_known_one(app, make_user, monkeypatch):
    make_user("alice", "correct-horse-battery")
    calls = _count_verifies(monkeypatch)
    with app.app_context():
        auth.authenticate("alice", "wrong-password")
        known = list(calls)
        calls.clear()
        auth.authenticate("no-such-user", "wrong-password")
        unknown = list(calls)
    assert len(known) == 1 and len(unknown) == 1
    assert known[0].startswith("$argon2id") and unknown[0].startswith("$argon2id")


def test_tutorial_roy_logs_in_and_his_hash_is_upgraded(app, make_user):
    make_user("roy", password_hash=ROY_HASH)
    with app.app_context():
        assert auth.authenticate("roy", "roy").username == "roy"
    upgraded = _stored_hash(app, "roy")
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    with app.app_context():
        assert auth.authenticate("roy", "roy") is not None
        assert auth.authenticate("roy", "not-roy") is None
    assert _stored_hash(app, "roy") == upgraded  # a current hash is left alone


def test_werkzeug_scrypt_hash_verifies_and_is_upgraded(app, make_user):
    make_user("sam", password_hash=generate_password_hash("sam-password-1"))
    with app.app_context():
        assert auth.authenticate("sam", "sam-password-1") is not None
    assert _stored_hash(app, "sam").startswith("$argon2id$")


def test_weaker_argon2_hash_is_upgraded(app, make_user):
    from argon2 import PasswordHasher
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw-weak-params")
    make_user("wes", password_hash=weak)
    with app.app_context():
        assert auth.authenticate("wes", "pw-weak-params") is not None
    assert "m=19456,t=2,p=1" in _stored_hash(app, "wes")


def test_failed_login_does_not_touch_the_hash(app, make_user):
    make_user("roy", password_hash=ROY_HASH)
    with app.app_context():
        assert auth.authenticate("roy", "wrong") is None
    assert _stored_hash(app, "roy") == ROY_HASH


def test_plain_text_in_the_password_column_never_verifies(app, make_user):
    make_user("plain", password_hash="plain-text-password")
    with app.app_context():
        assert auth.authenticate("plain", "plain-text-password") is None


def _payload(app, user_id, version=0):
    with app.app_context():
        token = tokens.issue(auth.User(user_id, "x", False, version), tokens.ACCESS, 60)
        return tokens.decode(token)


def test_identity_returns_the_user_behind_the_token(app, make_user):
    alice = make_user("alice")
    payload = _payload(app, alice["id"])
    with app.app_context():
        assert auth.identity(payload) == auth.User(alice["id"], "alice", False, 0)


def test_identity_rejects_a_deleted_user(app, make_user):
    alice = make_user("alice")
    payload = _payload(app, alice["id"])
    with app.app_context():
        db.execute("DELETE FROM user WHERE id = %s", (alice["id"],))
        assert auth.identity(payload) is None


def test_identity_rejects_an_old_token_version(app, make_user):
    alice = make_user("alice")
    payload = _payload(app, alice["id"], version=0)
    with app.app_context():
        db.execute("UPDATE user SET token_version = token_version + 1 WHERE id = %s", (alice["id"],))
        assert auth.identity(payload) is None


def test_identity_rejects_a_revoked_jti(app, make_user):
    alice = make_user("alice")
    payload = _payload(app, alice["id"])
    other = _payload(app, alice["id"])
    with app.app_context():
        db.execute("INSERT INTO revoked_token (jti, expires_at) VALUES (%s, UTC_TIMESTAMP() + INTERVAL 1 HOUR)",
                   (payload["jti"],))
        assert auth.identity(payload) is None
        assert auth.identity(other) is not None
