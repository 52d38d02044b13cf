"""Throttling: Flask-Limiter per IP and per username, the per-account delay in MySQL,
the unknown-user twin of that delay, Redis-shared counts, and the JSON 429."""
import secrets
import threading

import pytest

import db
from config import ConfigError
from accounts import throttle
from rest import rate_limits

TOO_MANY = {"status_code": 429, "error": "Too Many Requests", "description": rate_limits.TOO_MANY}
INVALID = {"status_code": 401, "error": "Bad Request", "description": "Invalid credentials"}
REDIS = "redis://127.0.0.1:6379/15"
GENEROUS = "1000/minute"


def throttled_app(make_app, **overrides):
    """An app with throttling on and a private key prefix, generous unless overridden."""
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "test-" + secrets.token_hex(6),
        "RATELIMIT_LOGIN": GENEROUS, "RATELIMIT_LOGIN_PER_USER": GENEROUS,
        "RATELIMIT_REFRESH": GENEROUS, "RATELIMIT_REGISTER": GENEROUS,
    }
    config.update(overrides)
    return make_app(**config)


def attempt(client, username, password="wrong-password-1", **kwargs):
    return client.post("/auth", json={"username": username, "password": password}, **kwargs)


def assert_429(response):
    assert response.status_code == 429
    assert response.get_json() == TOO_MANY
    retry = int(response.headers["Retry-After"])
    assert retry >= 1
    return retry


def account_row(app, user_id):
    with app.app_context():
        row = db.one("SELECT failed_logins, failed_since, last_failed_at FROM user WHERE id = %s",
                     (user_id,))
        db.close_db()
    return row


def age_failures(app, user_id, seconds):
    """Move the account's failure times `seconds` into the past."""
    with app.app_context():
        db.execute("UPDATE user SET failed_since = failed_since - INTERVAL %s SECOND, "
                   "last_failed_at = last_failed_at - INTERVAL %s SECOND WHERE id = %s",
                   (seconds, seconds, user_id))
        db.close_db()


# --- the schedule ---------------------------------------------------------------

@pytest.mark.parametrize("failures, expected", [
    (0, 0), (4, 0), (5, 2), (6, 4), (7, 8), (9, 32), (10, 60), (99, 60), (10**6, 60),
])
def test_delay_doubles_after_the_free_failures_up_to_the_cap(failures, expected):
    assert throttle.delay_after(failures, free=5, cap=60) == expected


def test_no_more_than_100_failures_fit_in_an_hour_with_the_defaults():
    t, failures = 0, 0
    while True:
        t += throttle.delay_after(failures, free=5, cap=60)
        if t >= throttle.WINDOW:
            break
        failures += 1
    assert failures < throttle.MAX_FAILURES


# --- per account (MySQL) ---------------------------------------------------------------

def test_free_failures_then_429_without_checking_the_password(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=3)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(3):
        assert attempt(client, "alice").get_json() == INVALID
    assert account_row(app, user["id"])["failed_logins"] == 3
    # Even the right password waits: it is not checked while the account must wait.
    retry = assert_429(attempt(client, "alice", user["password"]))
    assert retry <= 2
    # A refused attempt is not counted: hammering does not extend the wait.
    assert_429(attempt(client, "alice"))
    assert account_row(app, user["id"])["failed_logins"] == 3


