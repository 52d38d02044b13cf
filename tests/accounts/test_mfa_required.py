"""accounts.mfa.required(): one query says whether a password alone still logs the account in."""
import db
from accounts import mfa, passkeys, totp


def test_only_a_confirmed_app_or_a_passkey_requires_a_second_factor(app, make_user, monkeypatch):
    alice, bob, carol = (make_user(name)["id"] for name in ("alice", "bob", "carol"))
    seen = []
    real_run = db._run
    monkeypatch.setattr(db, "_run", lambda sql, *rest: seen.append(sql) or real_run(sql, *rest))
    with app.app_context():
        db.execute(totp.INSERT_PENDING, (alice, "pending-secret"))  # enrolling, not confirmed
        db.execute(totp.INSERT_PENDING, (bob, "confirmed-secret"))
        db.execute("UPDATE mfa_totp SET confirmed_at = NOW() WHERE user_id = %s", (bob,))
        db.execute(passkeys.INSERT, (carol, b"credential-1", b"key", 0, "laptop", ""))
        seen.clear()
        answers = [mfa.required(user) for user in (alice, bob, carol)]
    assert answers == [False, True, True]
    assert seen == [mfa.FACTOR_ON] * 3  # one round trip each
