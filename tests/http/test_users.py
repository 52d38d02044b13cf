"""Users: list, read, change, delete. Only the user or an admin; others' rows are 404."""
import re

import pytest

import db
from support import bearer

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "a-brand-new-password"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
NOT_FOUND = {"status_code": 404, "error": "Not Found", "description": "No such user."}


@pytest.fixture
def alice(make_user, login):
    user = make_user("alice", PASSWORD)
    user["headers"] = bearer(login("alice", PASSWORD))
    return user


@pytest.fixture
def bob(make_user, login):
    user = make_user("bob", PASSWORD)
    user["headers"] = bearer(login("bob", PASSWORD))
    return user


@pytest.fixture
def admin(make_user, login):
    user = make_user("boss", PASSWORD, admin=True)
    user["headers"] = bearer(login("boss", PASSWORD))
    return user


def row(app, user_id):
    with app.app_context():
        found = db.one("SELECT id, username, password, is_admin, token_version FROM user"
                       " WHERE id = %s", (user_id,))
        db.close_db()
    return found


def count(app, sql, params):
    with app.app_context():
        n = db.one(sql, params)["n"]
        db.close_db()
    return n


# --- anonymous ------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/users"), ("get", "/users/1"), ("patch", "/users/1"),
    ("put", "/users/1"), ("delete", "/users/1"),
])
def test_anonymous_is_401(client, alice, method, path):
    response = getattr(client, method)(path, json={"username": "x-y-z"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "Authorization Required"
    assert "WWW-Authenticate" in response.headers
    assert row(client.application, alice["id"])["username"] == "alice"


# --- listing ----------------------------------------------------------------------

def test_a_user_lists_only_themselves(client, alice, bob):
    response = client.get("/users", headers=alice["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["next"] is None
    assert len(body["users"]) == 1
    user = body["users"][0]
    assert set(user) == {"id", "username", "created"}  # no hash, no admin flag
    assert user["id"] == alice["id"] and user["username"] == "alice"
    assert ISO_UTC.fullmatch(user["created"])


def test_admin_lists_everyone_with_the_admin_flag(client, alice, bob, admin):
    response = client.get("/users", headers=admin["headers"])
    assert response.status_code == 200
    users = response.get_json()["users"]
    assert [u["username"] for u in users] == ["boss", "bob", "alice"]  # newest first
    assert [u["admin"] for u in users] == [True, False, False]
    assert all(set(u) == {"id", "username", "created", "admin"} for u in users)
    assert "password" not in response.get_data(as_text=True)


def test_admin_pages_through_users(client, make_user, admin):
    for n in range(5):
        make_user(f"user{n}", PASSWORD)
    seen, cursor = [], None
    for _ in range(10):
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = client.get("/users", headers=admin["headers"], query_string=query).get_json()
        assert len(body["users"]) <= 2
        seen += [u["username"] for u in body["users"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == ["user4", "user3", "user2", "user1", "user0", "boss"]


@pytest.mark.parametrize("query, field", [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"), ({"cursor": "!!"}, "cursor"), ({"cursor": "MA"}, "cursor"),
])
def test_bad_page_arguments_are_400(client, alice, query, field):
    response = client.get("/users", headers=alice["headers"], query_string=query)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


# --- reading one -----------------------------------------------------------------

def test_a_user_reads_themselves(client, alice):
    response = client.get(f"/users/{alice['id']}", headers=alice["headers"])
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"id", "username", "created", "mfa"}
    assert body["id"] == alice["id"]


def test_a_user_cannot_read_another_user(client, alice, bob):
    response = client.get(f"/users/{bob['id']}", headers=alice["headers"])
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    # exactly what an id that does not exist answers
    assert client.get("/users/999999", headers=alice["headers"]).get_json() == NOT_FOUND


def test_admin_reads_anyone(client, alice, admin):
    response = client.get(f"/users/{alice['id']}", headers=admin["headers"])
    assert response.status_code == 200
    assert response.get_json()["admin"] is False


def test_admin_gets_404_for_a_missing_user(client, admin):
    assert client.get("/users/999999", headers=admin["headers"]).get_json() == NOT_FOUND


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", "01", "99999999999", "1e3", "%20"])
@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_ids_that_are_not_positive_integers_are_404(client, admin, bad_id, method):
    response = getattr(client, method)(f"/users/{bad_id}", headers=admin["headers"],
                                       json={"username": "whatever"})
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 404


# --- changing ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_user_renames_themselves(client, app, alice, method):
    response = getattr(client, method)(f"/users/{alice['id']}", headers=alice["headers"],
                                       json={"username": "alice2"})
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice2"
    assert set(response.get_json()) == {"id", "username", "created"}
    # a rename does not revoke tokens
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 200
    assert row(app, alice["id"])["token_version"] == 0


@pytest.mark.parametrize("method", ["patch", "put"])
def test_password_change_needs_the_current_password_and_revokes_tokens(client, app, alice, method):
    path = f"/users/{alice['id']}"
    response = getattr(client, method)(path, headers=alice["headers"],
                                       json={"password": NEW_PASSWORD, "current_password": PASSWORD})
    assert response.status_code == 200
    assert row(app, alice["id"])["token_version"] == 1
    # the old token no longer works; the new password does, the old does not
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 401
    assert client.post("/auth", json={"username": "alice", "password": PASSWORD}).status_code == 401
    assert client.post("/auth", json={"username": "alice", "password": NEW_PASSWORD}).status_code == 200


def test_password_change_without_current_password_is_400(client, app, alice):
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"],
                            json={"password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.get_json()["field"] == "current_password"
    assert row(app, alice["id"])["token_version"] == 0


def test_password_change_with_a_wrong_current_password_is_403(client, app, alice):
    before = row(app, alice["id"])["password"]
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"],
                            json={"password": NEW_PASSWORD, "current_password": "not-it-at-all"})
    assert response.status_code == 403
    assert response.get_json()["field"] == "current_password"
    assert row(app, alice["id"])["password"] == before
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 200


def test_admin_changes_own_password_with_current_password_too(client, admin):
    response = client.patch(f"/users/{admin['id']}", headers=admin["headers"],
                            json={"password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.get_json()["field"] == "current_password"


def test_admin_resets_another_users_password_without_theirs(client, app, alice, admin):
    response = client.patch(f"/users/{alice['id']}", headers=admin["headers"],
                            json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert response.get_json()["admin"] is False
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 401
    assert client.post("/auth", json={"username": "alice", "password": NEW_PASSWORD}).status_code == 200
    # the admin's own token is untouched
    assert client.get("/rest-auth", headers=admin["headers"]).status_code == 200


def test_admin_sending_current_password_for_someone_else_is_400(client, alice, admin):
    response = client.patch(f"/users/{alice['id']}", headers=admin["headers"],
                            json={"password": NEW_PASSWORD, "current_password": PASSWORD})
    assert response.status_code == 400
    assert response.get_json()["field"] == "current_password"


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_a_user_cannot_change_or_delete_another_user(client, app, alice, bob, method):
    response = getattr(client, method)(f"/users/{bob['id']}", headers=alice["headers"],
                                       json={"username": "hijacked"})
    assert response.status_code == 404
    assert response.get_json() == NOT_FOUND
    assert row(app, bob["id"])["username"] == "bob"


def test_renaming_to_a_taken_name_is_409(client, alice, bob):
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"],
                            json={"username": "BOB"})
    assert response.status_code == 409
    assert response.get_json()["field"] == "username"


@pytest.mark.parametrize("body, status, field", [
    ({}, 400, None),
    ({"username": None}, 400, "username"),
    ({"username": 5}, 400, "username"),
    ({"username": "no"}, 422, "username"),
    ({"username": "bad name"}, 422, "username"),
    ({"password": "short", "current_password": PASSWORD}, 422, "password"),
    ({"password": "password1", "current_password": PASSWORD}, 422, "password"),
    ({"password": 12345678, "current_password": PASSWORD}, 400, "password"),
    ({"password": NEW_PASSWORD, "current_password": 5}, 400, "current_password"),
    ({"current_password": PASSWORD}, 400, None),
    ({"current_password": PASSWORD, "username": "alice3"}, 400, "current_password"),
    ({"username": "alice3", "email": "a@b"}, 422, "email"),  # malformed address (issue 14)
    ({"username": "alice3", "phone": "555"}, 400, "phone"),
    ({"username": "alice3", "is_admin": True}, 400, "is_admin"),
    ({"username": "alice3", "role": "admin"}, 400, "role"),
    ({"username": "alice3", "id": 99}, 400, "id"),
    ({"username": "alice3", "password_hash": "x"}, 400, "password_hash"),
])
def test_bad_updates(client, app, alice, body, status, field):
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"], json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json().get("field") == field
    after = row(app, alice["id"])
    assert after["username"] == "alice" and after["token_version"] == 0


@pytest.mark.parametrize("kwargs, status", [
    ({"data": "username=x", "content_type": "application/x-www-form-urlencoded"}, 415),
    ({"data": "{", "content_type": "application/json"}, 400),
    ({"data": '"alice"', "content_type": "application/json"}, 400),
    ({"data": '{"username": "' + "x" * 70_000 + '"}', "content_type": "application/json"}, 413),
])
def test_bad_update_bodies(client, alice, kwargs, status):
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"], **kwargs)
    assert response.status_code == status
    assert response.get_json()["status_code"] == status


# --- admin flag -------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False])
def test_a_user_cannot_touch_the_admin_flag(client, app, alice, value):
    response = client.patch(f"/users/{alice['id']}", headers=alice["headers"], json={"admin": value})
    assert response.status_code == 403
    assert response.get_json()["field"] == "admin"
    assert row(app, alice["id"])["is_admin"] == 0


def test_admin_grants_and_revokes_admin(client, app, alice, admin, login):
    path = f"/users/{alice['id']}"
    response = client.patch(path, headers=admin["headers"], json={"admin": True})
    assert response.status_code == 200
    assert response.get_json()["admin"] is True
    assert row(app, alice["id"])["is_admin"] == 1
    # the change revokes alice's tokens: she logs in again and is an admin now
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 401
    alice_admin = bearer(login("alice", PASSWORD))
    assert len(client.get("/users", headers=alice_admin).get_json()["users"]) == 2
    response = client.patch(path, headers=admin["headers"], json={"admin": False})
    assert response.get_json()["admin"] is False
    assert row(app, alice["id"])["token_version"] == 2
    assert client.get("/users", headers=alice_admin).status_code == 401


def test_setting_the_admin_flag_to_its_value_revokes_nothing(client, app, alice, admin):
    response = client.patch(f"/users/{alice['id']}", headers=admin["headers"], json={"admin": False})
    assert response.status_code == 200
    assert row(app, alice["id"])["token_version"] == 0


@pytest.mark.parametrize("value", ["true", 1, None, "yes"])
def test_admin_flag_must_be_a_boolean(client, alice, admin, value):
    response = client.patch(f"/users/{alice['id']}", headers=admin["headers"], json={"admin": value})
    assert response.status_code == 400
    assert response.get_json()["field"] == "admin"


def test_admin_renames_anyone(client, bob, admin):
    response = client.put(f"/users/{bob['id']}", headers=admin["headers"], json={"username": "robert"})
    assert response.status_code == 200
    assert response.get_json()["username"] == "robert"


# --- deleting ------------------------------------------------------------------

def _add_rows(app, user_id):
    with app.app_context():
        db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 't', 'b')", (user_id,))
        db.execute("INSERT INTO author (user_id, name, book, country) VALUES (%s, 'n', 'b', 'c')",
                   (user_id,))
        db.execute("INSERT INTO refresh_family (id, user_id, current_jti, expires_at)"
                   " VALUES (%s, %s, %s, UTC_TIMESTAMP() + INTERVAL 1 DAY)",
                   ("f" * 31 + str(user_id % 10), user_id, "a" * 32))
        db.close_db()


def test_a_user_deletes_themselves_with_everything_they_own(client, app, alice, bob):
    _add_rows(app, alice["id"])
    _add_rows(app, bob["id"])
    tables = ("post", "author", "refresh_family")
    sql = "SELECT COUNT(*) AS n FROM {} WHERE user_id = %s"
    bobs = [count(app, sql.format(table), (bob["id"],)) for table in tables]
    response = client.delete(f"/users/{alice['id']}", headers=alice["headers"])
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert row(app, alice["id"]) is None
    for table in tables:
        assert count(app, sql.format(table), (alice["id"],)) == 0
    assert [count(app, sql.format(table), (bob["id"],)) for table in tables] == bobs  # untouched
    # the deleted user's token is dead; deleting again is a 401, not a 500
    assert client.get("/rest-auth", headers=alice["headers"]).status_code == 401
    assert client.delete(f"/users/{alice['id']}", headers=alice["headers"]).status_code == 401


def test_admin_deletes_anyone(client, app, alice, admin):
    _add_rows(app, alice["id"])
    assert client.delete(f"/users/{alice['id']}", headers=admin["headers"]).status_code == 204
    assert row(app, alice["id"]) is None
    assert client.delete(f"/users/{alice['id']}", headers=admin["headers"]).get_json() == NOT_FOUND


def test_a_failed_delete_leaves_everything(client, app, alice, monkeypatch):
    """A failure halfway through rolls back the rows already deleted."""
    _add_rows(app, alice["id"])
    import accounts.users
    monkeypatch.setattr(accounts.users, "DELETE_USER", "DELETE FROM no_such_table WHERE id = %s")
    response = client.delete(f"/users/{alice['id']}", headers=alice["headers"])
    assert response.status_code == 500
    assert response.get_json()["status_code"] == 500
    assert row(app, alice["id"]) is not None
    assert count(app, "SELECT COUNT(*) AS n FROM post WHERE user_id = %s", (alice["id"],)) == 1
    assert count(app, "SELECT COUNT(*) AS n FROM author WHERE user_id = %s", (alice["id"],)) == 1


def test_guessing_current_password_is_throttled_like_a_login(make_app, make_user):
    """current_password is checked by authenticate(), so the account's failure delay applies."""
    make_user("alice", PASSWORD)
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="100/minute",
                      RATELIMIT_LOGIN_PER_USER="100/minute", LOGIN_FREE_FAILURES=2).test_client()
    token = client.post("/auth", json={"username": "alice", "password": PASSWORD}).get_json()["access_token"]
    me = client.get("/users", headers=bearer(token)).get_json()["users"][0]["id"]
    statuses = [client.patch(f"/users/{me}", headers=bearer(token),
                             json={"password": NEW_PASSWORD, "current_password": f"guess-{n}"}).status_code
                for n in range(4)]
    assert statuses[:2] == [403, 403]
    assert 429 in statuses[2:]
