"""Revocation: logout, logout-all, password/admin changes and deletion, and purging old state."""
from datetime import timezone

import jwt
import pytest

import db
from support import bearer, query
from accounts import revocation, tokens
from accounts.users import User

PASSWORD = "correct-horse-battery"
REVOKED = {"status_code": 401, "error": "Invalid JWT",
           "description": "User does not exist or the token was revoked"}


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def log_in(client, username="alice", password=PASSWORD):
    response = client.post("/auth", json={"username": username, "password": password})
    assert response.status_code == 200
    return response.get_json()


def works(client, body):
    return client.get("/rest-auth", headers=bearer(body["access_token"])).status_code == 200


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


# --- POST /logout --------------------------------------------------------------------

def test_logout_revokes_the_access_token_and_its_session(app, client, alice):
    session = log_in(client)
    response = client.post("/logout", headers=bearer(session["access_token"]))
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    me = client.get("/rest-auth", headers=bearer(session["access_token"]))
    assert me.status_code == 401
    assert me.get_json() == REVOKED
    refreshed = client.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 401
    assert refreshed.get_json() == REVOKED


def test_logout_stores_the_jti_until_the_token_and_its_leeway_expire(app, client, alice):
    session = log_in(client)
    client.post("/logout", headers=bearer(session["access_token"]))
    access = claims(session["access_token"])
    rows = query(app, "SELECT jti, expires_at FROM revoked_token")
    assert [row["jti"] for row in rows] == [access["jti"]]
    expires = rows[0]["expires_at"].replace(tzinfo=timezone.utc).timestamp()
    assert expires == access["exp"] + app.config["JWT_LEEWAY"]
    family = query(app, "SELECT revoked_at FROM refresh_family WHERE id = %s", (access["fam"],))
    assert family[0]["revoked_at"] is not None


def test_logout_leaves_the_other_sessions_alone(client, alice):
    phone, laptop = log_in(client), log_in(client)
    client.post("/logout", headers=bearer(phone["access_token"]))
    assert works(client, laptop)
    assert client.post("/refresh", json={"refresh_token": laptop["refresh_token"]}).status_code == 200


def test_logging_out_twice_is_a_401(client, alice):
    session = log_in(client)
    client.post("/logout", headers=bearer(session["access_token"]))
    again = client.post("/logout", headers=bearer(session["access_token"]))
    assert again.status_code == 401
    assert again.get_json() == REVOKED


def test_logout_without_a_token_is_a_401(client):
    response = client.post("/logout")
    assert response.status_code == 401
    assert response.get_json() == {"status_code": 401, "error": "Authorization Required",
                                   "description": "Request does not contain an access token"}


def test_logout_of_an_access_token_without_a_session_revokes_it_by_jti(app, client, alice):
    with app.app_context():
        token = tokens.issue(User(alice["id"], "alice", False, 0), tokens.ACCESS, 600)
    assert client.post("/logout", headers=bearer(token)).status_code == 204
    assert client.get("/rest-auth", headers=bearer(token)).get_json() == REVOKED


def test_identity_is_still_one_query(app, client, alice, monkeypatch):
    session = log_in(client)
    calls = []
    real_run = db._run
    monkeypatch.setattr(db, "_run", lambda *args: calls.append(args[0]) or real_run(*args))
    assert works(client, session)
    assert len(calls) == 1


# --- POST /logout-all -------------------------------------------------------------------

