"""Personal access tokens: /tokens, using a PAT wherever an access token goes, scopes, lifetime."""
import hashlib

import pytest

import db
from accounts import personal_tokens
from support import assert_error, bearer, query, require_redis

ALL_READ = ["posts:read", "authors:read", "users:read"]


@pytest.fixture
def make_pat(client):
    """Create a PAT through POST /tokens with `headers`; return the 201 body (with the token)."""
    def make(headers, scopes=ALL_READ, name="script", **extra):
        response = client.post("/tokens", json={"name": name, "scopes": scopes, **extra}, headers=headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return make


def test_create_shows_the_token_once_and_stores_only_its_hash(client, app, people, make_pat):
    body = make_pat(people.alice.headers, ["posts:read", "posts:write"], expires_in=3600)
    token = body["token"]
    assert token.startswith("jwtapi_pat_") and personal_tokens.well_formed(token)
    assert body["name"] == "script" and body["scopes"] == ["posts:read", "posts:write"]
    assert body["user_id"] == people.alice.id and body["last_used"] is None
    rows = query(app, "SELECT token_hash, name FROM personal_token")
    assert rows == [{"token_hash": hashlib.sha256(token.encode()).digest(), "name": "script"}]
    listed = client.get("/tokens", headers=people.alice.headers)
    assert listed.headers["Cache-Control"] == "no-store"
    assert token not in listed.get_data(as_text=True)
    [entry] = listed.get_json()["tokens"]
    assert set(entry) == {"id", "user_id", "name", "scopes", "created", "expires", "last_used",
                          "last_used_ip"}
    one = client.get(f"/tokens/{body['id']}", headers=people.alice.headers)
    assert one.status_code == 200 and one.get_json() == entry
    assert client.post("/tokens", json={"name": "x", "scopes": ["posts:read"]},
                       headers=people.alice.headers).headers["Location"].endswith("/tokens/" + str(body["id"] + 1))


@pytest.mark.parametrize("header", ["Authorization", "x-access-tokens"])
def test_a_pat_works_where_an_access_token_does(client, people, make_pat, header):
    token = make_pat(people.alice.headers, ["posts:read"])["token"]
    headers = bearer(token) if header == "Authorization" else {"x-access-tokens": token}
    response = client.get("/rest-auth", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["user"] == {"id": people.alice.id, "username": "alice"}
    posts = client.get(f"/users/{people.alice.id}/posts", headers=headers)
    assert posts.status_code == 200 and posts.get_json()["posts"] == []


def test_a_missing_scope_is_403_insufficient_scope(client, people, make_pat):
    token = make_pat(people.alice.headers, ["posts:read"])["token"]
    response = client.post(f"/users/{people.alice.id}/posts", json={"title": "t", "body": "b"},
                           headers=bearer(token))
    assert_error(response, 403, "insufficient_scope", "This token lacks the scope 'posts:write'.")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="insufficient_scope"' in challenge
    assert 'scope="posts:write"' in challenge
    assert_error(client.get("/authors", headers=bearer(token)), 403, "insufficient_scope")


def test_write_scope_lets_the_pat_write(client, people, make_pat):
    token = make_pat(people.alice.headers, ["posts:write"])["token"]
    created = client.post(f"/users/{people.alice.id}/posts", json={"title": "t", "body": "b"},
                          headers=bearer(token))
    assert created.status_code == 201 and created.get_json()["title"] == "t"


def test_a_pat_never_reaches_another_users_rows(client, people, make_pat):
    token = make_pat(people.alice.headers, ["posts:read", "users:read"])["token"]
    assert_error(client.get(f"/users/{people.bob.id}/posts", headers=bearer(token)), 404)
    assert_error(client.get(f"/users/{people.bob.id}", headers=bearer(token)), 404)


@pytest.mark.parametrize("method,path,body", [
    ("post", "/tokens", {"name": "again", "scopes": ["posts:read"]}),
    ("get", "/tokens", None),
    ("delete", "/tokens/1", None),
    ("get", "/sessions", None),
    ("post", "/logout", None),
    ("post", "/logout-all", None),
])
def test_a_pat_never_manages_authentication(client, people, make_pat, method, path, body):
    token = make_pat(people.alice.headers, list(personal_tokens.SCOPES[:6]))["token"]
    response = getattr(client, method)(path, json=body, headers=bearer(token))
    assert_error(response, 403, "insufficient_scope")
    assert "cannot manage authentication" in response.headers["WWW-Authenticate"]


def test_a_pat_cannot_change_the_password_even_with_users_write(client, people, make_pat):
    token = make_pat(people.alice.headers, ["users:write"])["token"]
    response = client.patch(f"/users/{people.alice.id}", headers=bearer(token),
                            json={"password": "another-long-password", "current_password": people.alice.password})
    assert_error(response, 403, "insufficient_scope")
    renamed = client.patch(f"/users/{people.alice.id}", json={"username": "alicia"}, headers=bearer(token))
    assert renamed.status_code == 200 and renamed.get_json()["username"] == "alicia"


def test_scope_escalation_is_refused(client, people):
    for scopes, status in ((["introspect"], 403), (["admin"], 422), (["posts:*"], 422), ([], 422),
                           ("posts:read", 422)):
        response = client.post("/tokens", json={"name": "x", "scopes": scopes}, headers=people.alice.headers)
        assert_error(response, status, field="scopes")
    assert client.get("/tokens", headers=people.alice.headers).get_json()["tokens"] == []


def test_only_an_admin_may_grant_introspect(client, people, make_pat):
    assert make_pat(people.admin.headers, ["introspect"])["scopes"] == ["introspect"]


def test_a_non_admins_pat_gets_no_admin_rights(client, people, make_pat):
    token = make_pat(people.alice.headers, ["users:read"])["token"]
    listed = client.get("/users", headers=bearer(token)).get_json()["users"]
    assert [user["username"] for user in listed] == ["alice"]


@pytest.mark.parametrize("body,status,field", [
    ({"scopes": ["posts:read"]}, 400, "name"),
    ({"name": "  ", "scopes": ["posts:read"]}, 400, "name"),
    ({"name": "x" * 101, "scopes": ["posts:read"]}, 400, "name"),
    ({"name": "x", "scopes": ["posts:read"], "expires_in": "3600"}, 400, "expires_in"),
    ({"name": "x", "scopes": ["posts:read"], "expires_in": True}, 400, "expires_in"),
    ({"name": "x", "scopes": ["posts:read"], "expires_in": 10}, 422, "expires_in"),
    ({"name": "x", "scopes": ["posts:read"], "expires_in": 10 ** 9}, 422, "expires_in"),
    ({"name": "x", "scopes": ["posts:read"], "token": "mine"}, 400, "token"),
])
def test_bad_bodies_get_a_clear_error(client, people, body, status, field):
    assert_error(client.post("/tokens", json=body, headers=people.alice.headers), status, field=field)


def test_a_duplicate_name_is_409(client, people, make_pat):
    make_pat(people.alice.headers, name="ci")
    response = client.post("/tokens", json={"name": "ci", "scopes": ["posts:read"]}, headers=people.alice.headers)
    assert_error(response, 409, field="name")
    make_pat(people.bob.headers, name="ci")  # names are per user


def test_delete_ends_the_token(client, people, make_pat):
    body = make_pat(people.alice.headers)
    response = client.delete(f"/tokens/{body['id']}", headers=people.alice.headers)
    assert response.status_code == 204 and response.data == b""
    assert_error(client.get("/rest-auth", headers=bearer(body["token"])), 401, "Invalid token")
    assert_error(client.delete(f"/tokens/{body['id']}", headers=people.alice.headers), 404)


def test_another_users_token_is_404_but_an_admin_sees_and_revokes_it(client, people, make_pat):
    body = make_pat(people.alice.headers)
    assert_error(client.delete(f"/tokens/{body['id']}", headers=people.bob.headers), 404)
    assert_error(client.get(f"/tokens/{body['id']}", headers=people.bob.headers), 404)
    assert_error(client.get(f"/tokens?user_id={people.alice.id}", headers=people.bob.headers), 403,
                 field="user_id")
    listed = client.get(f"/tokens?user_id={people.alice.id}", headers=people.admin.headers)
    assert [t["id"] for t in listed.get_json()["tokens"]] == [body["id"]]
    assert_error(client.get("/tokens?user_id=999999", headers=people.admin.headers), 404)
    assert client.delete(f"/tokens/{body['id']}", headers=people.admin.headers).status_code == 204
    assert_error(client.get("/rest-auth", headers=bearer(body["token"])), 401)


def test_an_expired_pat_is_refused_and_not_listed(client, app, people, make_pat):
    body = make_pat(people.alice.headers)
    query(app, "UPDATE personal_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    assert_error(client.get("/rest-auth", headers=bearer(body["token"])), 401, "Invalid token")
    assert client.get("/tokens", headers=people.alice.headers).get_json()["tokens"] == []


def test_a_flipped_checksum_is_refused_without_a_query(client, app, people, make_pat, monkeypatch):
    token = make_pat(people.alice.headers)["token"]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    calls = []
    original = db.one
    monkeypatch.setattr(db, "one", lambda *a, **k: calls.append(a[0]) or original(*a, **k))
    response = client.get("/rest-auth", headers=bearer(flipped))
    assert_error(response, 401, "Invalid token", secrets=[token])
    assert not any("personal_token" in sql for sql in calls)


@pytest.mark.parametrize("change", [
    {"admin": True},
    {"password": "a-brand-new-password-1"},
])
def test_an_admin_flag_or_password_change_ends_the_users_pats(client, people, make_pat, change):
    token = make_pat(people.alice.headers)["token"]
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 200
    response = client.patch(f"/users/{people.alice.id}", json=change, headers=people.admin.headers)
    assert response.status_code == 200, response.get_json()
    assert_error(client.get("/rest-auth", headers=bearer(token)), 401)


def test_logout_all_ends_the_users_pats(client, people, make_pat):
    token = make_pat(people.alice.headers)["token"]
    assert client.post("/logout-all", headers=people.alice.headers).status_code == 204
    assert_error(client.get("/rest-auth", headers=bearer(token)), 401)


def test_deleting_the_user_deletes_the_pats(client, app, people, make_pat):
    token = make_pat(people.alice.headers)["token"]
    assert client.delete(f"/users/{people.alice.id}", headers=people.admin.headers).status_code == 204
    assert query(app, "SELECT id FROM personal_token") == []
    assert_error(client.get("/rest-auth", headers=bearer(token)), 401)


def test_last_use_is_recorded_with_the_address(client, people, make_pat):
    token = make_pat(people.alice.headers)["token"]
    client.get("/rest-auth", headers=bearer(token), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    [entry] = client.get("/tokens", headers=people.alice.headers).get_json()["tokens"]
    assert entry["last_used"] is not None and entry["last_used_ip"] == "203.0.113.7"


def test_last_use_costs_at_most_one_write_a_minute(client, app, people, make_pat, monkeypatch):
    token = make_pat(people.alice.headers)["token"]
    writes = []
    original = db.execute
    monkeypatch.setattr(db, "execute", lambda sql, *a, **k: writes.append(sql) or original(sql, *a, **k))
    for _ in range(50):
        assert client.get("/rest-auth", headers=bearer(token)).status_code == 200
    assert len([sql for sql in writes if "personal_token" in sql]) == 1
    # Once the stored time is over a minute old, the next use writes again (and only one).
    query(app, "UPDATE personal_token SET last_used_at = UTC_TIMESTAMP() - INTERVAL 61 SECOND")
    for _ in range(5):
        client.get("/rest-auth", headers=bearer(token), environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert len([sql for sql in writes if "personal_token" in sql]) == 2
    [entry] = client.get("/tokens", headers=people.alice.headers).get_json()["tokens"]
    assert entry["last_used_ip"] == "198.51.100.9"


# --- with the per-worker cache (REDIS_URL): no query per use, and every ending still counts at once ---

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def cached_pair(make_app, make_user):
    """Two app instances sharing Redis (two workers), alice and admin logged in on the first."""
    require_redis(REDIS_URL, "the PAT cache tests")
    one, two = (make_app(REDIS_URL=REDIS_URL).test_client() for _ in range(2))
    alice, admin = make_user("alice"), make_user("admin", admin=True)
    for user, client in ((alice, one), (admin, one)):
        body = client.post("/auth", json={"username": user["username"], "password": user["password"]})
        user["headers"] = bearer(body.get_json()["access_token"])
    return one, two, alice, admin


def _pat_queries(seen):
    return [sql for sql in seen if "personal_token" in sql]


@pytest.mark.redis
def test_a_cached_pat_costs_no_query_per_use(cached_pair, monkeypatch):
    one, two, alice, _ = cached_pair
    token = one.post("/tokens", json={"name": "s", "scopes": ["posts:read"]},
                     headers=alice["headers"]).get_json()["token"]
    for _ in range(2):  # each worker's first uses read MySQL (and the first one records the use)
        for client in (one, two):
            assert client.get("/rest-auth", headers=bearer(token)).status_code == 200
    seen = []
    real_run = db._run
    monkeypatch.setattr(db, "_run", lambda sql, *rest: seen.append(sql) or real_run(sql, *rest))
    for _ in range(20):
        for client in (one, two):
            assert client.get("/rest-auth", headers=bearer(token)).status_code == 200
    assert _pat_queries(seen) == []


@pytest.mark.redis
@pytest.mark.parametrize("ending", ["delete", "revoke", "admin flag", "logout-all", "user deleted"])
def test_every_ending_reaches_the_other_worker_at_once(cached_pair, ending):
    one, two, alice, admin = cached_pair
    created = one.post("/tokens", json={"name": "s", "scopes": ["posts:read"]}, headers=alice["headers"])
    token = created.get_json()["token"]
    for _ in range(2):  # the second use is served from two's cache
        assert two.get("/rest-auth", headers=bearer(token)).status_code == 200
    if ending == "delete":
        assert one.delete(f"/tokens/{created.get_json()['id']}", headers=alice["headers"]).status_code == 204
    elif ending == "revoke":
        assert one.post("/revoke", data={"token": token}).status_code == 200
    elif ending == "admin flag":
        assert one.patch(f"/users/{alice['id']}", json={"admin": True}, headers=admin["headers"]).status_code == 200
    elif ending == "logout-all":
        assert one.post("/logout-all", headers=alice["headers"]).status_code == 204
    else:
        assert one.delete(f"/users/{alice['id']}", headers=admin["headers"]).status_code == 204
    assert_error(two.get("/rest-auth", headers=bearer(token)), 401)


@pytest.mark.redis
def test_a_cached_pat_still_expires(cached_pair, monkeypatch):
    import time
    one, two, alice, _ = cached_pair
    token = one.post("/tokens", json={"name": "s", "scopes": ["posts:read"], "expires_in": 60},
                     headers=alice["headers"]).get_json()["token"]
    for _ in range(2):
        assert two.get("/rest-auth", headers=bearer(token)).status_code == 200
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)  # the kept copy's expiry is checked at every use
    assert_error(two.get("/rest-auth", headers=bearer(token)), 401)


def test_a_user_has_at_most_max_per_user_live_tokens(client, app, people, make_pat, monkeypatch):
    monkeypatch.setattr(personal_tokens, "MAX_PER_USER", 3)
    for number in range(3):
        make_pat(people.alice.headers, name=f"t{number}")
    response = client.post("/tokens", json={"name": "t3", "scopes": ["posts:read"]}, headers=people.alice.headers)
    assert "at most 3" in assert_error(response, 422)["description"]
    # Dead tokens do not count: one expires, and the next creation deletes it and succeeds.
    query(app, "UPDATE personal_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE name = 't0'")
    make_pat(people.alice.headers, name="t3")
    assert sorted(row["name"] for row in query(app, "SELECT name FROM personal_token")) == ["t1", "t2", "t3"]


def test_purge_tokens_deletes_dead_pats_and_spent_proof_ids_only(client, app, runner, people, make_pat):
    make_pat(people.alice.headers, name="live")
    make_pat(people.alice.headers, name="expired")
    make_pat(people.bob.headers, name="old-version")
    query(app, "UPDATE personal_token SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE name = 'expired'")
    query(app, "UPDATE user SET token_version = token_version + 1 WHERE username = 'bob'")
    query(app, "INSERT INTO dpop_replay (jti_hash, expires_at) VALUES "
               "(REPEAT('a', 32), UTC_TIMESTAMP() - INTERVAL 1 SECOND), (REPEAT('b', 32), UTC_TIMESTAMP() + INTERVAL 60 SECOND)")
    result = runner.invoke(args=["purge-tokens"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "purged 2 dead personal access tokens and 1 expired DPoP proof ids"
    assert [row["name"] for row in query(app, "SELECT name FROM personal_token")] == ["live"]
    assert [row["jti_hash"] for row in query(app, "SELECT jti_hash FROM dpop_replay")] == [b"b" * 32]
