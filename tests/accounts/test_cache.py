"""The per-worker cache (rest/user_cache.py): reads kept, and forgotten the moment a write is announced.

Two apps on one database and one Redis stand for two gunicorn workers (or
two instances): `writer` takes the writes, `reader` serves the reads it has
cached. Each test checks both sides of the bargain: the cached read costs no
query, and a change made through the other app shows on the very next request.
"""
import json
import os
import time

import pytest
import redis
from click.testing import CliRunner

import db
from support import bearer, query, require_redis
from accounts import cache as user_cache
from accounts import users
from content import posts

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct-horse-battery"
REVOKED = {"status_code": 401, "error": "Invalid JWT",
           "description": "User does not exist or the token was revoked"}


@pytest.fixture(scope="module")
def redis_client():
    client = require_redis(REDIS_URL, "the cache tests")
    yield client
    client.close()


@pytest.fixture
def cached(make_app, redis_client):
    """Factory: an app with the cache on (REDIS_URL set)."""
    return lambda **overrides: make_app(**{"REDIS_URL": REDIS_URL, **overrides})


@pytest.fixture
def writer(cached):
    return cached().test_client()


@pytest.fixture
def reader(cached):
    return cached().test_client()


@pytest.fixture
def queries(monkeypatch):
    """The SQL of every query run from now on, in order (both apps)."""
    seen = []
    real_run = db._run
    monkeypatch.setattr(db, "_run", lambda sql, *rest: seen.append(sql) or real_run(sql, *rest))
    return seen


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


