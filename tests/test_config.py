"""Configuration: typed parsing and the production guard."""
import os
import subprocess
import sys

import pytest

import app as app_module
import config
from support import ROOT

STRONG = "s" * 48
MFA_KEY = "m" * 43 + "="  # a well-formed Fernet key (32 bytes, base64url)


def _production(**env):
    values = {"APP_ENV": "production", "SECRET_KEY": STRONG, "MFA_ENCRYPTION_KEY": MFA_KEY}
    values.update(env)
    return config.from_env(values)


@pytest.mark.parametrize("secret, message", [
    ("", "SECRET_KEY is not set"),
    ("secret-key", "SECRET_KEY is a known default"),
    ("Th1s1ss3cr3t", "SECRET_KEY is a known default"),
    ("replace-me-with-the-output-of-make-secret", "SECRET_KEY is a known default"),
    ("x" * 31, "SECRET_KEY is shorter than 32 bytes"),
])
def test_production_refuses_a_missing_default_or_short_secret(secret, message):
    with pytest.raises(config.ConfigError) as caught:
        config.validate(_production(SECRET_KEY=secret))
    text = str(caught.value)
    assert text.startswith(message)
    assert "secrets.token_urlsafe" in text and "\n" not in text


def test_production_refuses_debug():
    with pytest.raises(config.ConfigError, match="FLASK_DEBUG is on in production"):
        config.validate(_production(FLASK_DEBUG="1"))


def test_production_accepts_a_strong_secret():
    config.validate(_production())


def test_development_tolerates_a_missing_secret():
    config.validate(config.from_env({"APP_ENV": "development"}))


def test_create_app_applies_the_guard():
    with pytest.raises(config.ConfigError):
        app_module.create_app(env={"APP_ENV": "production", "SECRET_KEY": "short"})


@pytest.mark.parametrize("env, message", [
    ({"DB_PORT": "abc"}, "DB_PORT must be an integer"),
    ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE must be at least 1"),
    ({"FLASK_DEBUG": "maybe"}, "FLASK_DEBUG must be true or false"),
])
def test_malformed_values_are_named(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.from_env(env)


@pytest.mark.parametrize("env, message", [
    ({"DB_SSL_MODE": "sometimes"}, "DB_SSL_MODE must be one of"),
    ({"TOKEN_LOCATIONS": "cookies"}, "TOKEN_LOCATIONS must list some of"),
    ({"TOKEN_LOCATIONS": " , "}, "TOKEN_LOCATIONS must list some of"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must start with one of: redis://"),
    ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL must start with one of"),
    ({"CACHE_SECONDS": "301"}, "CACHE_SECONDS must be between 0 and 300"),
    ({"SERVER_TASKS": "threads"}, r"SERVER_TASKS must be one of: rust, asyncio \(got 'threads'\)"),
])
def test_invalid_choices_are_refused(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.validate(_production(**env))


def test_typed_values():
    values = config.from_env({"DB_PORT": "3307", "TOKEN_LOCATIONS": "authorization, query",
                              "FLASK_DEBUG": "off", "JWT_ACCESS_TTL": "60"})
    assert values["DB_PORT"] == 3307 and values["JWT_ACCESS_TTL"] == 60
    assert values["TOKEN_LOCATIONS"] == ["authorization", "query"] and values["DEBUG"] is False


def test_server_tasks_follow_the_python_that_has_them(monkeypatch):
    """Rust tasks by default where granian has them (Python < 3.12); asyncio's, and never rust, after."""
    assert config.from_env({})["SERVER_TASKS"] == ("rust" if sys.version_info < (3, 12) else "asyncio")
    monkeypatch.setattr(config.sys, "version_info", (3, 12, 0))
    assert config.from_env({})["SERVER_TASKS"] == "asyncio"
    with pytest.raises(config.ConfigError, match="SERVER_TASKS=rust needs Python before 3.12.*"
                                                 "set SERVER_TASKS=asyncio"):
        config.validate(_production(SERVER_TASKS="rust"))


def test_every_variable_is_in_env_example():
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    read = set(config.from_env({}).keys()) - {"DEBUG"} | {"FLASK_DEBUG"}
    assert read <= documented, f"undocumented: {read - documented}"


def _env_without_secret():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "APP_ENV", "FLASK_"))}
    env.update(APP_ENV="production", SECRET_KEY="")  # an empty value also stops .env filling it in
    return env


