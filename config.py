"""Configuration: typed values read from the environment (and an optional .env).

Every variable is listed in `.env.example` with its default. Insecure defaults
exist only for development and tests; `check_production()` refuses them.
"""
import email.utils
import os
import re
import ssl
import sys

from dotenv import load_dotenv

import redis_client

# Known-weak secrets that must never sign a production token: the tutorials'
# own values and the placeholder shipped in .env.example.
WEAK_SECRETS = {
    "", "secret", "secret-key", "Th1s1ss3cr3t", "changeme", "change-me",
    "dev", "development", "test", "testing",
    "replace-me-with-the-output-of-make-secret",
}
MIN_SECRET_BYTES = 32
SECRET_HINT = (
    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
)


class ConfigError(RuntimeError):
    """Raised when the configuration cannot run safely."""


# An empty value means unset, for every setting: `NAME=` in .env gives the default.
def _str(env, name, default):
    return env.get(name) or default


def _int(env, name, default, minimum=0, maximum=None):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


# Settings of the gunicorn days: a deployment that still sets one would be
# silently served on the default address or worker count.
RENAMED = {"GUNICORN_BIND": "SERVER_BIND", "GUNICORN_WORKERS": "SERVER_WORKERS",
           "GUNICORN_TIMEOUT": "SERVER_TIMEOUT"}


def _refuse_renamed(env):
    for old, new in RENAMED.items():
        if env.get(old):
            raise ConfigError(f"{old} is no longer read (the server is granian, not gunicorn): "
                              f"rename it {new}")


SERVER_TASK_KINDS = ("rust", "asyncio")


def default_server_tasks() -> str:
    """granian's Rust task implementation exists only for Python before 3.12."""
    return "rust" if sys.version_info < (3, 12) else "asyncio"


def _lifetime(env):
    seconds = _int(env, "SERVER_WORKER_LIFETIME", 0, minimum=0)
    if 0 < seconds < 60:
        raise ConfigError(f"SERVER_WORKER_LIFETIME must be 0 (never) or at least 60, got {seconds}")
    return seconds


