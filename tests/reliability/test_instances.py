"""Several instances: two gunicorn instances on two ports sharing MySQL and Redis.

What one instance decides, the other honours: a logout (revocation lives in
the database), and rate-limit counts (they live in Redis under a key prefix
unique to this test run, so parallel runs never share a count).
"""
import os
import secrets

import pytest

import db
from support import LiveServer, call, create_database, drop_database, require_redis, server_config

pytestmark = [pytest.mark.live, pytest.mark.redis]

PASSWORD = "instances-test-password-3Hq"
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "14"))
REDIS_URI = f"redis://127.0.0.1:6379/{REDIS_DB}"
REFRESH_LIMIT = 6  # per minute per IP, counted across both instances


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    """Two instances, A and B, on one database and one Redis key prefix."""
    client = require_redis(REDIS_URI, "the several-instances test")
    prefix = f"jwtapi-test-{os.getpid()}-{secrets.token_hex(4)}"
    database = create_database(prefix="test_instances")
    # REDIS_URL: as deployed, each worker caches identities and pages, and
    # every change is announced through Redis (rest/user_cache.py).
    env = dict(server_config(database), RATELIMIT_ENABLED="true", RATELIMIT_STORAGE_URI=REDIS_URI,
               RATELIMIT_REFRESH=f"{REFRESH_LIMIT}/minute", RATELIMIT_REGISTER="100/minute",
               REDIS_URL=REDIS_URI, RATELIMIT_KEY_PREFIX=prefix)
    directory = tmp_path_factory.mktemp("instances")
    started = []
    try:
        for _ in range(2):
            started.append(LiveServer(directory, env, workers=2))
        for server in started:
            server.wait_ready()
            server.database = database
        yield started[0], started[1], lambda: _forget(client, prefix)
    finally:
        for server in started:
            server.stop()
        drop_database(database)
        _forget(client, prefix)


def _forget(client, prefix):
    """Delete this run's rate-limit counts (and only this run's: the prefix is ours)."""
    for key in client.scan_iter(match=f"*/{prefix}/*"):
        client.delete(key)


def _account(url, name):
    status, _, _ = call("POST", url + "/register", body={"username": name, "password": PASSWORD})
    assert status == 201
    status, _, tokens = call("POST", url + "/auth", body={"username": name, "password": PASSWORD})
    assert status == 200
    return tokens


WARM = 12  # requests per instance: enough for both of its workers to cache the token


def test_a_logout_on_one_instance_is_honoured_by_the_other(instances):
    a, b, _ = instances
    tokens = _account(a.url, "traveller")
    for server in (a, b):
        for _ in range(WARM):
            assert call("GET", server.url + "/rest-auth", tokens["access_token"])[0] == 200

    status, _, _ = call("POST", b.url + "/logout", tokens["access_token"])
    assert status == 204

    # Every worker of both instances, asked right away: none may answer from its cache.
    for server in (a, b):
        for _ in range(WARM):
            status, headers, body = call("GET", server.url + "/rest-auth", tokens["access_token"])
            assert status == 401
            assert body["status_code"] == 401
            assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, _, body = call("POST", a.url + "/refresh", body={"refresh_token": tokens["refresh_token"]})
    assert status == 401, body


def test_the_instances_answer_from_their_caches(instances):
    """The cache is really in use: a change nobody announces (SQL by hand) is not seen at once."""
    a, b, _ = instances
    tokens = _account(a.url, "cached")
    for _ in range(WARM):
        assert call("GET", b.url + "/rest-auth", tokens["access_token"])[0] == 200
    db.run_script(server_config(a.database),
                  "UPDATE user SET token_version = token_version + 1 WHERE username = 'cached'")
    statuses = {call("GET", b.url + "/rest-auth", tokens["access_token"])[0] for _ in range(WARM)}
    assert statuses == {200}  # within CACHE_SECONDS (10 s) of the unannounced change


def test_a_post_written_on_one_instance_is_listed_by_the_other(instances):
    a, b, _ = instances
    tokens = _account(a.url, "writer")
    status, _, me = call("GET", a.url + "/auth", tokens["access_token"])
    path = f"/users/{me['user']['id']}/posts"
    for _ in range(WARM):
        status, _, page = call("GET", b.url + path, tokens["access_token"])
        assert status == 200 and page["posts"] == []
    status, _, post = call("POST", a.url + path, tokens["access_token"], body={"title": "hi", "body": "there"})
    assert status == 201
    for _ in range(WARM):
        status, _, page = call("GET", b.url + path, tokens["access_token"])
        assert status == 200 and [p["id"] for p in page["posts"]] == [post["id"]]


def test_rate_limit_counts_are_shared_between_instances(instances):
    a, b, forget_counts = instances
    forget_counts()
    # Alternate between the instances: each sees only half the attempts, so
    # only a shared count reaches the limit.
    for attempt in range(REFRESH_LIMIT):
        server = (a, b)[attempt % 2]
        status, _, body = call("POST", server.url + "/refresh", body={"refresh_token": "not-a-token"})
        assert status == 401, (attempt, body)
    for server in (a, b):
        status, headers, body = call("POST", server.url + "/refresh", body={"refresh_token": "not-a-token"})
        assert status == 429, body
        assert body["status_code"] == 429
        assert int(headers["Retry-After"]) >= 1