def log_in(client, username="alice", password=PASSWORD):
    response = client.post("/auth", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def who(client, session):
    return client.get("/rest-auth", headers=bearer(session["access_token"]))


def identity_queries(seen):
    return seen.count(users.USER_FOR_TOKEN)


def page_queries(seen):
    return seen.count(posts.POSTS_PAGE)


def assert_revoked(response):
    assert response.status_code == 401
    assert response.get_json() == REVOKED


# --- reads are kept ------------------------------------------------------------------

def test_a_token_is_looked_up_once_then_answered_from_the_cache(writer, reader, alice, queries):
    session = log_in(writer)
    queries.clear()
    answers = [who(reader, session) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert {json.dumps(r.get_json()) for r in answers} == {json.dumps(
        {"message": "You are an authenticated person to see this message",
         "user": {"id": alice["id"], "username": "alice"}})}
    assert identity_queries(queries) == 1


def test_a_refused_token_is_asked_again_every_time(writer, reader, alice, queries):
    session = log_in(writer)
    assert writer.post("/logout", headers=bearer(session["access_token"])).status_code == 204
    queries.clear()
    for _ in range(3):
        assert_revoked(who(reader, session))
    assert identity_queries(queries) == 3


@pytest.mark.parametrize("settings", [{"REDIS_URL": ""}, {"CACHE_SECONDS": 0}],
                         ids=["no REDIS_URL", "CACHE_SECONDS=0"])
def test_without_the_cache_every_request_asks_mysql(cached, alice, queries, settings):
    client = cached(**settings).test_client()
    session = log_in(client)
    queries.clear()
    for _ in range(3):
        assert who(client, session).status_code == 200
    assert identity_queries(queries) == 3


# --- ...and forgotten when a write says so ------------------------------------------------

def test_a_logout_through_one_app_is_honoured_by_the_other_at_once(writer, reader, alice):
    session = log_in(writer)
    assert who(reader, session).status_code == 200  # cached by the reader now
    assert writer.post("/logout", headers=bearer(session["access_token"])).status_code == 204
    assert_revoked(who(reader, session))


def test_logout_all_through_one_app_is_honoured_by_the_other(writer, reader, alice):
    phone, laptop = log_in(writer), log_in(writer)
    assert who(reader, phone).status_code == who(reader, laptop).status_code == 200
    assert writer.post("/logout-all", headers=bearer(phone["access_token"])).status_code == 204
    assert_revoked(who(reader, phone))
    assert_revoked(who(reader, laptop))


def test_a_password_change_through_one_app_is_honoured_by_the_other(writer, reader, alice):
    session = log_in(writer)
    assert who(reader, session).status_code == 200
    response = writer.patch(f"/users/{alice['id']}", headers=bearer(session["access_token"]),
                            json={"password": "a-new-long-passphrase", "current_password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    assert_revoked(who(reader, session))


def test_a_new_username_shows_at_once_in_the_other_app(writer, reader, alice):
    session = log_in(writer)
    assert who(reader, session).get_json()["user"]["username"] == "alice"
    page = reader.get(f"/users/{alice['id']}/posts", headers=bearer(session["access_token"]))
    assert page.status_code == 200
    response = writer.patch(f"/users/{alice['id']}", headers=bearer(session["access_token"]),
                            json={"username": "alicia"})
    assert response.status_code == 200, response.get_json()
    assert who(reader, session).get_json()["user"] == {"id": alice["id"], "username": "alicia"}
    writer.post(f"/users/{alice['id']}/posts", headers=bearer(session["access_token"]),
                json={"title": "t", "body": "b"})
    page = reader.get(f"/users/{alice['id']}/posts", headers=bearer(session["access_token"]))
    assert page.get_json()["posts"][0]["user"] == {"id": alice["id"], "username": "alicia"}


def test_an_admin_revoking_a_session_is_honoured_by_the_other_app(writer, reader, alice, make_user):
    make_user("root", PASSWORD, admin=True)
    session, admin = log_in(writer), log_in(writer, "root")
    assert who(reader, session).status_code == 200
    [row] = query(writer.application, "SELECT id FROM refresh_family WHERE user_id = %s", (alice["id"],))
    response = writer.delete(f"/sessions/{row['id']}", headers=bearer(admin["access_token"]))
    assert response.status_code == 204
    assert_revoked(who(reader, session))
    assert who(reader, admin).status_code == 200  # only alice's session went


def test_refresh_token_reuse_is_honoured_by_the_other_app(writer, reader, alice):
    session = log_in(writer)
    assert who(reader, session).status_code == 200
    first = writer.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert first.status_code == 200
    # Reuse after the grace period: the whole session is revoked.
    writer.application.config["JWT_REFRESH_GRACE"] = 0
    again = writer.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert again.status_code == 401
    assert_revoked(who(reader, session))
    assert_revoked(who(reader, first.get_json()))


@pytest.mark.parametrize("command", [["delete-user", "alice", "--yes"], ["set-admin", "alice", "--on"]])
def test_operator_commands_are_honoured_by_running_apps(cached, reader, alice, command):
    session = log_in(reader)
    assert who(reader, session).status_code == 200
    operator = cached()
    result = CliRunner().invoke(operator.cli, command, obj=_script_info(operator))
    assert result.exit_code == 0, result.output
    assert_revoked(who(reader, session))


def _script_info(app):
    from flask.cli import ScriptInfo
    return ScriptInfo(create_app=lambda: app)


def test_a_user_deleted_through_one_app_is_gone_from_the_other(writer, reader, alice):
    session = log_in(writer)
    assert who(reader, session).status_code == 200
    assert writer.delete(f"/users/{alice['id']}", headers=bearer(session["access_token"])).status_code == 204
    assert_revoked(who(reader, session))


# --- pages of posts ---------------------------------------------------------------------

def _page(client, session, user_id, query_string=""):
    response = client.get(f"/users/{user_id}/posts{query_string}", headers=bearer(session["access_token"]))
    assert response.status_code == 200, response.get_json()
    return response


def test_a_page_is_read_once_and_is_the_same_bytes_as_uncached(make_app, writer, reader, alice, queries):
    session = log_in(writer)
    for n in range(3):
        writer.post(f"/users/{alice['id']}/posts", headers=bearer(session["access_token"]),
                    json={"title": f"Post {n} ünïcode", "body": "body\n\"quoted\""})
    queries.clear()
    pages = [_page(reader, session, alice["id"], "?limit=2") for _ in range(3)]
    assert page_queries(queries) == 1
    uncached = _page(make_app().test_client(), session, alice["id"], "?limit=2")
    assert {p.data for p in pages} == {uncached.data}
    assert pages[0].headers["Content-Type"] == "application/json"
    assert pages[0].headers["Cache-Control"] == "private, no-cache"
    assert [p["title"] for p in pages[0].get_json()["posts"]] == ["Post 2 ünïcode", "Post 1 ünïcode"]


def test_posts_written_through_one_app_show_in_the_other_at_once(writer, reader, alice):
    session = log_in(writer)
    headers = bearer(session["access_token"])
    assert _page(reader, session, alice["id"]).get_json()["posts"] == []
    created = writer.post(f"/users/{alice['id']}/posts", headers=headers, json={"title": "one", "body": "b"})
    assert created.status_code == 201
    post_id = created.get_json()["id"]
    assert [p["title"] for p in _page(reader, session, alice["id"]).get_json()["posts"]] == ["one"]
    writer.patch(f"/users/{alice['id']}/posts/{post_id}", headers=headers, json={"title": "uno"})
    assert [p["title"] for p in _page(reader, session, alice["id"]).get_json()["posts"]] == ["uno"]
    assert writer.delete(f"/users/{alice['id']}/posts/{post_id}", headers=headers).status_code == 204
    assert _page(reader, session, alice["id"]).get_json()["posts"] == []


def test_a_post_write_keeps_the_identity_cached(writer, reader, alice, queries):
    session = log_in(writer)
    assert who(reader, session).status_code == 200
    writer.post(f"/users/{alice['id']}/posts", headers=bearer(session["access_token"]),
                json={"title": "t", "body": "b"})
    queries.clear()
    assert who(reader, session).status_code == 200
    assert identity_queries(queries) == 0


def test_a_page_is_only_served_to_who_may_see_it(writer, reader, alice, make_user):
    make_user("bob", PASSWORD)
    session, bob = log_in(writer), log_in(writer, "bob")
    _page(reader, session, alice["id"])  # cached for alice's path now
    response = reader.get(f"/users/{alice['id']}/posts", headers=bearer(bob["access_token"]))
    assert response.status_code == 404
    assert response.get_json()["description"] == "No such user."


# --- when the cache cannot be trusted, it is not used ---------------------------------------

def test_without_redis_reads_go_to_mysql_and_writes_still_answer(cached, alice, queries, caplog):
    client = cached(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    session = log_in(client)
    queries.clear()
    for _ in range(2):
        assert who(client, session).status_code == 200
    assert identity_queries(queries) == 2
    assert client.post("/logout", headers=bearer(session["access_token"])).status_code == 204
    assert_revoked(who(client, session))
    assert "could not announce a change of user" in caplog.text


def test_an_outage_is_logged_once_not_at_every_retry(cached, alice, caplog, monkeypatch):
    monkeypatch.setattr(user_cache, "RETRY_SECONDS", 0)  # retry at every request
    client = cached(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    session = log_in(client)
    for _ in range(5):
        assert who(client, session).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "accounts.cache"]
    assert len(warnings) == 1 and warnings[0].startswith("cache off: cannot subscribe to Redis")


def test_a_lost_subscription_empties_the_cache(writer, reader, alice, redis_client):
    session = log_in(writer)
    assert who(reader, session).status_code == 200
    cache = reader.application.extensions[user_cache.EXTENSION][1]
    killed = [c for c in redis_client.client_list() if c["name"] == cache.client_name]
    assert len(killed) == 1
    redis_client.client_kill_filter(_id=killed[0]["id"])
    # A change nobody announces: only MySQL can tell.
    with writer.application.app_context():
        db.execute("UPDATE user SET token_version = token_version + 1 WHERE id = %s", (alice["id"],))
        db.close_db()
    deadline = time.monotonic() + 2
    while cache._subscription is not None and time.monotonic() < deadline:
        response = who(reader, session)  # the first lookup notices the closed connection
        if response.status_code == 401:
            break
    assert_revoked(who(reader, session))


def test_an_unannounced_change_waits_at_most_cache_seconds(cached, alice):
    client = cached(CACHE_SECONDS=1).test_client()
    session = log_in(client)
    assert who(client, session).status_code == 200
    with client.application.app_context():
        db.execute("UPDATE user SET token_version = token_version + 1 WHERE id = %s", (alice["id"],))
        db.close_db()
    assert who(client, session).status_code == 200  # the documented window: SQL typed by hand
    time.sleep(1.1)
    assert_revoked(who(client, session))


# --- the cache object ---------------------------------------------------------------------

@pytest.fixture
def cache(redis_client):
    made = user_cache.UserCache(REDIS_URL, f"jwt-api:test:{os.getpid()}:{time.monotonic_ns()}", 60)
    yield made
    made.close()


def test_a_read_that_raced_a_change_is_not_kept(cache):
    value, ticket = cache.get(user_cache.IDENTITY, 7, "k")
    assert value is None and ticket is not None
    cache.forget(7)  # a change announced while the row was being read
    cache.put(user_cache.IDENTITY, 7, "k", "stale", ticket)
    assert cache.get(user_cache.IDENTITY, 7, "k")[0] is None


def test_forgetting_one_kind_keeps_the_other(cache):
    for kind in (user_cache.IDENTITY, user_cache.POSTS):
        _, ticket = cache.get(kind, 7, "k")
        cache.put(kind, 7, "k", kind, ticket)
    cache.forget(7, user_cache.POSTS)
    assert cache.get(user_cache.IDENTITY, 7, "k")[0] == user_cache.IDENTITY
    assert cache.get(user_cache.POSTS, 7, "k")[0] is None
    cache.forget(7)
    assert cache.get(user_cache.IDENTITY, 7, "k")[0] is None


def test_an_announcement_reaches_another_process_cache(cache):
    other = user_cache.UserCache(REDIS_URL, cache.channel, 60)
    try:
        _, ticket = other.get(user_cache.POSTS, 9, "page")
        other.put(user_cache.POSTS, 9, "page", "body", ticket)
        assert other.get(user_cache.POSTS, 9, "page")[0] == "body"
        cache.announce(9, user_cache.POSTS)
        assert other.get(user_cache.POSTS, 9, "page")[0] is None
    finally:
        other.close()


def test_the_cache_is_bounded_by_entries_and_bytes(cache, monkeypatch):
    monkeypatch.setattr(user_cache, "MAX_ENTRIES", 3)
    for n in range(5):
        _, ticket = cache.get(user_cache.IDENTITY, n, "k")
        cache.put(user_cache.IDENTITY, n, "k", n, ticket)
    kept = [n for n in range(5) if cache.get(user_cache.IDENTITY, n, "k")[0] is not None]
    assert kept == [2, 3, 4]  # the oldest went first
    monkeypatch.setattr(user_cache, "MAX_BYTES", 16 * 100)
    _, ticket = cache.get(user_cache.POSTS, 1, "big")
    cache.put(user_cache.POSTS, 1, "big", "x" * 101, ticket, size=101)  # over a sixteenth: not kept
    assert cache.get(user_cache.POSTS, 1, "big")[0] is None
    assert cache._bytes <= user_cache.MAX_BYTES


def test_announcements_arriving_together_are_all_applied(cache):
    # One write of three messages: the subscriber's first read takes them all
    # into redis-py's buffer, behind a socket that then polls empty.
    other = user_cache.UserCache(REDIS_URL, cache.channel, 60)
    try:
        for user_id in (1, 2, 3):
            _, ticket = other.get(user_cache.IDENTITY, user_id, "k")
            other.put(user_cache.IDENTITY, user_id, "k", "kept", ticket)
        with redis.Redis.from_url(REDIS_URL) as publisher:
            burst = publisher.pipeline(transaction=False)
            for user_id in (1, 2, 3):
                burst.publish(cache.channel, f"{user_cache.EVERYTHING}:{user_id}")
            burst.execute()
            # As UserCache._publish does: a PING sent after the answers is served in a later
            # pass of Redis's event loop, after the burst went out to every subscriber. In the
            # same pipeline its answer could be written before the subscriber's messages.
            publisher.ping()
        assert [other.get(user_cache.IDENTITY, user_id, "k")[0] for user_id in (3, 2, 1)] == [None] * 3
    finally:
        other.close()