def _bool(env, name, default):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _list(env, name, default):
    raw = env.get(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def from_env(env=None):
    """Return the configuration as a dict of typed values.

    Reads `env` (default: os.environ after loading `.env`, which never
    overrides variables already set). Raises ConfigError on malformed values.
    """
    if env is None:
        load_dotenv(override=False)
        env = os.environ
        metrics_folder()
    _refuse_renamed(env)
    return {
        "APP_ENV": _str(env, "APP_ENV", "production"),
        "DEBUG": _bool(env, "FLASK_DEBUG", False),
        "SECRET_KEY": _str(env, "SECRET_KEY", ""),
        # Previous HS256 secrets: still verify tokens, never sign (key rotation).
        "SECRET_KEY_PREVIOUS": _list(env, "SECRET_KEY_PREVIOUS", []),
        # Database.
        "DB_HOST": _str(env, "DB_HOST", "127.0.0.1"),
        "DB_PORT": _int(env, "DB_PORT", 3306, minimum=1),
        "DB_USER": _str(env, "DB_USER", "root"),
        "DB_PASSWORD": _str(env, "DB_PASSWORD", ""),
        "DB_NAME": _str(env, "DB_NAME", "jwt_api"),
        "DB_POOL_SIZE": _int(env, "DB_POOL_SIZE", 8, minimum=1),
        "DB_CONNECT_TIMEOUT": _int(env, "DB_CONNECT_TIMEOUT", 3, minimum=1),
        "DB_READ_TIMEOUT": _int(env, "DB_READ_TIMEOUT", 10, minimum=1),
        "DB_WRITE_TIMEOUT": _int(env, "DB_WRITE_TIMEOUT", 10, minimum=1),
        # disabled | required | verify-ca | verify-identity
        "DB_SSL_MODE": _str(env, "DB_SSL_MODE", "disabled").lower(),
        "DB_SSL_CA": _str(env, "DB_SSL_CA", ""),
        "DB_RETRY_AFTER": _int(env, "DB_RETRY_AFTER", 5, minimum=1),
        # Galera (docs/operations.md "Running on a cluster"): DB_HOST may list
        # several "host:port"; causal reads (wsrep_sync_wait=1): auto | on | off,
        # auto = on when the server runs Galera; a write that meets a deadlock or
        # certification conflict is re-run whole this many more times.
        "DB_CAUSAL_READS": _str(env, "DB_CAUSAL_READS", "auto").lower(),
        "DB_WRITE_RETRIES": _int(env, "DB_WRITE_RETRIES", 5),
        # Tokens.
        "JWT_ACCESS_TTL": _int(env, "JWT_ACCESS_TTL", 900, minimum=1),
        "JWT_REFRESH_TTL": _int(env, "JWT_REFRESH_TTL", 30 * 24 * 3600, minimum=1),
        "JWT_REFRESH_GRACE": _int(env, "JWT_REFRESH_GRACE", 10),
        "JWT_LEEWAY": _int(env, "JWT_LEEWAY", 10),
        "JWT_ISSUER": _str(env, "JWT_ISSUER", ""),
        "JWT_AUDIENCE": _str(env, "JWT_AUDIENCE", ""),
        "JWT_MAX_LENGTH": _int(env, "JWT_MAX_LENGTH", 4096, minimum=256),
        # Signing keys (rest/keys.py, docs/security.md "Keys"): HS256 signs with
        # SECRET_KEY; RS256, ES256 and EdDSA sign with the PEM private key file,
        # and every *.pem in the verify directory still verifies (rotated keys).
        "JWT_ALGORITHM": _str(env, "JWT_ALGORITHM", "HS256"),
        "JWT_PRIVATE_KEY_FILE": _str(env, "JWT_PRIVATE_KEY_FILE", ""),
        "JWT_VERIFY_KEYS_DIR": _str(env, "JWT_VERIFY_KEYS_DIR", ""),
        # Where a request may carry its access token, in the order tried:
        # authorization (Authorization: JWT|Bearer), x-access-tokens, query (?token=).
        "TOKEN_LOCATIONS": _list(env, "TOKEN_LOCATIONS", ["authorization", "x-access-tokens"]),
        # Personal access tokens (accounts/personal_tokens.py): lifetime when
        # POST /tokens names none, and the longest a user may ask for (seconds).
        "PAT_DEFAULT_TTL": _int(env, "PAT_DEFAULT_TTL", 30 * 24 * 3600, minimum=60),
        "PAT_MAX_TTL": _int(env, "PAT_MAX_TTL", 365 * 24 * 3600, minimum=60),
        # DPoP (RFC 9449, rest/dpop_proofs.py): REQUIRED refuses tokens without
        # a proof (bearer access tokens and logins without DPoP; PATs excepted);
        # NONCE makes every proof carry a server nonce (DPoP-Nonce); MAX_AGE is
        # how old (iat, seconds) a proof may be, JWT_LEEWAY on top.
        "DPOP_REQUIRED": _bool(env, "DPOP_REQUIRED", False),
        "DPOP_NONCE": _bool(env, "DPOP_NONCE", False),
        "DPOP_MAX_AGE": _int(env, "DPOP_MAX_AGE", 60, minimum=1),
        # Requests.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 64 * 1024, minimum=1024),
        "PASSWORD_MAX_LENGTH": _int(env, "PASSWORD_MAX_LENGTH", 1024, minimum=64),
        # Browser origins allowed to call the API cross-origin (rest/hardening.py);
        # empty: CORS off. Exact origins like https://app.example.com, or *.
        "CORS_ORIGINS": _list(env, "CORS_ORIGINS", []),
        # Throttling (rest/rate_limits.py, accounts/throttle.py; docs/security.md "Throttling").
        # Limits are Flask-Limiter strings: "10/minute;100/hour".
        "RATELIMIT_ENABLED": _bool(env, "RATELIMIT_ENABLED", True),
        # Empty: memory (per process). redis://127.0.0.1:6379/0 shares counts
        # between server workers and instances.
        "RATELIMIT_STORAGE_URI": _str(env, "RATELIMIT_STORAGE_URI", ""),
        # Prefix of every key in that storage: deployments sharing a Redis use their own.
        "RATELIMIT_KEY_PREFIX": _str(env, "RATELIMIT_KEY_PREFIX", "jwtapi"),
        "RATELIMIT_LOGIN": _str(env, "RATELIMIT_LOGIN", "10/minute;100/hour"),
        "RATELIMIT_LOGIN_PER_USER": _str(env, "RATELIMIT_LOGIN_PER_USER", "10/minute;100/hour"),
        "RATELIMIT_REFRESH": _str(env, "RATELIMIT_REFRESH", "30/minute;300/hour"),
        "RATELIMIT_REGISTER": _str(env, "RATELIMIT_REGISTER", "5/minute;20/hour"),
        # Failed logins per account: this many are free, then each attempt waits
        # 2, 4, 8... seconds after the last failure, at most LOGIN_MAX_DELAY.
        "LOGIN_FREE_FAILURES": _int(env, "LOGIN_FREE_FAILURES", 5, minimum=1),
        "LOGIN_MAX_DELAY": _int(env, "LOGIN_MAX_DELAY", 60, minimum=1),
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are
        # trusted (0: the client is the socket peer, remote_addr).
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        # Redis for the per-worker cache of identities and pages of posts
        # (rest/user_cache.py): its pub/sub channel tells every worker and
        # instance which users changed. Empty: no cache, every read goes to MySQL.
        "REDIS_URL": _str(env, "REDIS_URL", ""),
        # The longest a read is kept: the bound for changes made by hand in SQL.
        "CACHE_SECONDS": _int(env, "CACHE_SECONDS", 10),
        # Observability: one JSON line per request on stderr; Prometheus /metrics.
        "ACCESS_LOG": _bool(env, "ACCESS_LOG", True),
        "METRICS_ENABLED": _bool(env, "METRICS_ENABLED", False),
        # A folder where each server worker writes its metrics (rest/metrics.py).
        "PROMETHEUS_MULTIPROC_DIR": _str(env, "PROMETHEUS_MULTIPROC_DIR", ""),
        # The server (`python -m serving`: granian, serving/). README, "Running in production".
        "SERVER_BIND": _str(env, "SERVER_BIND", "127.0.0.1:5000"),
        "SERVER_WORKERS": _int(env, "SERVER_WORKERS", 4, minimum=1),
        # A worker whose request runs longer than this is restarted (serving/worker.py).
        "SERVER_TIMEOUT": _int(env, "SERVER_TIMEOUT", 30, minimum=1),
        # A client has this long to send its headers, then its body (408), in seconds.
        "SERVER_HEADER_TIMEOUT": _int(env, "SERVER_HEADER_TIMEOUT", 10, minimum=1, maximum=60),
        "SERVER_BODY_TIMEOUT": _int(env, "SERVER_BODY_TIMEOUT", 10, minimum=1),
        # Recycle workers: after this many seconds (0: never; at least 60), or
        # past this many MiB of resident memory (0: no limit).
        "SERVER_WORKER_LIFETIME": _lifetime(env),
        "SERVER_WORKER_MAX_RSS": _int(env, "SERVER_WORKER_MAX_RSS", 0, minimum=0),
        # Who drives each request's coroutine: granian's Rust tasks (less CPU
        # per request; Python < 3.12 only) or asyncio's (serving/__main__.py).
        "SERVER_TASKS": _str(env, "SERVER_TASKS", default_server_tasks()),
        # Account email (accounts/mail*.py, docs/security.md "Account email").
        # ACCOUNT_EMAIL: addresses on accounts, password reset, verification.
        # Unset: on outside production, and in production when MAIL_HOST is set.
        "ACCOUNT_EMAIL": _bool(env, "ACCOUNT_EMAIL", None),
        # SMTP server; empty: messages are written to the log (never in production).
        "MAIL_HOST": _str(env, "MAIL_HOST", ""),
        "MAIL_PORT": _int(env, "MAIL_PORT", 587, minimum=1),
        "MAIL_SECURITY": _str(env, "MAIL_SECURITY", "starttls").lower(),  # none | starttls | tls
        "MAIL_USERNAME": _str(env, "MAIL_USERNAME", ""),
        "MAIL_PASSWORD": _str(env, "MAIL_PASSWORD", ""),
        "MAIL_FROM": _str(env, "MAIL_FROM", "no-reply@localhost"),
        "MAIL_TIMEOUT": _int(env, "MAIL_TIMEOUT", 10, minimum=1),
        # PEM file of the CAs that may sign the SMTP server's certificate (starttls
        # and tls); empty: the system's CAs. The host name is always checked.
        "MAIL_CA_FILE": _str(env, "MAIL_CA_FILE", ""),
        # Retries while the server is down: 1, 2, 4... s up to MAIL_RETRY_MAX, for MAIL_GIVE_UP_AFTER s.
        "MAIL_RETRY_MAX": _int(env, "MAIL_RETRY_MAX", 300, minimum=1),
        "MAIL_GIVE_UP_AFTER": _int(env, "MAIL_GIVE_UP_AFTER", 24 * 3600, minimum=1),
        # Run the sender thread in each worker (off: another process delivers the outbox).
        "MAIL_SENDER": _bool(env, "MAIL_SENDER", True),
        # Links in messages start with PUBLIC_URL (set with the second factors below).
        "PASSWORD_RESET_TTL": _int(env, "PASSWORD_RESET_TTL", 1800, minimum=60),
        "EMAIL_VERIFY_TTL": _int(env, "EMAIL_VERIFY_TTL", 24 * 3600, minimum=60),
        # Reset links one account receives per hour, however the requests were spread.
        "PASSWORD_RESET_MAILS_PER_HOUR": _int(env, "PASSWORD_RESET_MAILS_PER_HOUR", 5, minimum=1),
        # POST /password/forgot and /email/verify/resend: per client IP, and per account named.
        "RATELIMIT_FORGOT": _str(env, "RATELIMIT_FORGOT", "5/minute;20/hour"),
        "RATELIMIT_FORGOT_PER_ACCOUNT": _str(env, "RATELIMIT_FORGOT_PER_ACCOUNT", "3/hour"),
        # POST /password/reset and /email/verify: per client IP.
        "RATELIMIT_TOKEN": _str(env, "RATELIMIT_TOKEN", "10/minute;50/hour"),
        # Login events written by a background thread (a login never waits for
        # their INSERT). Unset: on, except in the test suite's apps.
        "SECURITY_EVENTS_BACKGROUND": _bool(env, "SECURITY_EVENTS_BACKGROUND", None),
        # Second factors (accounts/totp.py, accounts/passkeys.py, docs/security.md
        # "Second factors"). The Fernet key that encrypts TOTP secrets at rest
        # (production refuses to start without one); previous keys still decrypt.
        "MFA_ENCRYPTION_KEY": _str(env, "MFA_ENCRYPTION_KEY", ""),
        "MFA_ENCRYPTION_KEY_PREVIOUS": _list(env, "MFA_ENCRYPTION_KEY_PREVIOUS", []),
        # The name authenticator apps and passkey prompts show.
        "MFA_ISSUER": _str(env, "MFA_ISSUER", "JWT API"),
        # Seconds an mfa_token (a login waiting for its second step) lives.
        "MFA_TOKEN_TTL": _int(env, "MFA_TOKEN_TTL", 300, minimum=30),
        # Sensitive operations need a login or POST /auth/reauth this recent.
        "STEP_UP_SECONDS": _int(env, "STEP_UP_SECONDS", 600, minimum=1),
        # Where browsers reach the service: its host is the WebAuthn RP ID and
        # scheme://host[:port] the origin passkey assertions must come from.
        "PUBLIC_URL": _str(env, "PUBLIC_URL", "http://localhost:5000"),
    }


def metrics_folder(environ=os.environ):
    """PROMETHEUS_MULTIPROC_DIR of the process environment, '' when unset or empty.

    prometheus_client turns on multi-process mode when the variable merely
    exists, and an empty one makes it write into the working directory; so an
    empty one is removed from the environment here, before rest/metrics.py
    imports prometheus_client.
    """
    value = environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not value:
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return value


# The only environments there are: any other spelling ("prod", "Production",
# "staging") would silently skip the production guard, so it is refused.
APP_ENVS = ("development", "test", "production")
SSL_MODES = ("disabled", "required", "verify-ca", "verify-identity")
CAUSAL_READS = ("auto", "on", "off")
TOKEN_LOCATIONS = ("authorization", "x-access-tokens", "query")
JWT_ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")
MAX_CACHE_SECONDS = 300  # a bound on staleness should stay short
# scheme://host[:port], nothing after: the exact string a browser sends as Origin.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def validate(config):
    """Check values that no environment may get wrong; raises ConfigError."""
    _check_app_env(config)
    if config["DB_SSL_MODE"] not in SSL_MODES:
        raise ConfigError(f"DB_SSL_MODE must be one of: {', '.join(SSL_MODES)}")
    if config.get("DB_CAUSAL_READS", "auto") not in CAUSAL_READS:
        raise ConfigError(f"DB_CAUSAL_READS must be one of: {', '.join(CAUSAL_READS)}")
    _check_server_tasks(config)
    if not 0 <= config.get("DB_WRITE_RETRIES", 5) <= 10:
        raise ConfigError("DB_WRITE_RETRIES must be between 0 and 10")
    unknown = set(config["TOKEN_LOCATIONS"]) - set(TOKEN_LOCATIONS)
    if unknown or not config["TOKEN_LOCATIONS"]:
        raise ConfigError(f"TOKEN_LOCATIONS must list some of: {', '.join(TOKEN_LOCATIONS)}")
    _check_keys(config)
    if config.get("PAT_DEFAULT_TTL", 0) > config.get("PAT_MAX_TTL", 1 << 62):
        raise ConfigError("PAT_DEFAULT_TTL must not exceed PAT_MAX_TTL")
    _check_cors(config)
    _check_redis(config)
    _check_mfa(config)  # first: PUBLIC_URL's form, which check_mail() relies on
    check_mail(config)
    check_production(config)


def _check_server_tasks(config):
    tasks = config.get("SERVER_TASKS", default_server_tasks())
    if tasks not in SERVER_TASK_KINDS:
        raise ConfigError(f"SERVER_TASKS must be one of: {', '.join(SERVER_TASK_KINDS)} (got {tasks!r})")
    if tasks == "rust" and sys.version_info >= (3, 12):
        raise ConfigError("SERVER_TASKS=rust needs Python before 3.12 (granian has no Rust tasks after): "
                          "set SERVER_TASKS=asyncio")


def _check_app_env(config):
    if config.get("APP_ENV") not in APP_ENVS:
        raise ConfigError(f"APP_ENV must be one of: {', '.join(APP_ENVS)} "
                          f"(got {config.get('APP_ENV')!r})")


def _check_keys(config):
    alg = config.get("JWT_ALGORITHM", "HS256")
    if alg not in JWT_ALGORITHMS:
        raise ConfigError(f"JWT_ALGORITHM must be one of: {', '.join(JWT_ALGORITHMS)}")
    if alg != "HS256" and not config.get("JWT_PRIVATE_KEY_FILE"):
        raise ConfigError(
            f"JWT_ALGORITHM={alg} needs JWT_PRIVATE_KEY_FILE; "
            f"create one with: JWT_ALGORITHM=HS256 flask --app app keys generate --alg {alg}"
        )


def _check_cors(config):
    for origin in config.get("CORS_ORIGINS", []):
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port], no path)"
            )


