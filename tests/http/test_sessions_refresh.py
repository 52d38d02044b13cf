"""Refresh tokens: issued with every login, rotated by POST /refresh, single use, reuse revokes."""
import threading
import time
from datetime import timezone

import jwt
import pytest
from werkzeug.serving import make_server

from support import bearer, call, query
from accounts import tokens
from accounts.users import User

PASSWORD = "correct-horse-battery"
HEX32 = r"[0-9a-f]{32}"
TOKEN_KEYS = ["access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"]


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def family_row(app, family_id):
    rows = query(app, "SELECT id, user_id, current_jti, previous_jti, rotated_at, expires_at,"
                      " revoked_at, user_agent, ip FROM refresh_family WHERE id = %s", (family_id,))
    return rows[0] if rows else None


def issue(app, user, ttl, **extra):
    """A refresh token for the `make_user` dict `user`, signed by the app's key."""
    with app.app_context():
        return tokens.issue(User(user["id"], user["username"], False, 0), tokens.REFRESH, ttl, **extra)


def invalid_token(description, error="Invalid token"):
    return {"status_code": 401, "error": error, "description": description}


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


@pytest.fixture
def session(client, alice):
    """Log alice in; return the /auth body."""
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    return response.get_json()


def exchange(client, refresh_token):
    return client.post("/refresh", json={"refresh_token": refresh_token})


# --- issuing -------------------------------------------------------------------------

def test_login_returns_an_access_and_a_refresh_token_of_one_new_session(app, client, alice):
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD},
                           headers={"User-Agent": "agent/1.0"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert list(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == 30 * 24 * 3600
    access, refresh = claims(body["access_token"]), claims(body["refresh_token"])
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["fam"] == refresh["fam"]
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600
    row = family_row(app, refresh["fam"])
    assert row["user_id"] == alice["id"]
    assert row["current_jti"] == refresh["jti"] and row["previous_jti"] is None
    assert row["revoked_at"] is None
    assert (row["user_agent"], row["ip"]) == ("agent/1.0", "127.0.0.1")


def test_family_expiry_is_stored_in_utc_exactly_as_the_token_exp(app, session):
    refresh = claims(session["refresh_token"])
    row = family_row(app, refresh["fam"])
    assert row["expires_at"].replace(tzinfo=timezone.utc).timestamp() == refresh["exp"]


def test_a_long_user_agent_is_truncated_to_255_characters(app, client, alice):
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD},
                           headers={"User-Agent": "x" * 1000})
    row = family_row(app, claims(response.get_json()["refresh_token"])["fam"])
    assert row["user_agent"] == "x" * 255


def test_each_login_starts_its_own_session(client, alice):
    first = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    second = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    assert claims(first["refresh_token"])["fam"] != claims(second["refresh_token"])["fam"]


def test_the_access_token_never_outlives_its_session(make_app, alice):
    client = make_app(JWT_REFRESH_TTL=60).test_client()
    body = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    assert 59 <= body["expires_in"] <= 60
    assert claims(body["access_token"])["exp"] <= claims(body["refresh_token"])["exp"]


# --- exchanging ------------------------------------------------------------------------

