"""Throttling: Flask-Limiter per IP, the per-(name, address) delay and the per-name limit
(one code path for known and unknown names), the collation's own name keys,
Redis-shared counts, and the JSON 429."""
import secrets
import threading
import time

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


def pair_state(app, username, address="127.0.0.1"):
    """(storage, keys) of one (name, address) pair: what the throttle counts for it."""
    with app.app_context():
        keys = throttle._keys(throttle.username_key(username), address)
        store = app.extensions[throttle.STORAGE]()
        db.close_db()
    return store, keys


def failures(app, username, address="127.0.0.1"):
    store, keys = pair_state(app, username, address)
    return store.get(keys["failures"])


def end_delay(app, username, address="127.0.0.1"):
    """The pair's delay is over (as if its seconds had passed)."""
    store, keys = pair_state(app, username, address)
    store.clear(keys["wait"])


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


def test_one_address_alone_never_spends_a_names_default_limit():
    # Checks one pair can get with the defaults (5 free, delays to 60 s), as fast as allowed:
    # never 10 in a minute nor 100 in an hour, so RATELIMIT_LOGIN_PER_USER's default is
    # only ever spent by several addresses.
    times, t = [], 0
    while t < 2 * throttle.WINDOW:
        times.append(t)
        t += throttle.delay_after(len(times), free=5, cap=60)
    most_in = lambda span: max(sum(1 for x in times if start <= x < start + span) for start in times)
    assert most_in(60) == 9
    assert most_in(throttle.WINDOW) < 100


# --- per (name, address) ---------------------------------------------------------------

def test_free_failures_then_429_without_checking_the_password(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=3)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(3):
        assert attempt(client, "alice").get_json() == INVALID
    assert failures(app, "alice") == 3
    # Even the right password waits: it is not checked while the pair must wait.
    retry = assert_429(attempt(client, "alice", user["password"]))
    assert retry <= 2
    # A refused attempt is not counted: hammering does not extend the wait.
    assert_429(attempt(client, "alice"))
    assert failures(app, "alice") == 3


