"""accounts.users on the real server: creating an account when a racing registration wins.

On a Galera cluster a registration of the same name committed on another
node aborts ours at certification (error 1213) on every retry while the race
lasts, so db.execute() ends in WriteConflict, not in a duplicate-key error.
The cluster suite runs the real race (tests/cluster/); here the conflict is
injected on the INSERT alone, against a real database that does or does not
hold the winner's row.
"""
import pytest

import db
from accounts import email_verification, users
from accounts.errors import Conflict


def _insert_conflicts(monkeypatch):
    real = db.execute

    def execute(sql, params=None):
        if sql == users.INSERT_USER:
            raise db.WriteConflict("certification failure on each of 4 attempts")
        return real(sql, params)
    monkeypatch.setattr(db, "execute", execute)


def test_a_lost_race_for_a_taken_name_is_the_409_of_a_single_server(app, make_user, monkeypatch):
    make_user("bob")
    _insert_conflicts(monkeypatch)
    with app.app_context():
        with pytest.raises(Conflict) as refused:
            users.create("BOB", "correct-horse-battery")
    assert (refused.value.field, str(refused.value)) == ("username", "The username 'BOB' is taken.")


def test_a_conflict_with_no_winner_stays_a_503(app, monkeypatch):
    _insert_conflicts(monkeypatch)
    with app.app_context():
        with pytest.raises(db.WriteConflict):
            users.create("carol", "correct-horse-battery")
        assert users.get_by_name("carol") is None


def test_registration_whose_commit_lost_the_race_is_a_409(app, make_user, monkeypatch):
    """The same race when the conflict surfaces at COMMIT (registration with an email is one transaction)."""
    make_user("dave")

    def conflicting(fn, *args, **kwargs):
        raise db.WriteConflict("certification failure at commit on each of 4 attempts")
    monkeypatch.setattr(db, "retrying", conflicting)
    with app.app_context():
        with pytest.raises(Conflict):
            email_verification.create_account("dave", "correct-horse-battery", "dave@example.com")
        with pytest.raises(db.WriteConflict):
            email_verification.create_account("erin", "correct-horse-battery")