def test_refresh_rotates_both_tokens_and_keeps_the_session(app, client, session):
    old = claims(session["refresh_token"])
    response = exchange(client, session["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert list(body) == TOKEN_KEYS
    new = claims(body["refresh_token"])
    assert new["fam"] == old["fam"] and new["jti"] != old["jti"]
    assert new["exp"] == old["exp"]  # absolute: rotation never extends a session
    assert claims(body["access_token"])["fam"] == old["fam"]
    row = family_row(app, old["fam"])
    assert (row["current_jti"], row["previous_jti"]) == (new["jti"], old["jti"])
    assert row["rotated_at"] is not None
    me = client.get("/rest-auth", headers=bearer(body["access_token"]))
    assert me.status_code == 200


def test_a_chain_of_refreshes_works_and_the_expiry_stays_put(client, session):
    token, exp = session["refresh_token"], claims(session["refresh_token"])["exp"]
    for _ in range(3):
        response = exchange(client, token)
        assert response.status_code == 200
        token = response.get_json()["refresh_token"]
        assert claims(token)["exp"] == exp
        assert response.get_json()["refresh_expires_in"] <= 30 * 24 * 3600


@pytest.mark.parametrize("scheme", ["Bearer", "JWT", "bearer"])
def test_the_refresh_token_may_come_in_the_authorization_header(client, session, scheme):
    response = client.post("/refresh", headers=bearer(session["refresh_token"], scheme))
    assert response.status_code == 200
    assert list(response.get_json()) == TOKEN_KEYS


def test_the_body_wins_over_an_access_token_in_the_header(client, session):
    response = client.post("/refresh", json={"refresh_token": session["refresh_token"]},
                           headers=bearer(session["access_token"]))
    assert response.status_code == 200


def test_no_refresh_token_is_a_401_challenge(client):
    response = client.post("/refresh")
    assert response.status_code == 401
    assert response.get_json() == {"status_code": 401, "error": "Authorization Required",
                                   "description": "Request does not contain a refresh token"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="Login Required"'


def test_an_empty_refresh_token_field_is_no_token(client):
    response = client.post("/refresh", json={"refresh_token": ""})
    assert response.status_code == 401
    assert response.get_json()["description"] == "Request does not contain a refresh token"


@pytest.mark.parametrize("body, status, expected", [
    ([], 400, {"status_code": 400, "error": "Bad Request",
               "description": "The JSON body must be an object."}),
    ({"refresh_token": 5}, 400, {"status_code": 400, "error": "Bad Request",
                                 "description": "'refresh_token' must be a string.",
                                 "field": "refresh_token"}),
    ({"refresh_token": ["a"]}, 400, {"status_code": 400, "error": "Bad Request",
                                     "description": "'refresh_token' must be a string.",
                                     "field": "refresh_token"}),
    ({"token": "x"}, 400, {"status_code": 400, "error": "Bad Request",
                           "description": "Unknown field 'token'.", "field": "token"}),
])
def test_bad_bodies_are_400s_naming_the_field(client, body, status, expected):
    response = client.post("/refresh", json=body)
    assert response.status_code == status
    assert response.get_json() == expected


def test_a_body_that_is_not_json_is_a_415(client):
    response = client.post("/refresh", data="refresh_token=x")
    assert response.status_code == 415
    assert response.get_json()["status_code"] == 415


@pytest.mark.parametrize("header, description", [
    ("Basic abc", "Unsupported authorization type. Expected 'Authorization: Bearer <JWT>' "
                  "or 'Authorization: JWT <JWT>'"),
    ("Bearer", "Token missing. Expected 'Authorization: Bearer <JWT>' or 'Authorization: JWT <JWT>'"),
    ("Bearer a b", "Token contains spaces. Expected 'Authorization: Bearer <JWT>' "
                   "or 'Authorization: JWT <JWT>'"),
])
def test_a_malformed_authorization_header_is_a_401(client, header, description):
    response = client.post("/refresh", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json() == invalid_token(description, error="Invalid JWT header")


def test_garbage_is_an_invalid_token(client):
    response = exchange(client, "not.a.token")
    assert response.status_code == 401
    assert response.get_json()["error"] == "Invalid token"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="Login Required", error="invalid_token"'


# --- token types never cross -----------------------------------------------------------

def test_an_access_token_is_not_a_refresh_token(client, session):
    response = exchange(client, session["access_token"])
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Expected a refresh token")


def test_an_access_token_in_the_header_is_not_a_refresh_token(client, session):
    response = client.post("/refresh", headers=bearer(session["access_token"]))
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Expected a refresh token")


def test_a_refresh_token_is_not_an_access_token(client, session):
    response = client.get("/rest-auth", headers=bearer(session["refresh_token"]))
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Expected an access token")


def test_a_refresh_token_cannot_log_out(client, session):
    response = client.post("/logout", headers=bearer(session["refresh_token"]))
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Expected an access token")


# --- single use and reuse detection ------------------------------------------------------

def test_reuse_within_the_grace_period_is_refused_without_revoking(app, client, session):
    rotated = exchange(client, session["refresh_token"]).get_json()
    again = exchange(client, session["refresh_token"])
    assert again.status_code == 401
    assert again.get_json() == invalid_token("Refresh token was already used")
    assert family_row(app, claims(session["refresh_token"])["fam"])["revoked_at"] is None
    assert exchange(client, rotated["refresh_token"]).status_code == 200
    assert client.get("/rest-auth", headers=bearer(rotated["access_token"])).status_code == 200


def test_reuse_after_the_grace_period_revokes_the_whole_session(app, client, session):
    fam = claims(session["refresh_token"])["fam"]
    rotated = exchange(client, session["refresh_token"]).get_json()
    query(app, "UPDATE refresh_family SET rotated_at = rotated_at - INTERVAL 11 SECOND WHERE id = %s",
          (fam,))
    again = exchange(client, session["refresh_token"])
    assert again.status_code == 401
    assert again.get_json() == invalid_token(
        "Refresh token was already used; the session has been revoked")
    assert family_row(app, fam)["revoked_at"] is not None
    # The thief's or the victim's newer tokens die with the session, access token included.
    newer = exchange(client, rotated["refresh_token"])
    assert newer.status_code == 401
    assert newer.get_json() == invalid_token("User does not exist or the token was revoked",
                                             error="Invalid JWT")
    me = client.get("/rest-auth", headers=bearer(rotated["access_token"]))
    assert me.status_code == 401


def test_with_no_grace_period_any_reuse_revokes(make_app, alice):
    app = make_app(JWT_REFRESH_GRACE=0)
    client = app.test_client()
    first = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    assert exchange(client, first["refresh_token"]).status_code == 200
    again = exchange(client, first["refresh_token"])
    assert again.get_json() == invalid_token(
        "Refresh token was already used; the session has been revoked")
    assert family_row(app, claims(first["refresh_token"])["fam"])["revoked_at"] is not None


def test_a_token_two_rotations_old_revokes_even_within_the_grace_period(app, client, session):
    second = exchange(client, session["refresh_token"]).get_json()
    exchange(client, second["refresh_token"])
    again = exchange(client, session["refresh_token"])
    assert again.get_json() == invalid_token(
        "Refresh token was already used; the session has been revoked")
    assert family_row(app, claims(session["refresh_token"])["fam"])["revoked_at"] is not None


def test_reuse_revokes_only_that_session(client, alice):
    one = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    other = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()
    exchange(client, one["refresh_token"])
    exchange(client, one["refresh_token"])  # within grace: refused only
    assert exchange(client, other["refresh_token"]).status_code == 200


def test_an_expired_session_is_refused(app, client, session):
    fam = claims(session["refresh_token"])["fam"]
    query(app, "UPDATE refresh_family SET expires_at = NOW() - INTERVAL 1 SECOND WHERE id = %s", (fam,))
    response = exchange(client, session["refresh_token"])
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Refresh token has expired")


def test_an_expired_refresh_token_is_refused(app, client, alice):
    token = issue(app, alice, 1, exp=int(time.time()) - 60, fam="a" * 32)
    response = exchange(client, token)
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Signature has expired")


def test_a_deleted_session_is_refused(app, client, session):
    query(app, "DELETE FROM refresh_family")
    response = exchange(client, session["refresh_token"])
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Refresh token was revoked")


def test_a_token_is_bound_to_its_own_user(app, client, make_user, session):
    """A (validly signed) token of bob naming alice's session and jti neither works nor harms it."""
    bob = make_user("bob", PASSWORD)
    alice_refresh = claims(session["refresh_token"])
    forged = issue(app, bob, 3600, jti=alice_refresh["jti"], fam=alice_refresh["fam"])
    response = exchange(client, forged)
    assert response.status_code == 401
    assert response.get_json() == invalid_token("Refresh token was revoked")
    assert family_row(app, alice_refresh["fam"])["revoked_at"] is None
    assert exchange(client, session["refresh_token"]).status_code == 200


def test_a_malformed_family_claim_is_refused(app, client, alice):
    token = issue(app, alice, 3600, fam="../etc")
    response = exchange(client, token)
    assert response.get_json() == invalid_token("Token family (fam) is malformed")


def test_a_refresh_token_without_a_family_is_refused(app, client, alice):
    token = issue(app, alice, 3600)
    response = exchange(client, token)
    assert response.get_json() == invalid_token("Refresh token has no session (fam)")


def test_logout_all_ends_refreshing(client, session):
    assert client.post("/logout-all", headers=bearer(session["access_token"])).status_code == 204
    response = exchange(client, session["refresh_token"])
    assert response.status_code == 401
    assert response.get_json() == invalid_token("User does not exist or the token was revoked",
                                                error="Invalid JWT")


def test_a_deleted_user_cannot_refresh(app, client, session):
    query(app, "DELETE FROM user")
    response = exchange(client, session["refresh_token"])
    assert response.status_code == 401
    assert response.get_json()["error"] == "Invalid JWT"


# --- concurrency: a real threaded server ----------------------------------------------

@pytest.fixture
def served(request):
    """Serve an app on a real threaded werkzeug server; yields a function app -> base URL."""
    servers = []

    def serve(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        thread.join(5)
        server.server_close()


def exchange_concurrently(base, refresh_token, n=20):
    """n threads released at once, each exchanging the same token; returns [(status, body)]."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        status, _, body = call("POST", base + "/refresh", body={"refresh_token": refresh_token})
        results[i] = status, body

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_of_20_concurrent_exchanges_exactly_one_succeeds(make_app, alice, served):
    app = make_app()
    base = served(app)
    status, _, first = call("POST", base + "/auth", body={"username": "alice", "password": PASSWORD})
    assert status == 200
    results = exchange_concurrently(base, first["refresh_token"])
    winners = [body for status, body in results if status == 200]
    losers = [body for status, body in results if status != 200]
    assert len(winners) == 1
    assert losers == [invalid_token("Refresh token was already used")] * 19
    # The racing losers were inside the grace period: the winner's session lives on.
    status, _, _ = call("POST", base + "/refresh", body={"refresh_token": winners[0]["refresh_token"]})
    assert status == 200


def test_concurrent_exchanges_without_grace_one_wins_then_reuse_revokes(make_app, alice, served):
    app = make_app(JWT_REFRESH_GRACE=0)
    base = served(app)
    _, _, first = call("POST", base + "/auth", body={"username": "alice", "password": PASSWORD})
    results = exchange_concurrently(base, first["refresh_token"])
    assert [status for status, _ in results].count(200) == 1
    losers = [body for status, body in results if status != 200]
    assert all(body["status_code"] == 401 for body in losers)
    # The first loser to look detects reuse and revokes; later ones find the session revoked.
    descriptions = {body["description"] for body in losers}
    assert "Refresh token was already used; the session has been revoked" in descriptions
    assert descriptions <= {"Refresh token was already used; the session has been revoked",
                            "Refresh token was revoked",
                            "User does not exist or the token was revoked"}
    assert family_row(app, claims(first["refresh_token"])["fam"])["revoked_at"] is not None


def test_an_overlong_client_address_is_cut_to_the_column(app, alice):
    client = app.test_client()
    response = client.post("/auth", json={"username": "alice", "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "1" * 100})
    assert response.status_code == 200
    assert family_row(app, claims(response.get_json()["refresh_token"])["fam"])["ip"] == "1" * 45