@pytest.mark.live
def test_the_server_refuses_to_start_in_one_line():
    result = subprocess.run([sys.executable, "-m", "serving"], cwd=ROOT, env=_env_without_secret(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].lower().startswith("error: secret_key is not set; generate one")


def test_python_app_py_refuses_to_start_in_one_line():
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=_env_without_secret(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: SECRET_KEY is not set; generate one")
    assert "Traceback" not in result.stderr


# --- account email (issue 14) ---------------------------------------------------

def test_production_refuses_account_email_without_mail_host():
    with pytest.raises(config.ConfigError, match="ACCOUNT_EMAIL is on but MAIL_HOST is not set"):
        config.validate(_production(ACCOUNT_EMAIL="true"))


@pytest.mark.parametrize("env, on", [
    ({}, False),                                  # production, no MAIL_HOST: off, still starts
    ({"MAIL_HOST": "smtp.example.com"}, True),
    ({"APP_ENV": "development"}, True),           # development logs the messages instead
    ({"MAIL_HOST": "smtp.example.com", "ACCOUNT_EMAIL": "false"}, False),
])
def test_account_email_default(env, on):
    values = _production(**env)
    config.validate(values)
    assert values["ACCOUNT_EMAIL"] is on


@pytest.mark.parametrize("env, message", [
    ({"MAIL_SECURITY": "ssl"}, "MAIL_SECURITY must be one of: none, starttls, tls"),
    ({"PUBLIC_URL": "accounts.example.com"}, "PUBLIC_URL must be scheme://host"),
    ({"PUBLIC_URL": "https://accounts.example.com/#x"}, "PUBLIC_URL must be scheme://host"),
    ({"PUBLIC_URL": "http://accounts.example.com"}, "reset links must use https:// in production"),
    ({"MAIL_FROM": "no-reply@example.com\r\nBcc: eve@example.net"}, "MAIL_FROM must be one address"),
    ({"MAIL_FROM": "nobody"}, "MAIL_FROM must be one address"),
])
def test_mail_settings_are_checked(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.validate(_production(MAIL_HOST="smtp.example.com", **env))


@pytest.mark.parametrize("url", ["https://accounts.example.com", "http://127.0.0.1:5000", "http://localhost"])
def test_public_url_in_production_is_https_or_loopback(url):
    config.validate(_production(MAIL_HOST="smtp.example.com", PUBLIC_URL=url))



# --- mail transport security (issue 14: MAIL_CA_FILE, no password in clear) ---------

@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_mail_ca_file_must_load(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(config.ConfigError, match=r"^MAIL_CA_FILE='.*ca\.pem' is not a readable PEM file"):
        config.validate(_production(MAIL_HOST="smtp.example.com", MAIL_CA_FILE=str(path)))


def test_production_refuses_the_smtp_password_in_clear():
    with pytest.raises(config.ConfigError, match="set MAIL_SECURITY=starttls or tls"):
        config.validate(_production(MAIL_HOST="smtp.example.com", MAIL_SECURITY="none",
                                    MAIL_USERNAME="mailer", MAIL_PASSWORD="pw"))


@pytest.mark.parametrize("env", [
    {"MAIL_HOST": "127.0.0.1", "MAIL_SECURITY": "none", "MAIL_USERNAME": "mailer"},  # a local relay
    {"MAIL_HOST": "smtp.example.com", "MAIL_SECURITY": "none"},                     # no login
    {"MAIL_HOST": "smtp.example.com", "MAIL_SECURITY": "tls", "MAIL_USERNAME": "mailer"},
])
def test_mail_transport_settings_that_start(env):
    config.validate(_production(**env))

# --- where rate-limit counts live, and how the server runs (docs/security.md) ---

@pytest.mark.parametrize("env, uri", [
    ({}, "memory://"),
    ({"REDIS_URL": "redis://cache:6379/0"}, "redis://cache:6379/0"),
    ({"REDIS_URL": "redis://cache:6379/0", "RATELIMIT_STORAGE_URI": "redis://limits:6379/1"},
     "redis://limits:6379/1"),
    ({"REDIS_URL": "unix:///run/redis.sock"}, "redis+unix:///run/redis.sock"),
])
def test_rate_limit_storage_defaults_to_redis_url(env, uri):
    assert config.rate_limit_storage(config.from_env(env)) == uri


@pytest.mark.parametrize("env, plan", [
    ({"SERVER_WORKERS": "4"}, (1, 4)),  # memory counts: one process, four threads
    ({"SERVER_WORKERS": "4", "REDIS_URL": "redis://r:6379/0"}, (4, 1)),
    ({"SERVER_WORKERS": "4", "RATELIMIT_STORAGE_URI": "redis://r:6379/0"}, (4, 1)),
    ({"SERVER_WORKERS": "4", "RATELIMIT_ENABLED": "false"}, (4, 1)),
    ({"SERVER_WORKERS": "1"}, (1, 1)),
])
def test_the_server_never_splits_memory_counts_over_processes(env, plan):
    assert config.worker_plan(config.from_env(env)) == plan
