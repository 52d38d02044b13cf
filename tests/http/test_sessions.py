"""Sessions: GET /sessions lists live refresh families, DELETE /sessions/<id> revokes one."""
import re
from datetime import datetime, timezone

import jwt
import pytest

from support import bearer, query

PASSWORD = "correct-horse-battery"
SESSION_KEYS = ["id", "created", "last_used", "user_agent", "ip", "expires_at", "current"]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
NO_SUCH_SESSION = {"status_code": 404, "error": "Not Found", "description": "No such session."}
REVOKED = {"status_code": 401, "error": "Invalid JWT",
           "description": "User does not exist or the token was revoked"}


def fam(body):
    return jwt.decode(body["refresh_token"], options={"verify_signature": False})["fam"]


def log_in(client, username="alice", agent="test-agent"):
    response = client.post("/auth", json={"username": username, "password": PASSWORD},
                           headers={"User-Agent": agent})
    assert response.status_code == 200
    return response.get_json()


def sessions(client, body, query_string=""):
    return client.get("/sessions" + query_string, headers=bearer(body["access_token"]))


@pytest.fixture
def users(make_user):
    return {"alice": make_user("alice", PASSWORD), "bob": make_user("bob", PASSWORD),
            "root": make_user("root", PASSWORD, admin=True)}


# --- listing ---------------------------------------------------------------------------