def test_logout_all_revokes_every_session_and_token_of_the_caller(app, client, alice, make_user):
    make_user("bob", PASSWORD)
    phone, laptop, bob = log_in(client), log_in(client), log_in(client, "bob")
    response = client.post("/logout-all", headers=bearer(phone["access_token"]))
    assert response.status_code == 204
    assert response.data == b""
    for session in (phone, laptop):
        assert client.get("/rest-auth", headers=bearer(session["access_token"])).get_json() == REVOKED
        refreshed = client.post("/refresh", json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 401
    rows = query(app, "SELECT user_id, revoked_at FROM refresh_family")
    assert {(row["user_id"], row["revoked_at"] is None) for row in rows} == {
        (alice["id"], False), (bob_id(app), True)}
    assert works(client, bob)
    assert query(app, "SELECT token_version FROM user WHERE id = %s", (alice["id"],)) == [
        {"token_version": 1}]


def bob_id(app):
    return query(app, "SELECT id FROM user WHERE username = 'bob'")[0]["id"]


def test_a_new_login_after_logout_all_works(client, alice):
    client.post("/logout-all", headers=bearer(log_in(client)["access_token"]))
    assert works(client, log_in(client))


def test_logout_all_needs_a_token(client):
    assert client.post("/logout-all").status_code == 401


# --- the users module revokes too ------------------------------------------------------

def test_a_password_change_revokes_every_token(client, alice):
    session = log_in(client)
    response = client.patch(f"/users/{alice['id']}", headers=bearer(session["access_token"]),
                            json={"password": "another-long-passphrase", "current_password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/rest-auth", headers=bearer(session["access_token"])).get_json() == REVOKED
    refreshed = client.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 401
    fresh = log_in(client, password="another-long-passphrase")
    assert works(client, fresh)
    # The old session is no longer listed: only the new login's.
    listed = client.get("/sessions", headers=bearer(fresh["access_token"])).get_json()["sessions"]
    assert [s["current"] for s in listed] == [True]


def test_an_admin_flag_change_revokes_every_token_of_that_user(app, client, alice, make_user):
    make_user("root", PASSWORD, admin=True)
    admin, victim = log_in(client, "root"), log_in(client)
    response = client.patch(f"/users/{alice['id']}", headers=bearer(admin["access_token"]),
                            json={"admin": True})
    assert response.status_code == 200
    assert client.get("/rest-auth", headers=bearer(victim["access_token"])).get_json() == REVOKED
    assert works(client, admin)
    alive = query(app, "SELECT COUNT(*) AS n FROM refresh_family WHERE user_id = %s AND revoked_at IS NULL",
                  (alice["id"],))
    assert alive == [{"n": 0}]


def test_deleting_a_user_revokes_their_tokens(client, alice):
    session = log_in(client)
    response = client.delete(f"/users/{alice['id']}", headers=bearer(session["access_token"]))
    assert response.status_code == 204
    assert client.get("/rest-auth", headers=bearer(session["access_token"])).get_json() == REVOKED
    refreshed = client.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 401


# --- purging ------------------------------------------------------------------------------

def seed_dead_rows(app, user_id):
    """Two expired and one live revoked_token; one long-expired, one just-expired, one live family."""
    query(app, "INSERT INTO revoked_token (jti, expires_at) VALUES"
               " (REPEAT('a', 32), NOW() - INTERVAL 1 SECOND),"
               " (REPEAT('b', 32), NOW() - INTERVAL 1 DAY),"
               " (REPEAT('c', 32), NOW() + INTERVAL 1 HOUR)")
    query(app, "INSERT INTO refresh_family (id, user_id, current_jti, expires_at) VALUES"
               " (REPEAT('d', 32), %s, REPEAT('1', 32), NOW() - INTERVAL 1 DAY),"
               " (REPEAT('e', 32), %s, REPEAT('2', 32), NOW() - INTERVAL 1 SECOND),"
               " (REPEAT('f', 32), %s, REPEAT('3', 32), NOW() + INTERVAL 1 DAY)",
          (user_id, user_id, user_id))


def remaining(app):
    tokens_left = [row["jti"][0] for row in query(app, "SELECT jti FROM revoked_token ORDER BY jti")]
    families_left = [row["id"][0] for row in query(app, "SELECT id FROM refresh_family ORDER BY id")]
    return tokens_left, families_left


def test_purge_tokens_deletes_only_what_can_no_longer_matter(app, runner, alice):
    seed_dead_rows(app, alice["id"])
    result = runner.invoke(args=["purge-tokens"])
    assert result.exit_code == 0, result.output
    assert result.output == ("purged 2 expired revoked tokens and 1 expired sessions\n"
                             "purged 0 dead personal access tokens and 0 expired DPoP proof ids\n")
    # The just-expired family stays while an access token issued from it may live.
    assert remaining(app) == (["c"], ["e", "f"])


def test_purge_tokens_reports_an_unreachable_database(make_app):
    app = make_app(DB_PORT=1)
    result = app.test_cli_runner().invoke(args=["purge-tokens"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach the database")


def test_a_purge_is_bounded(app, alice):
    seed_dead_rows(app, alice["id"])
    with app.app_context():
        assert revocation.purge(batch=1) == (1, 1)
        assert revocation.purge(batch=1) == (1, 0)
        db.close_db()
    assert remaining(app) == (["c"], ["e", "f"])


def test_logout_purges_opportunistically(app, client, alice, monkeypatch):
    monkeypatch.setattr(revocation, "PURGE_ONE_IN", 1)
    seed_dead_rows(app, alice["id"])
    session = log_in(client)
    client.post("/logout", headers=bearer(session["access_token"]))
    tokens_left = remaining(app)[0]
    assert sorted(tokens_left) == sorted(["c", claims(session["access_token"])["jti"][0]])
    # By full id: the new session's own family id may begin with any hex digit.
    ids = [row["id"] for row in query(app, "SELECT id FROM refresh_family")]
    assert "d" * 32 not in ids and {"e" * 32, "f" * 32, claims(session["access_token"])["fam"]} == set(ids)


def test_refresh_purges_opportunistically(app, client, alice, monkeypatch):
    monkeypatch.setattr(revocation, "PURGE_ONE_IN", 1)
    seed_dead_rows(app, alice["id"])
    session = log_in(client)
    assert client.post("/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 200
    assert remaining(app)[0] == ["c"]


def test_no_purge_most_of_the_time(app, client, alice, monkeypatch):
    monkeypatch.setattr(revocation.random, "randrange", lambda n: 1)
    seed_dead_rows(app, alice["id"])
    client.post("/logout", headers=bearer(log_in(client)["access_token"]))
    assert len(remaining(app)[0]) == 4  # the three seeded and the logout's
