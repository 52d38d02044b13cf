"""Operator commands without SQL: set-password, set-admin, delete-user (Flask's CLI runner)."""
import pytest

import db
from support import bearer
from accounts import auth

COMMANDS = ["init-db", "seed", "bootstrap", "create-user", "hash-password", "set-password",
            "set-admin", "delete-user", "keys", "purge-tokens"]


def _row(app, username):
    with app.app_context():
        return db.one("SELECT id, is_admin, token_version FROM user WHERE username = %s", (username,))


def _count(app, sql, params):
    with app.app_context():
        return db.one(sql, params)["n"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_operator_command_has_help(runner, command):
    result = runner.invoke(args=[command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_set_password_changes_it_and_revokes_tokens(app, client, runner, make_user, login):
    make_user("carol", "carol-old-password")
    token = login("carol", "carol-old-password")
    result = runner.invoke(args=["set-password", "carol"], input="carol-new-password\n")
    assert result.exit_code == 0, result.output
    assert "password of carol changed" in result.output
    assert "carol-new-password" not in result.output and "$argon2" not in result.output
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 401
    with app.app_context():
        assert auth.authenticate("carol", "carol-old-password") is None
        assert auth.authenticate("carol", "carol-new-password") is not None
    sessions = _count(app, "SELECT COUNT(*) AS n FROM refresh_family WHERE user_id = %s"
                           " AND revoked_at IS NULL", (_row(app, "carol")["id"],))
    assert sessions == 0


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["set-password", "nobody"], "a-fine-password\n", "no user 'nobody'"),
    (["set-password", "carol"], "short\n", "password must be at least 8 characters"),
    (["set-password", "carol"], "\n", "password must be at least 8 characters"),
    (["set-password", "carol"], "password\n", "password is too common"),
    (["set-password"], "", "Missing argument 'USERNAME'"),
])
def test_set_password_refuses_bad_input(app, runner, make_user, args, stdin, message):
    make_user("carol", "carol-old-password")
    before = _row(app, "carol")
    result = runner.invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert _row(app, "carol") == before  # nothing changed, no token revoked


def test_set_admin_on_and_off_revokes_tokens(app, client, runner, make_user, login):
    make_user("carol", "carol-old-password")
    token = login("carol", "carol-old-password")
    result = runner.invoke(args=["set-admin", "carol", "--on"])
    assert result.exit_code == 0, result.output
    assert "carol is now an admin" in result.output
    row = _row(app, "carol")
    assert row["is_admin"] == 1 and row["token_version"] == 1
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 401

    result = runner.invoke(args=["set-admin", "carol", "--off"])
    assert result.exit_code == 0 and "no longer an admin" in result.output
    assert _row(app, "carol")["is_admin"] == 0 and _row(app, "carol")["token_version"] == 2


def test_set_admin_that_changes_nothing_revokes_nothing(app, runner, make_user):
    make_user("carol", "carol-old-password")
    result = runner.invoke(args=["set-admin", "carol", "--off"])
    assert result.exit_code == 0 and "already not an admin" in result.output
    assert _row(app, "carol")["token_version"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["set-admin", "carol"], "say --on or --off"),
    (["set-admin", "nobody", "--on"], "no user 'nobody'"),
    (["set-admin", "carol", "--maybe"], "No such option"),
])
def test_set_admin_refuses_bad_input(app, runner, make_user, args, message):
    make_user("carol", "carol-old-password")
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert _row(app, "carol")["is_admin"] == 0


def test_delete_user_removes_everything_they_own(app, client, runner, make_user, login):
    carol = make_user("carol", "carol-old-password")
    keep = make_user("dave", "dave-long-password")
    token = login("carol", "carol-old-password")
    headers = bearer(token)
    assert client.post(f"/users/{carol['id']}/posts", json={"title": "t", "body": "b"},
                       headers=headers).status_code == 201
    assert client.post("/authors", json={"name": "n", "book": "b", "country": "c"},
                       headers=headers).status_code == 201
    result = runner.invoke(args=["delete-user", "carol", "--yes"])
    assert result.exit_code == 0, result.output
    assert "deleted user carol" in result.output
    assert _row(app, "carol") is None and _row(app, "dave")["id"] == keep["id"]
    for table in ("post", "author", "refresh_family"):
        assert _count(app, f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = %s", (carol["id"],)) == 0
    assert client.get("/rest-auth", headers=headers).status_code == 401


def test_delete_user_asks_first(app, runner, make_user):
    make_user("carol", "carol-old-password")
    result = runner.invoke(args=["delete-user", "carol"], input="n\n")
    assert result.exit_code != 0
    assert "not deleted" in result.output
    assert _row(app, "carol") is not None
    result = runner.invoke(args=["delete-user", "carol"], input="y\n")
    assert result.exit_code == 0 and _row(app, "carol") is None


def test_delete_unknown_user_fails(runner):
    result = runner.invoke(args=["delete-user", "nobody", "--yes"])
    assert result.exit_code == 1
    assert "error: no user 'nobody'" in result.output


@pytest.mark.parametrize("args", [["set-password", "carol"], ["set-admin", "carol", "--on"],
                                  ["delete-user", "carol", "--yes"]])
def test_commands_explain_an_unreachable_database(make_app, args):
    result = make_app(DB_PORT=1).test_cli_runner().invoke(args=args, input="a-fine-password\n")
    assert result.exit_code == 1
    assert "cannot reach MySQL" in result.output and "docker compose up -d db" in result.output