def test_the_caller_sees_their_live_sessions_and_which_is_current(app, client, users):
    phone = log_in(client, agent="phone/1")
    laptop = log_in(client, agent="laptop/2")
    log_in(client, "bob")
    response = sessions(client, laptop)
    assert response.status_code == 200
    listed = response.get_json()["sessions"]
    assert sorted(s["id"] for s in listed) == sorted([fam(phone), fam(laptop)])
    for item in listed:
        assert list(item) == SESSION_KEYS
        assert all(ISO.fullmatch(item[k]) for k in ("created", "last_used", "expires_at"))
        assert item["ip"] == "127.0.0.1"
    by_id = {s["id"]: s for s in listed}
    assert by_id[fam(laptop)]["current"] is True and by_id[fam(laptop)]["user_agent"] == "laptop/2"
    assert by_id[fam(phone)]["current"] is False and by_id[fam(phone)]["user_agent"] == "phone/1"
    expires = datetime.strptime(by_id[fam(laptop)]["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    exp = jwt.decode(laptop["refresh_token"], options={"verify_signature": False})["exp"]
    assert expires.replace(tzinfo=timezone.utc).timestamp() == exp


def test_the_most_recently_used_session_comes_first(app, client, users):
    old, new = log_in(client), log_in(client)
    query(app, "UPDATE refresh_family SET last_used = NOW() - INTERVAL 1 HOUR WHERE id = %s", (fam(new),))
    listed = sessions(client, old).get_json()["sessions"]
    assert [s["id"] for s in listed] == [fam(old), fam(new)]


def test_revoked_and_expired_sessions_are_not_listed(app, client, users):
    kept, revoked, expired = log_in(client), log_in(client), log_in(client)
    client.delete(f"/sessions/{fam(revoked)}", headers=bearer(kept["access_token"]))
    query(app, "UPDATE refresh_family SET expires_at = NOW() - INTERVAL 1 SECOND WHERE id = %s",
          (fam(expired),))
    assert [s["id"] for s in sessions(client, kept).get_json()["sessions"]] == [fam(kept)]


def test_refreshing_keeps_the_session_current(client, users):
    first = log_in(client)
    rotated = client.post("/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    listed = sessions(client, rotated).get_json()["sessions"]
    assert [(s["id"], s["current"]) for s in listed] == [(fam(first), True)]


def test_user_id_of_the_caller_is_allowed(client, users):
    alice = log_in(client)
    response = sessions(client, alice, f"?user_id={users['alice']['id']}")
    assert response.status_code == 200
    assert [s["current"] for s in response.get_json()["sessions"]] == [True]


def test_an_admin_lists_another_users_sessions(client, users):
    bob = log_in(client, "bob")
    admin = log_in(client, "root")
    response = sessions(client, admin, f"?user_id={users['bob']['id']}")
    assert response.status_code == 200
    listed = response.get_json()["sessions"]
    assert [(s["id"], s["current"]) for s in listed] == [(fam(bob), False)]


def test_a_non_admin_may_not_list_another_users_sessions(client, users):
    alice = log_in(client)
    response = sessions(client, alice, f"?user_id={users['bob']['id']}")
    assert response.status_code == 403
    assert response.get_json() == {"status_code": 403, "error": "Forbidden",
                                   "description": "Only an admin may list another user's sessions.",
                                   "field": "user_id"}


def test_an_admin_asking_for_an_unknown_user_gets_a_404(client, users):
    admin = log_in(client, "root")
    response = sessions(client, admin, "?user_id=4294967295")
    assert response.status_code == 404
    assert response.get_json() == {"status_code": 404, "error": "Not Found",
                                   "description": "No such user.", "field": "user_id"}


@pytest.mark.parametrize("value", ["", "0", "-1", "abc", "1.5", "4294967296", "99999999999999",
                                   "1 OR 1=1", "\uff11", "1e3"])
def test_a_bad_user_id_is_a_400(client, users, value):
    admin = log_in(client, "root")
    response = client.get("/sessions", query_string={"user_id": value},
                          headers=bearer(admin["access_token"]))
    assert response.status_code == 400
    assert response.get_json() == {"status_code": 400, "error": "Bad Request",
                                   "description": "'user_id' must be a positive integer.",
                                   "field": "user_id"}


def test_listing_needs_an_access_token(client, users):
    assert client.get("/sessions").status_code == 401
    refresh_only = {"access_token": log_in(client)["refresh_token"]}
    response = sessions(client, refresh_only)
    assert response.status_code == 401
    assert response.get_json()["description"] == "Expected an access token"


# --- revoking -------------------------------------------------------------------------------

def test_revoking_a_session_ends_its_refresh_and_access_tokens(client, users):
    keep, lost = log_in(client), log_in(client)
    response = client.delete(f"/sessions/{fam(lost)}", headers=bearer(keep["access_token"]))
    assert response.status_code == 204
    assert response.data == b"" and "Content-Type" not in response.headers
    assert client.get("/rest-auth", headers=bearer(lost["access_token"])).get_json() == REVOKED
    refreshed = client.post("/refresh", json={"refresh_token": lost["refresh_token"]})
    assert refreshed.status_code == 401
    assert client.get("/rest-auth", headers=bearer(keep["access_token"])).status_code == 200


def test_revoking_the_current_session_logs_the_caller_out(client, users):
    me = log_in(client)
    assert client.delete(f"/sessions/{fam(me)}", headers=bearer(me["access_token"])).status_code == 204
    assert client.get("/rest-auth", headers=bearer(me["access_token"])).get_json() == REVOKED


def test_revoking_twice_is_a_404(client, users):
    keep, lost = log_in(client), log_in(client)
    client.delete(f"/sessions/{fam(lost)}", headers=bearer(keep["access_token"]))
    again = client.delete(f"/sessions/{fam(lost)}", headers=bearer(keep["access_token"]))
    assert again.status_code == 404
    assert again.get_json() == NO_SUCH_SESSION


def test_another_users_session_is_a_404_and_stays_alive(client, users):
    alice, bob = log_in(client), log_in(client, "bob")
    response = client.delete(f"/sessions/{fam(bob)}", headers=bearer(alice["access_token"]))
    assert response.status_code == 404
    assert response.get_json() == NO_SUCH_SESSION
    assert client.post("/refresh", json={"refresh_token": bob["refresh_token"]}).status_code == 200


def test_an_admin_revokes_anyones_session(client, users):
    bob, admin = log_in(client, "bob"), log_in(client, "root")
    response = client.delete(f"/sessions/{fam(bob)}", headers=bearer(admin["access_token"]))
    assert response.status_code == 204
    assert client.get("/rest-auth", headers=bearer(bob["access_token"])).get_json() == REVOKED


def test_an_expired_session_cannot_be_revoked(app, client, users):
    me, old = log_in(client), log_in(client)
    query(app, "UPDATE refresh_family SET expires_at = NOW() - INTERVAL 1 SECOND WHERE id = %s",
          (fam(old),))
    response = client.delete(f"/sessions/{fam(old)}", headers=bearer(me["access_token"]))
    assert response.get_json() == NO_SUCH_SESSION


@pytest.mark.parametrize("session_id", [
    "0" * 31, "0" * 33, "A" * 32, "g" * 32, "1", "' OR '1'='1", "..%2F..%2Fetc", "%00" * 4,
])
def test_a_malformed_session_id_is_a_404(client, users, session_id):
    me = log_in(client)
    response = client.delete(f"/sessions/{session_id}", headers=bearer(me["access_token"]))
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 404


def test_revoking_needs_an_access_token(client, users):
    me = log_in(client)
    response = client.delete(f"/sessions/{fam(me)}")
    assert response.status_code == 401
    assert client.post("/refresh", json={"refresh_token": me["refresh_token"]}).status_code == 200