def test_delay_passed_allows_one_more_attempt_and_doubles(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    assert_429(attempt(client, "alice"))
    age_failures(app, user["id"], 2)
    assert attempt(client, "alice").status_code == 401
    retry = assert_429(attempt(client, "alice"))
    assert 3 <= retry <= 4


def test_success_after_the_delay_logs_in_and_clears_the_counters(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    age_failures(app, user["id"], 2)
    assert attempt(client, "alice", user["password"]).status_code == 200
    assert account_row(app, user["id"]) == {
        "failed_logins": 0, "failed_since": None, "last_failed_at": None}


def test_window_older_than_an_hour_starts_afresh(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    assert_429(attempt(client, "alice"))
    age_failures(app, user["id"], throttle.WINDOW)
    assert attempt(client, "alice").status_code == 401
    assert account_row(app, user["id"])["failed_logins"] == 1


def test_hundred_failures_in_the_window_wait_for_its_end(make_app, make_user):
    app = throttled_app(make_app)
    user = make_user("alice")
    with app.app_context():
        db.execute("UPDATE user SET failed_logins = 100, failed_since = NOW() - INTERVAL 600 SECOND,"
                   " last_failed_at = NOW() - INTERVAL 120 SECOND WHERE id = %s", (user["id"],))
        db.close_db()
    retry = assert_429(attempt(app.test_client(), "alice", user["password"]))
    assert 2990 <= retry <= 3000


def test_concurrent_attempts_cannot_slip_past_the_delay(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=1)
    user = make_user("alice")
    statuses = []

    def one():
        statuses.append(attempt(app.test_client(), "alice").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One free failure; every other concurrent attempt lands inside the 2 s delay.
    assert sorted(statuses) == [401] + [429] * 7
    assert account_row(app, user["id"])["failed_logins"] == 1


def test_username_case_variants_share_one_account_count(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    make_user("alice")
    client = app.test_client()
    attempt(client, "ALICE")
    attempt(client, "Alice ")
    assert_429(attempt(client, "alice"))


def test_throttling_off_never_counts(make_app, make_user):
    app = make_app(LOGIN_FREE_FAILURES=1)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(4):
        assert attempt(client, "alice").status_code == 401
    assert account_row(app, user["id"])["failed_logins"] == 0


# --- unknown usernames look the same ------------------------------------------------

@pytest.mark.parametrize("uri", ["", pytest.param(REDIS, marks=pytest.mark.redis)])
def test_unknown_user_gets_the_same_answers_at_the_same_attempts(make_app, make_user, uri):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=3, RATELIMIT_STORAGE_URI=uri)
    make_user("alice")
    client = app.test_client()
    for name in ("alice", "nobody"):
        answers = [attempt(client, name) for _ in range(5)]
        assert [r.status_code for r in answers] == [401, 401, 401, 429, 429], name
        assert [r.get_json() for r in answers] == [INVALID] * 3 + [TOO_MANY] * 2
        assert all(1 <= int(r.headers["Retry-After"]) <= 2 for r in answers[3:])
        assert [sorted(k for k in r.headers.keys() if k != "X-Request-ID") for r in answers] == \
            [sorted(k for k in answers[0].headers.keys() if k != "X-Request-ID")] * 3 + \
            [sorted(k for k in answers[3].headers.keys() if k != "X-Request-ID")] * 2


def test_unknown_user_creates_no_row(make_app):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=1)
    client = app.test_client()
    attempt(client, "ghost")
    assert_429(attempt(client, "ghost"))
    with app.app_context():
        assert db.one("SELECT COUNT(*) AS n FROM user")["n"] == 0
        db.close_db()


# --- Flask-Limiter ------------------------------------------------------------------

def test_per_ip_login_limit_is_shared_by_auth_and_login(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN="3/minute", LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    assert attempt(client, "a1").status_code == 401
    assert client.post("/login", json={"username": "a2", "password": "x"}).status_code == 401
    assert attempt(client, "a3").status_code == 401
    retry = assert_429(client.post("/login", json={"username": "a4", "password": "x"}))
    assert retry <= 61  # the window's reset, rounded up
    # Another client address has its own count.
    other = attempt(client, "a5", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401


def test_per_username_limit_counts_every_address(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN_PER_USER="2/minute", LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert attempt(client, "bob", environ_base={"REMOTE_ADDR": ip}).status_code == 401
    assert_429(attempt(client, "BOB", environ_base={"REMOTE_ADDR": "10.0.0.3"}))
    assert attempt(client, "carol", environ_base={"REMOTE_ADDR": "10.0.0.3"}).status_code == 401


def test_per_username_limit_reads_basic_and_form_logins(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN_PER_USER="1/minute", LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    assert client.post("/login", auth=("dave", "x")).status_code == 401
    assert_429(client.post("/login", data={"username": "dave", "password": "x"}))


@pytest.mark.parametrize("path, kwargs, status", [
    ("/auth", {"data": "{", "content_type": "application/json"}, 400),
    ("/auth", {"data": "[]", "content_type": "application/json"}, 400),
    ("/auth", {"json": {"username": 7, "password": "x"}}, 400),
    ("/auth", {"data": "x" * 70000, "content_type": "application/json"}, 413),
    ("/auth", {"data": b"\xff\xfe", "content_type": "application/json"}, 400),
    ("/auth", {"data": "hello", "content_type": "text/plain"}, 415),
    ("/login", {"data": "x" * 70000, "content_type": "application/x-www-form-urlencoded"}, 413),
    ("/login", {"data": b"username=%ff%fe", "content_type": "application/x-www-form-urlencoded"},
     401),
    ("/login", {"headers": {"Authorization": "Basic !!!"}}, 401),
])
def test_bad_login_bodies_get_their_usual_4xx_with_limits_on(make_app, path, kwargs, status):
    app = throttled_app(make_app, RATELIMIT_LOGIN_PER_USER="1/minute")
    response = app.test_client().post(path, **kwargs)
    assert response.status_code == status
    assert response.get_json()["status_code"] == status


def test_registration_limit_per_ip(make_app):
    app = throttled_app(make_app, RATELIMIT_REGISTER="2/minute")
    client = app.test_client()
    for name in ("user-one", "user-two"):
        assert client.post("/register", json={"username": name, "password": "a long passphrase 1"}
                           ).status_code == 201
    assert_429(client.post("/register", json={"username": "user-three",
                                              "password": "a long passphrase 1"}))


def test_refresh_limit_per_ip(make_app, make_user):
    app = throttled_app(make_app, RATELIMIT_REFRESH="1/minute")
    user = make_user("alice")
    client = app.test_client()
    tokens = attempt(client, "alice", user["password"]).get_json()
    first = client.post("/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200, first.get_json()
    assert_429(client.post("/refresh", json={"refresh_token": first.get_json()["refresh_token"]}))


def test_unlimited_routes_are_never_counted(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN="1/minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/rest-auth").status_code == 401


def test_trusted_proxy_address_is_the_rate_limit_key(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN="1/minute", TRUSTED_PROXIES=1,
                        LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    hop = {"X-Forwarded-For": "203.0.113.7"}
    assert attempt(client, "a", headers=hop).status_code == 401
    assert_429(attempt(client, "b", headers=hop))
    # A client cannot pick a fresh key by writing its own hop to the left.
    assert_429(attempt(client, "c", headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.7"}))
    assert attempt(client, "d", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 401


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app):
    app = throttled_app(make_app, RATELIMIT_LOGIN="1/minute", LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    attempt(client, "a", headers={"X-Forwarded-For": "203.0.113.7"})
    assert_429(attempt(client, "b", headers={"X-Forwarded-For": "198.51.100.1"}))


@pytest.mark.parametrize("setting", rate_limits.LIMIT_SETTINGS)
def test_malformed_limit_setting_refuses_to_start(make_app, setting):
    with pytest.raises(ConfigError, match=setting):
        make_app(**{setting: "ten per fortnight"})


# --- Redis ----------------------------------------------------------------------------

@pytest.mark.redis
def test_redis_storage_shares_counts_between_apps(make_app):
    # Two apps stand for two gunicorn workers (or two instances) on one Redis.
    prefix = "test-" + secrets.token_hex(6)
    one, two = (throttled_app(make_app, RATELIMIT_STORAGE_URI=REDIS, RATELIMIT_KEY_PREFIX=prefix,
                              RATELIMIT_LOGIN="3/minute", LOGIN_FREE_FAILURES=50)
                for _ in range(2))
    assert attempt(one.test_client(), "a").status_code == 401
    assert attempt(two.test_client(), "b").status_code == 401
    assert attempt(one.test_client(), "c").status_code == 401
    assert_429(attempt(two.test_client(), "d"))


def test_memory_storage_is_per_app(make_app):
    one, two = (throttled_app(make_app, RATELIMIT_LOGIN="1/minute", LOGIN_FREE_FAILURES=50)
                for _ in range(2))
    assert attempt(one.test_client(), "a").status_code == 401
    assert attempt(two.test_client(), "b").status_code == 401
    assert_429(attempt(one.test_client(), "c"))


def test_redis_down_falls_back_to_memory_not_500(make_app, make_user):
    app = throttled_app(make_app, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
                        RATELIMIT_LOGIN="2/minute", LOGIN_FREE_FAILURES=50)
    user = make_user("alice")
    client = app.test_client()
    assert attempt(client, "alice", user["password"]).status_code == 200
    assert attempt(client, "nobody").status_code == 401
    assert_429(attempt(client, "alice", user["password"]))


@pytest.mark.parametrize("variant", ["ALICE ", "Alicé", "ａｌｉｃｅ", "alice\x00", "ali\u200bce",
                                     "ALİCE", "alicë", "alice\u3000"])
def test_username_key_folds_what_the_collation_equates(app, variant):
    # The server decides: each variant finds the row 'alice'; the key must agree,
    # or an unknown name could be told from a known one by when its 429 comes.
    with app.app_context():
        same = db.one("SELECT %s = 'alice' COLLATE utf8mb4_unicode_ci AS same", (variant,))["same"]
        db.close_db()
    assert same == 1
    assert throttle.username_key(variant) == throttle.username_key("alice")


def test_unknown_name_padded_with_ignorable_characters_shares_one_count(make_app):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    client = app.test_client()
    attempt(client, "ghost")
    attempt(client, "ghost\x00")
    assert_429(attempt(client, "GHOST\u200b"))


def test_redis_down_unknown_user_delay_uses_the_memory_fallback(make_app):
    app = throttled_app(make_app, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", LOGIN_FREE_FAILURES=1)
    client = app.test_client()
    assert attempt(client, "nobody").status_code == 401  # Flask-Limiter finds Redis dead here
    attempt(client, "ghost")
    assert_429(attempt(client, "ghost"))