def test_delay_passed_allows_one_more_attempt_and_doubles(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    assert 1 <= assert_429(attempt(client, "alice")) <= 2
    end_delay(app, "alice")
    assert attempt(client, "alice").status_code == 401
    retry = assert_429(attempt(client, "alice"))
    assert 3 <= retry <= 4


def test_the_delay_really_passes(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=1, LOGIN_MAX_DELAY=1)
    user = make_user("alice")
    client = app.test_client()
    attempt(client, "alice")
    assert assert_429(attempt(client, "alice", user["password"])) == 1
    time.sleep(1.05)
    assert attempt(client, "alice", user["password"]).status_code == 200


def test_success_after_the_delay_logs_in_and_clears_the_counters(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    end_delay(app, "alice")
    assert attempt(client, "alice", user["password"]).status_code == 200
    assert failures(app, "alice") == 0
    for _ in range(2):  # afresh: the free failures again
        assert attempt(client, "alice").status_code == 401


def test_window_ends_and_starts_afresh(make_app, make_user, monkeypatch):
    monkeypatch.setattr(throttle, "WINDOW", 1)
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2, LOGIN_MAX_DELAY=1)
    make_user("alice")
    client = app.test_client()
    for _ in range(2):
        attempt(client, "alice")
    assert_429(attempt(client, "alice"))
    time.sleep(1.1)
    assert attempt(client, "alice").status_code == 401
    assert failures(app, "alice") == 1


def test_hundred_failures_in_the_window_wait_for_its_end(make_app, make_user):
    app = throttled_app(make_app)
    user = make_user("alice")
    store, keys = pair_state(app, "alice")
    store.incr(keys["failures"], throttle.WINDOW, amount=throttle.MAX_FAILURES)
    retry = assert_429(attempt(app.test_client(), "alice", user["password"]))
    assert throttle.WINDOW - 10 <= retry <= throttle.WINDOW


@pytest.mark.parametrize("uri", ["", pytest.param(REDIS, marks=pytest.mark.redis)])
def test_concurrent_attempts_cannot_slip_past_the_delay(make_app, make_user, uri):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=1, RATELIMIT_STORAGE_URI=uri)
    make_user("alice")
    statuses = []

    def one():
        statuses.append(attempt(app.test_client(), "alice").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One free failure; every other concurrent attempt is refused, in the check or the delay.
    assert sorted(statuses) == [401] + [429] * 7
    assert failures(app, "alice") == 1


def test_failures_from_one_address_never_delay_another(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    user = make_user("alice")
    client = app.test_client()
    for _ in range(3):
        attempt(client, "alice", environ_base={"REMOTE_ADDR": "10.0.0.66"})
    assert_429(attempt(client, "alice", environ_base={"REMOTE_ADDR": "10.0.0.66"}))
    assert attempt(client, "alice", user["password"],
                   environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200


def test_per_username_limit_counts_only_checked_attempts_and_spares_known_addresses(make_app, make_user):
    app = throttled_app(make_app, RATELIMIT_LOGIN_PER_USER="3/minute", LOGIN_FREE_FAILURES=50)
    user = make_user("alice")
    client = app.test_client()
    home = {"REMOTE_ADDR": "10.0.0.7"}
    assert attempt(client, "alice", user["password"], environ_base=home).status_code == 200
    for n in range(3):  # three other addresses spend the name's limit
        attempt(client, "alice", environ_base={"REMOTE_ADDR": f"10.0.1.{n}"})
    assert_429(attempt(client, "alice", user["password"], environ_base={"REMOTE_ADDR": "10.0.2.1"}))
    # The owner's address logged in before: the name's limit does not apply to it.
    assert attempt(client, "alice", user["password"], environ_base=home).status_code == 200


def test_username_case_variants_share_one_account_count(make_app, make_user):
    app = throttled_app(make_app, LOGIN_FREE_FAILURES=2)
    make_user("alice")
    client = app.test_client()
    attempt(client, "ALICE")
    attempt(client, "Alice ")
    assert_429(attempt(client, "alice"))


def test_throttling_off_never_counts(make_app, make_user):
    app = make_app(LOGIN_FREE_FAILURES=1)
    make_user("alice")
    client = app.test_client()
    for _ in range(4):
        assert attempt(client, "alice").status_code == 401
    with app.app_context():
        assert throttle._storage() is None


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
                                     "ALİCE", "alicë", "alice\u3000", "ali\u06dece", "alice   ",
                                     "alice\u00a0", "\u200dalice"])
def test_username_key_is_the_collations_own(app, variant):
    # The server decides: each variant finds the row 'alice'; the key must agree,
    # or an unknown name could be told from a known one by when its 429 comes.
    with app.app_context():
        same = db.one("SELECT %s = 'alice' COLLATE utf8mb4_unicode_ci AS same", (variant,))["same"]
        assert same == 1
        assert throttle.username_key(variant) == throttle.username_key("alice")
        db.close_db()


@pytest.mark.parametrize("name, other", [
    ("coeur", "cœur"), ("strasse", "straße"), ("a", "a "), ("\U0001F600", "\U0001F601"),
    ("x.y-z_1", "X.Y-Z_1"), ("ab", "a\u00adb"), ("alice", "alicf"), ("alice", " alice"),
    ("alice", "alice\t"), ("a", "b"), ("", "\u200b"),
])
def test_username_keys_are_equal_exactly_when_the_database_says_so(app, name, other):
    with app.app_context():
        same = db.one("SELECT %s = %s COLLATE utf8mb4_unicode_ci AS same", (name, other))["same"]
        assert (throttle.username_key(name) == throttle.username_key(other)) == bool(same)
        db.close_db()


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


def test_per_ip_refusals_do_not_consume_the_window(make_app):
    # Moving window: hammering while refused never pushes the next allowed request back.
    app = throttled_app(make_app, RATELIMIT_LOGIN="2 per 2 seconds", LOGIN_FREE_FAILURES=50)
    client = app.test_client()
    assert [attempt(client, f"n{n}").status_code for n in range(2)] == [401, 401]
    for n in range(5):
        assert_429(attempt(client, f"r{n}"))
    time.sleep(2.1)
    assert attempt(client, "after").status_code == 401


def _limiter_hooks(app):
    limiter = app.extensions[rate_limits.EXTENSION].limiter
    hooks = [f for table in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
             for f in table.get(None, [])]
    return [f for f in hooks if getattr(f, "__self__", None) is limiter
            or (getattr(f, "args", None) and f.args[0] is limiter)]


def test_no_limiter_hook_runs_at_every_request_yet_view_limits_hold(make_app, make_user):
    # The per-request hooks serve global limits only; the views' own limits
    # are checked inside the views (and answered in the JSON shape).
    app = throttled_app(make_app, RATELIMIT_LOGIN="2/minute")
    assert _limiter_hooks(app) == []
    client = app.test_client()
    assert [attempt(client, "nobody").status_code for _ in range(2)] == [401, 401]
    assert_429(attempt(client, "nobody"))
    assert client.get("/public").status_code == 200


def test_a_global_limit_keeps_the_limiter_hooks(make_app):
    app = throttled_app(make_app, RATELIMIT_DEFAULT="1/minute")
    assert len(_limiter_hooks(app)) == 3
    client = app.test_client()
    assert client.get("/public").status_code == 200
    assert client.get("/public").status_code == 429