def _check_redis(config):
    url = config.get("REDIS_URL", "")
    if url and not url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"REDIS_URL must start with one of: {', '.join(REDIS_SCHEMES)}")
    if url.startswith("redis+sentinel://"):
        try:
            redis_client.parse_sentinel(url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc} (redis+sentinel://host:port,host:port/service_name)") from None
    if not 0 <= config.get("CACHE_SECONDS", 0) <= MAX_CACHE_SECONDS:
        raise ConfigError(f"CACHE_SECONDS must be between 0 and {MAX_CACHE_SECONDS}")


def rate_limit_storage(config):
    """Where rate-limit counts live: RATELIMIT_STORAGE_URI, else REDIS_URL, else "memory://"."""
    uri = config.get("RATELIMIT_STORAGE_URI") or config.get("REDIS_URL") or "memory://"
    if uri.startswith("unix://"):  # redis-py's spelling; the limits library says redis+unix
        uri = "redis+" + uri
    return uri


def worker_plan(config):
    """(processes, threads per process): SERVER_WORKERS processes, unless the limits would split.

    With throttling on and its counts in memory, each process would keep its
    own counts and let SERVER_WORKERS times the documented limits through,
    so the same concurrency runs as threads of one process instead.
    """
    workers = config["SERVER_WORKERS"]
    if config.get("RATELIMIT_ENABLED") and rate_limit_storage(config) == "memory://" and workers > 1:
        return 1, workers
    return workers, 1


MFA_KEY_HINT = (
    "generate one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


def _check_mfa(config):
    """The TOTP encryption keys must be Fernet keys; PUBLIC_URL an http(s) origin."""
    from cryptography.fernet import Fernet  # only here: settings parsing needs no crypto
    for name, keys in (("MFA_ENCRYPTION_KEY", [config.get("MFA_ENCRYPTION_KEY") or ""]),
                       ("MFA_ENCRYPTION_KEY_PREVIOUS", config.get("MFA_ENCRYPTION_KEY_PREVIOUS", []))):
        for key in keys:
            if not key:
                continue
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError(f"{name} is not a Fernet key; {MFA_KEY_HINT}") from None
    url = config.get("PUBLIC_URL", "http://localhost:5000")
    if not _PUBLIC_URL.fullmatch(url):
        raise ConfigError(f"PUBLIC_URL must be scheme://host[:port] like https://auth.example.com, got {url!r}")


_PUBLIC_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?")


def check_production(config):
    """Refuse to run production with debug on or a missing, default or short secret.

    Raises ConfigError with a one-line message that says how to fix it.
    """
    if config.get("APP_ENV") != "production":
        return
    if config.get("DEBUG"):
        raise ConfigError("FLASK_DEBUG is on in production: unset it or set APP_ENV=development")
    secret = config.get("SECRET_KEY") or ""
    if not secret:
        raise ConfigError(f"SECRET_KEY is not set; {SECRET_HINT}")
    if secret in WEAK_SECRETS:
        raise ConfigError(f"SECRET_KEY is a known default; {SECRET_HINT}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes; {SECRET_HINT}"
        )
    if not config.get("MFA_ENCRYPTION_KEY"):
        raise ConfigError(f"MFA_ENCRYPTION_KEY is not set (it encrypts TOTP secrets); {MFA_KEY_HINT}")


MAIL_SECURITIES = ("none", "starttls", "tls")


def check_mail(config):
    """Settle ACCOUNT_EMAIL and check the mail settings; ConfigError with the fix.

    Production never writes mail (with its links) to the log: account email
    needs MAIL_HOST there, and is off by default without one.
    """
    production = config.get("APP_ENV") == "production"
    host = config.get("MAIL_HOST", "")
    if config.get("ACCOUNT_EMAIL") is None:
        config["ACCOUNT_EMAIL"] = bool(host) or not production
    sender = config.get("MAIL_FROM", "no-reply@localhost")
    if any(c in sender for c in "\r\n\0") or "@" not in email.utils.parseaddr(sender)[1]:
        raise ConfigError(f"MAIL_FROM must be one address, optionally with a name "
                          f"('Accounts <no-reply@example.com>'), got {sender!r}")
    if config.get("MAIL_SECURITY", "starttls") not in MAIL_SECURITIES:
        raise ConfigError(f"MAIL_SECURITY must be one of: {', '.join(MAIL_SECURITIES)}")
    _check_mail_transport(config, production)
    public_url = config.get("PUBLIC_URL", "http://localhost:5000")  # its form: _check_mfa()
    if production and config["ACCOUNT_EMAIL"] and not host:
        raise ConfigError("ACCOUNT_EMAIL is on but MAIL_HOST is not set: set MAIL_HOST "
                          "(and MAIL_FROM, PUBLIC_URL) or ACCOUNT_EMAIL=false")
    loopback = re.match(r"http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/|$)", public_url)
    if production and config["ACCOUNT_EMAIL"] and not public_url.startswith("https://") and not loopback:
        raise ConfigError(f"PUBLIC_URL is {public_url!r}: reset links must use https:// in production "
                          "(plain http only for 127.0.0.1 or localhost)")


def _check_mail_transport(config, production):
    """MAIL_CA_FILE must load; production never sends the SMTP password in clear over the network."""
    ca_file = config.get("MAIL_CA_FILE", "")
    if ca_file:
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"MAIL_CA_FILE={ca_file!r} is not a readable PEM file of CA certificates "
                              f"({type(exc).__name__}): fix the path or leave it empty for the "
                              "system's CAs") from None
    host = config.get("MAIL_HOST", "")
    loopback = host in ("localhost", "127.0.0.1", "::1")
    if (production and host and not loopback and config.get("MAIL_USERNAME")
            and config.get("MAIL_SECURITY", "starttls") == "none"):
        raise ConfigError("MAIL_USERNAME is set with MAIL_SECURITY=none: the SMTP password would cross "
                          "the network in clear; set MAIL_SECURITY=starttls or tls")


def share_a_development_secret():
    """Outside production, put a random SECRET_KEY in the environment when none is set; True if it did.

    Keys derived from it (the TOTP key in development) are drawn lazily in
    each worker, so without one shared secret a token or TOTP secret made by
    one worker would be refused by the next.
    """
    import secrets

    settings = from_env()  # also loads .env into os.environ
    if settings["SECRET_KEY"] or settings["APP_ENV"] == "production":
        return False
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    return True


def bind_address(bind):
    """SERVER_BIND as (host, port), or the path of a unix socket ("unix:/run/api.sock").

    ConfigError for anything else: `python -m serving` and `python app.py`
    answer where the setting says, or not at all.
    """
    if bind.startswith("unix:"):
        path = bind[len("unix:"):]
        if path:
            return path
    else:
        host, sep, port = bind.rpartition(":")
        if sep and port.isdigit() and 0 < int(port) < 65536:
            return host.strip("[]") or "127.0.0.1", int(port)
    raise ConfigError(f"SERVER_BIND={bind!r} is neither HOST:PORT (127.0.0.1:5000) "
                      f"nor unix:PATH (unix:/run/jwt-api.sock)")


def refuse_busy_address(host, port):
    """ConfigError naming SERVER_BIND when another process already listens on host:port.

    The servers would otherwise fail in their own words, never naming the setting.
    """
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"{host}:{port} is in use ({exc.strerror}); stop the server listening there, "
                f"or set SERVER_BIND to another address, e.g. SERVER_BIND={host}:{port + 1}"
            ) from None
