"""Dockerfile and docker-compose.yml, checked without a Docker engine (none on these machines).

The compose file is read as YAML (services, images, healthchecks, the init
mount, start order, no secret literals); the Dockerfile as instructions. The
image's HEALTHCHECK command itself is run against a live gunicorn.
"""
import json
import re
import subprocess
import sys

import pytest
import yaml

from support import ROOT

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.I)
REQUIRED_INTERPOLATION = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile():
    """[(INSTRUCTION, arguments)] with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def _env_example():
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#") and "=" in line}


def test_services(compose):
    assert set(compose["services"]) == {"db", "redis", "api", "mailpit"}
    assert compose["services"]["db"]["image"] == "mysql:8.4"
    assert compose["services"]["redis"]["image"].startswith("redis:")
    assert compose["services"]["api"]["build"] == "."


def test_mailpit_catches_the_api_mail_with_a_loopback_web_ui(compose):
    mailpit, env = compose["services"]["mailpit"], compose["services"]["api"]["environment"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert mailpit["ports"] == ["127.0.0.1:${MAILPIT_HOST_PORT:-8025}:8025",
                                "127.0.0.1:${MAILPIT_SMTP_HOST_PORT:-1025}:1025"]
    assert mailpit["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]
    assert env["MAIL_HOST"] == "${MAIL_HOST:-mailpit}" and env["MAIL_PORT"] == "${MAIL_PORT:-1025}"
    assert env["MAIL_SECURITY"] == "${MAIL_SECURITY:-none}"


def test_every_service_has_a_healthcheck(compose):
    db, redis = compose["services"]["db"], compose["services"]["redis"]
    assert "mysqladmin ping" in " ".join(db["healthcheck"]["test"])
    assert "-h 127.0.0.1" in " ".join(db["healthcheck"]["test"])  # not the init phase's socket
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # The api's healthcheck is the image's HEALTHCHECK (see the Dockerfile tests).
    assert "healthcheck" not in compose["services"]["api"]


def test_mysql_loads_the_schema_read_only_and_never_the_demo_data(compose):
    """The container runs production: seed.sql's published passwords must not reach it."""
    volumes = compose["services"]["db"]["volumes"]
    assert "./sql/schema.sql:/docker-entrypoint-initdb.d/schema.sql:ro" in volumes
    assert not [v for v in volumes if "seed" in v or v.startswith("./sql:")]


def test_api_waits_for_healthy_db_and_redis(compose):
    depends = compose["services"]["api"]["depends_on"]
    assert depends == {"db": {"condition": "service_healthy"},
                       "redis": {"condition": "service_healthy"}}


def test_api_uses_redis_for_rate_limits_and_the_cache_and_binds_all_interfaces(compose):
    env = compose["services"]["api"]["environment"]
    assert env["RATELIMIT_STORAGE_URI"] == "redis://redis:6379"
    assert env["REDIS_URL"] == "redis://redis:6379"
    assert env["DB_HOST"] == "db"
    assert env["SERVER_BIND"] == "0.0.0.0:5000"
    assert env["APP_ENV"] == "production"
    assert compose["services"]["api"]["env_file"] == ".env"


def test_api_environment_names_are_config_variables(compose):
    env = compose["services"]["api"]["environment"]
    unknown = set(env) - _env_example()
    assert not unknown, f"not in .env.example: {unknown}"


def test_no_secret_literals(compose):
    """Every secret-looking value is `${VAR:?message}`: from .env, and required."""
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("_USER"):
                assert REQUIRED_INTERPOLATION.match(str(value)), f"{name}.{key} = {value!r}"
    # And no MYSQL_ALLOW_EMPTY_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD shortcuts.
    assert not {"MYSQL_ALLOW_EMPTY_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD"} & set(
        compose["services"]["db"]["environment"])


def test_published_ports_are_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_compose_variables_are_documented(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)[:}]", text))
    assert used <= _env_example(), f"not in .env.example: {used - _env_example()}"


def test_dockerfile_base_user_and_layers(dockerfile):
    instructions = [name for name, _ in dockerfile]
    assert dockerfile[0] == ("FROM", "python:3.11-slim")
    users = [args for name, args in dockerfile if name == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    # requirements.txt is copied and installed before the code: its own cached layer.
    copies = [args for name, args in dockerfile if name == "COPY"]
    assert copies[0] == "requirements.txt ."
    install = next(i for i, (name, args) in enumerate(dockerfile)
                   if name == "RUN" and "pip install" in args and "requirements.txt" in args)
    assert install < instructions.index("COPY", instructions.index("COPY") + 1)
    assert instructions.index("USER") > install


def test_dockerfile_runs_the_server(dockerfile):
    cmd = json.loads(dict(dockerfile)["CMD"])
    assert cmd == ["python", "-m", "serving"]
    env = " ".join(args for name, args in dockerfile if name == "ENV")
    assert "SERVER_BIND=0.0.0.0:5000" in env and "APP_ENV=production" in env
    assert ("EXPOSE", "5000") in dockerfile


def _healthcheck_command(dockerfile):
    args = dict(dockerfile)["HEALTHCHECK"]
    return json.loads(args[args.index("CMD") + 3:].strip())


def test_dockerfile_healthcheck_uses_python_not_curl(dockerfile):
    command = _healthcheck_command(dockerfile)
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    assert "curl" not in dict(dockerfile)["HEALTHCHECK"]


@pytest.mark.live
def test_the_healthcheck_command_passes_against_gunicorn(dockerfile, live_server):
    code = _healthcheck_command(dockerfile)[2].replace("http://127.0.0.1:5000", live_server.url)
    assert subprocess.run([sys.executable, "-c", code], timeout=10).returncode == 0


def test_the_healthcheck_command_fails_without_a_server(dockerfile):
    code = _healthcheck_command(dockerfile)[2].replace("127.0.0.1:5000", "127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", code], timeout=10, capture_output=True)
    assert result.returncode != 0


def test_dockerignore_keeps_secrets_and_tooling_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "node_modules", "tests"} <= ignored


def test_make_env_fills_in_every_compose_secret(tmp_path):
    """`make .env` writes the secrets compose requires, so `docker compose up` can start."""
    for name in ("Makefile", ".env.example"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    subprocess.run(["make", "-s", ".env"], cwd=tmp_path, check=True, capture_output=True, timeout=30)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line)
    text = (ROOT / "docker-compose.yml").read_text()
    for required in set(re.findall(r"\$\{([A-Z_]+):\?", text)):
        assert len(values[required]) >= 32, required
