"""Response hardening: security headers on every response, no-store on tokens, CORS by allowlist only."""
import pytest

import app as app_module
from config import ConfigError
from support import app_config, bearer
from rest import middleware

PASSWORD = "correct-horse-battery"
STRONG_SECRET = "s" * 48
API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def assert_hardened(response, csp=API_CSP):
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == csp
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


@pytest.fixture
def crashing_app(make_app):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    return app


# --- security headers everywhere -------------------------------------------------------------

@pytest.mark.parametrize("method, path, kwargs, status", [
    ("get", "/public", {}, 200),
    ("get", "/rest-auth", {}, 401),
    ("get", "/no-such-page", {}, 404),
    ("delete", "/auth", {}, 405),
    ("post", "/auth", {"data": "x"}, 415),
    ("post", "/auth", {"json": []}, 400),
    ("post", "/auth", {"json": {"username": "nobody", "password": "wrong-password"}}, 401),
    ("get", "/.well-known/jwks.json", {}, 200),
    ("get", "/static/login.css", {}, 200),
])
def test_every_json_and_static_response_is_hardened(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert_hardened(response)


def test_a_crash_is_hardened_too(crashing_app):
    response = crashing_app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {"status_code": 500, "error": "Internal Server Error",
                                   "description": "An unexpected error occurred."}
    assert_hardened(response)


def test_an_empty_204_is_hardened(client, make_user, login):
    make_user("alice", PASSWORD)
    response = client.post("/logout", headers=bearer(login("alice", PASSWORD)))
    assert response.status_code == 204
    assert_hardened(response)


@pytest.mark.parametrize("path", ["/", "/login"])
def test_html_gets_the_strict_page_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert_hardened(response, PAGE_CSP)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_headers_are_set_once(client):
    response = client.get("/login")
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert len(response.headers.getlist(name)) == 1


def test_https_requests_get_hsts(client):
    response = client.get("/public", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


# --- token responses are never cached ---------------------------------------------------------

@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


def test_every_token_response_is_no_store(client, alice):
    credentials = {"username": "alice", "password": PASSWORD}
    for response in (client.post("/auth", json=credentials), client.post("/login", json=credentials)):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"
        refreshed = client.post("/refresh", json={"refresh_token": response.get_json()["refresh_token"]})
        assert refreshed.status_code == 200
        assert refreshed.headers["Cache-Control"] == "no-store"
        assert refreshed.headers["Pragma"] == "no-cache"


# --- CORS -----------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def cors_headers(response):
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def test_cors_is_off_by_default(client):
    response = client.get("/public", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "Vary" not in response.headers
    preflight = client.options("/auth", headers=PREFLIGHT)
    assert cors_headers(preflight) == {}


def test_an_allowed_origin_may_read_responses(make_app):
    client = make_app(CORS_ORIGINS=[ORIGIN, "http://localhost:3000"]).test_client()
    response = client.get("/rest-auth", headers={"Origin": ORIGIN})
    assert response.status_code == 401  # errors are readable too, so clients can show them
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": ORIGIN,
        "Access-Control-Expose-Headers": middleware.CORS_EXPOSED_HEADERS,
    }
    assert "Origin" in response.headers["Vary"]


def test_a_preflight_from_an_allowed_origin_needs_no_token(make_app):
    client = make_app(CORS_ORIGINS=[ORIGIN]).test_client()
    response = client.options("/logout", headers=PREFLIGHT)
    assert response.status_code == 200
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": ORIGIN,
        "Access-Control-Expose-Headers": middleware.CORS_EXPOSED_HEADERS,
        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, DPoP, If-Match, X-Request-ID, x-access-tokens",
        "Access-Control-Max-Age": "600",
    }


@pytest.mark.parametrize("origin", ["https://evil.example", "https://APP.example.com",
                                    "http://app.example.com", "https://app.example.com:8443",
                                    "https://app.example.com.evil.example", "null", ""])
def test_any_other_origin_gets_nothing(make_app, origin):
    client = make_app(CORS_ORIGINS=[ORIGIN]).test_client()
    for response in (client.get("/public", headers={"Origin": origin}),
                     client.options("/auth", headers={**PREFLIGHT, "Origin": origin})):
        assert cors_headers(response) == {}
        assert "Origin" in response.headers["Vary"]  # caches must not reuse an allowed answer


def test_a_wildcard_allows_every_origin_without_credentials(make_app):
    client = make_app(CORS_ORIGINS=["*"]).test_client()
    response = client.get("/public", headers={"Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_origins_are_read_from_the_environment():
    app = app_module.create_app(env={"APP_ENV": "test", "SECRET_KEY": STRONG_SECRET,
                                     "CORS_ORIGINS": f"{ORIGIN}, http://localhost:3000"})
    assert app.config["CORS_ORIGINS"] == [ORIGIN, "http://localhost:3000"]


@pytest.mark.parametrize("origin", ["https://app.example.com/", "app.example.com", "https://*.example.com",
                                    "null", "ftp://app.example.com", "https://app.example.com/path"])
def test_a_cors_origin_that_is_not_an_origin_is_refused(origin):
    with pytest.raises(ConfigError, match="is not an origin"):
        app_module.create_app(app_config("unused", CORS_ORIGINS=[origin]), env={})


# --- production refuses unsafe settings ---------------------------------------------------------

@pytest.mark.parametrize("env, message", [
    ({"FLASK_DEBUG": "1", "SECRET_KEY": STRONG_SECRET},
     "FLASK_DEBUG is on in production: unset it or set APP_ENV=development"),
    ({"FLASK_DEBUG": "true", "SECRET_KEY": STRONG_SECRET}, "FLASK_DEBUG is on in production"),
    ({}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": "secret"}, "SECRET_KEY is a known default"),
    ({"SECRET_KEY": "short-but-not-default"}, "SECRET_KEY is shorter than 32 bytes"),
])
def test_production_refuses_debug_and_weak_keys(env, message):
    with pytest.raises(ConfigError, match=message):
        app_module.create_app(env={"APP_ENV": "production", **env})


def test_production_starts_with_a_strong_key_and_debug_off():
    app = app_module.create_app(env={"APP_ENV": "production", "SECRET_KEY": STRONG_SECRET,
                                     "MFA_ENCRYPTION_KEY": "m" * 43 + "="})
    assert app.debug is False
