"""APP_ENV is one of three names, and production never loads the demo data's published passwords."""
import pytest

import app as app_module
import config
import db
from support import MFA_KEY, ROOT, drop_database

STRONG = "s" * 48


@pytest.mark.parametrize("name", ["prod", "Production", "staging", "PRODUCTION", "dev", " production"])
def test_any_other_app_env_is_refused_in_one_line(name):
    with pytest.raises(config.ConfigError) as caught:
        app_module.create_app(env={"APP_ENV": name, "SECRET_KEY": "short"})
    message = str(caught.value)
    assert message == f"APP_ENV must be one of: development, test, production (got {name!r})"


@pytest.mark.parametrize("name", config.APP_ENVS)
def test_the_three_names_start(name):
    app = app_module.create_app(env={"APP_ENV": name, "SECRET_KEY": STRONG, "MFA_ENCRYPTION_KEY": MFA_KEY})
    assert app.config["APP_ENV"] == name


@pytest.mark.parametrize("env", [{}, {"APP_ENV": ""}])
def test_unset_or_empty_app_env_means_production(env):
    with pytest.raises(config.ConfigError, match="SECRET_KEY is not set"):
        app_module.create_app(env=env)


def _users(app):
    with app.app_context():
        try:
            return [row["username"] for row in db.many("SELECT username FROM user ORDER BY username")]
        finally:
            db.close_db()


def test_seed_is_refused_under_production(make_app):
    app = make_app(APP_ENV="production")
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 1
    assert result.output.startswith("error: APP_ENV=production: sql/seed.sql holds demo users")
    assert "create-user --admin NAME" in result.output and "--demo-data" in result.output
    assert "Traceback" not in result.output and _users(app) == []


def test_seed_under_production_with_the_explicit_flag(make_app):
    app = make_app(APP_ENV="production")
    result = app.test_cli_runner().invoke(args=["seed", "--demo-data"])
    assert result.exit_code == 0, result.output
    assert _users(app) == ["admin", "alice", "roy"]


@pytest.fixture
def fresh_database(database):
    name = database + "_fresh"
    yield name
    drop_database(name)


def test_production_bootstrap_creates_no_account_and_says_how(make_app, fresh_database):
    app = make_app(APP_ENV="production", DB_NAME=fresh_database)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["bootstrap"])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        "database ready (schema loaded; no demo data under APP_ENV=production)",
        "no users yet: create an admin with `flask --app app create-user --admin NAME`",
    ]
    assert _users(app) == []
    created = runner.invoke(args=["create-user", "--admin", "boss"], input="a-long-boss-password\n")
    assert created.exit_code == 0, created.output
    again = runner.invoke(args=["bootstrap"])
    assert again.output.strip() == "database ready" and _users(app) == ["boss"]


def test_production_bootstrap_loads_the_demo_only_when_told(make_app, fresh_database):
    app = make_app(APP_ENV="production", DB_NAME=fresh_database)
    result = app.test_cli_runner().invoke(args=["bootstrap", "--demo-data"])
    assert result.output.strip() == "database ready (schema and demo data loaded)"
    assert _users(app) == ["admin", "alice", "roy"]


def test_development_bootstrap_loads_the_demo(make_app, fresh_database):
    app = make_app(APP_ENV="development", DB_NAME=fresh_database)
    result = app.test_cli_runner().invoke(args=["bootstrap"])
    assert result.output.strip() == "database ready (schema and demo data loaded)"
    assert _users(app) == ["admin", "alice", "roy"]


def test_make_env_writes_development_and_flask_app(tmp_path):
    """`make run`'s .env is the demo's: development (demo data), and `flask` finds the app alone."""
    import subprocess
    for name in ("Makefile", ".env.example"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    subprocess.run(["make", "-s", ".env"], cwd=tmp_path, check=True, capture_output=True, timeout=30)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line)
    assert values["APP_ENV"] == "development" and values["FLASK_APP"] == "app"
    example = (ROOT / ".env.example").read_text().splitlines()
    assert "APP_ENV=production" in example  # the documented default stays the safe one
