"""accounts/one_time_tokens.py: stored as hashes, single use even under a race, the newest wins."""
import hashlib
import threading

import db
from accounts import one_time_tokens as tokens
from support import query


def _in_app(app, work):
    with app.app_context():
        try:
            return work()
        finally:
            db.close_db()


def test_only_the_hash_is_stored_and_a_token_works_once(app, make_user):
    user = make_user("alice")
    token = _in_app(app, lambda: tokens.issue(user["id"], tokens.PASSWORD_RESET, "bound-to", 60))
    assert len(token) >= 43
    [row] = query(app, "SELECT token_hash, binding FROM one_time_token")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["binding"] == hashlib.sha256(b"bound-to").hexdigest()

    def take():
        with db.transaction():
            return tokens.take(token, tokens.PASSWORD_RESET)
    assert _in_app(app, take) == (user["id"], row["binding"])
    assert _in_app(app, take) is None


def test_a_token_of_another_purpose_or_a_newer_one_wins(app, make_user):
    user = make_user("alice")
    older = _in_app(app, lambda: tokens.issue(user["id"], tokens.VERIFY_EMAIL, "a", 60))
    newer = _in_app(app, lambda: tokens.issue(user["id"], tokens.VERIFY_EMAIL, "a", 60))
    reset = _in_app(app, lambda: tokens.issue(user["id"], tokens.PASSWORD_RESET, "b", 60))

    def take(token, purpose):
        def work():
            with db.transaction():
                return tokens.take(token, purpose)
        return _in_app(app, work)
    assert take(older, tokens.VERIFY_EMAIL) is None
    assert take(reset, tokens.VERIFY_EMAIL) is None          # wrong purpose: not taken
    assert take(reset, tokens.PASSWORD_RESET) is not None    # still there
    assert take(newer, tokens.VERIFY_EMAIL) is not None
    assert take("", tokens.VERIFY_EMAIL) is None and take(None, tokens.VERIFY_EMAIL) is None


def test_racing_redemptions_of_one_token_give_one_success(app, make_user):
    user = make_user("alice")
    token = _in_app(app, lambda: tokens.issue(user["id"], tokens.PASSWORD_RESET, "b", 60))
    start, results = threading.Barrier(8), []

    def redeem():
        def work():
            start.wait()
            with db.transaction():
                return tokens.take(token, tokens.PASSWORD_RESET)
        results.append(_in_app(app, work))
    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    assert sum(result is not None for result in results) == 1
