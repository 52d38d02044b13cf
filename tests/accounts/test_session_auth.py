"""accounts.session_auth.begin(): a session and how it was authenticated are written together or not at all."""
import pymysql
import pytest

import db
from accounts import session_auth


def test_a_session_is_never_left_without_its_amr(app, make_user, monkeypatch):
    user = make_user("alice")
    monkeypatch.setattr(session_auth, "INSERT", "INSERT INTO no_such_table (x) VALUES (%s, %s, %s)")
    with app.app_context():
        with pytest.raises(pymysql.err.ProgrammingError):
            session_auth.begin(user["id"], "agent", "127.0.0.1", ["pwd"])
        assert db.one("SELECT COUNT(*) AS n FROM refresh_family")["n"] == 0


def test_begin_records_the_session_and_its_claims(app, make_user):
    user = make_user("bob")
    with app.app_context():
        family, claims = session_auth.begin(user["id"], "agent", "127.0.0.1", ["pwd", "otp"])
        assert claims["amr"] == ["pwd", "otp"]
        assert session_auth.claims(family.id) == claims
        row = db.one("SELECT user_id, user_agent, ip FROM refresh_family WHERE id = %s", (family.id,))
        assert row == {"user_id": user["id"], "user_agent": "agent", "ip": "127.0.0.1"}
