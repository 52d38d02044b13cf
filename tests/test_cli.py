"""The core operator commands, through Flask's CLI runner."""
import pytest

import db
from accounts import auth, passwords


def _user(app, username):
    with app.app_context():
        return db.one("SELECT username, password, is_admin FROM user WHERE username = %s", (username,))


def test_init_db_is_idempotent(runner):
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "schema loaded" in result.output


def test_seed_loads_the_demo_users_once(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["seed"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        users = db.many("SELECT username, is_admin FROM user ORDER BY username")
        assert [(u["username"], u["is_admin"]) for u in users] == [("admin", 1), ("alice", 0), ("roy", 0)]
        assert auth.authenticate("roy", "roy") is not None
        assert auth.authenticate("admin", "admin-demo-password").is_admin
        assert db.one("SELECT COUNT(*) AS n FROM post")["n"] == 3


def test_create_user_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(args=["create-user", "carol", "--admin"], input="carol-long-password\n")
    assert result.exit_code == 0, result.output
    assert "created admin user carol" in result.output
    row = _user(app, "carol")
    assert row["is_admin"] == 1 and passwords.verify_password(row["password"], "carol-long-password")
    assert "carol-long-password" not in result.output and "$argon2" not in result.output


def test_create_user_refuses_duplicates_and_bad_input(runner, make_user):
    make_user("carol")
    duplicate = runner.invoke(args=["create-user", "carol"], input="carol-long-password\n")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    weak = runner.invoke(args=["create-user", "dave"], input="short\n")
    assert weak.exit_code == 1 and "at least 8 characters" in weak.output
    common = runner.invoke(args=["create-user", "dave"], input="password123\n")
    assert common.exit_code == 1 and "too common" in common.output
    bad_name = runner.invoke(args=["create-user", "no spaces"], input="fine-password-1\n")
    assert bad_name.exit_code == 1 and "username must be" in bad_name.output


def test_hash_password_prints_a_pasteable_argon2id_hash(runner):
    result = runner.invoke(args=["hash-password"], input="pasted-password\n")
    assert result.exit_code == 0
    hashed = result.output.strip()
    assert hashed.startswith("$argon2id$") and passwords.verify_password(hashed, "pasted-password")


@pytest.mark.parametrize("password, message", [
    ("", "password must be at least 8 characters"),
    ("x", "password must be at least 8 characters"),
    ("password123", "password is too common; choose another"),
    ("p" * 1025, "password must be at most 1024 characters"),
])
def test_hash_password_applies_the_api_password_rules(runner, password, message):
    result = runner.invoke(args=["hash-password"], input=password + "\n")
    assert result.exit_code == 1
    assert result.output == f"error: {message}\n"


def test_bootstrap_explains_what_to_do_without_a_database(make_app):
    runner = make_app(DB_PORT=1, DB_CONNECT_TIMEOUT=1).test_cli_runner()
    result = runner.invoke(args=["bootstrap"])
    assert result.exit_code == 1
    assert "cannot reach MySQL at 127.0.0.1:1" in result.output
    assert "docker compose up -d db" in result.output and "Traceback" not in result.output


def test_bootstrap_seeds_only_a_new_database(database, make_app):
    from support import drop_database
    name = database + "_boot"
    runner = make_app(DB_NAME=name).test_cli_runner()
    try:
        first = runner.invoke(args=["bootstrap"])
        assert first.exit_code == 0 and "schema and demo data loaded" in first.output
        second = runner.invoke(args=["bootstrap"])
        assert second.exit_code == 0 and second.output.strip() == "database ready"
    finally:
        drop_database(name)
