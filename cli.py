"""Operator commands: `flask --app app <command>`. Each exits non-zero on failure."""
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

import db
import schema
from accounts import passwords, users, validation
from accounts.errors import Conflict


def _fail(message):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _unreachable(exc):
    config = current_app.config
    _fail(
        f"cannot reach MySQL at {config['DB_HOST']}:{config['DB_PORT']} ({exc}).\n"
        "Start one with `docker compose up -d db`, or set DB_HOST, DB_PORT, DB_USER "
        "and DB_PASSWORD in .env."
    )


def create_database():
    """CREATE DATABASE IF NOT EXISTS for the configured DB_NAME; exits 1 if the name is unsafe."""
    try:
        schema.create_database()
    except schema.BadDatabaseName as exc:
        _fail(str(exc))


def _read_password(confirm=True):
    """A password from the prompt, or the first line of stdin when it is not a terminal."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the database if needed and load sql/schema.sql (idempotent)."""
    try:
        create_database()
        schema.run_file("schema.sql")
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo(f"schema loaded into {current_app.config['DB_NAME']}")


@click.command("seed")
@with_appcontext
def seed_command():
    """Load the demo data of sql/seed.sql (idempotent). Never in production."""
    try:
        schema.run_file("seed.sql")
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo("demo data loaded (users roy/roy and admin; see README)")


@click.command("bootstrap")
@with_appcontext
def bootstrap_command():
    """Create the database, schema and demo data when they are missing (make run)."""
    try:
        create_database()
        fresh = not schema.has_users_table()
        schema.run_file("schema.sql")
        if fresh:
            schema.run_file("seed.sql")
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo("database ready" + (" (schema and demo data loaded)" if fresh else ""))


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the admin flag.")
def create_user_command(username, admin):
    """Create USERNAME; the password is prompted for, or read from stdin."""
    problem = validation.username_problem(username)
    if problem:
        _fail(f"username {problem}")
    password = _read_password()
    problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
    if problem:
        _fail(f"password {problem}")
    try:
        users.create(username, password, admin)
    except Conflict:
        _fail(f"user {username!r} already exists")
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo(f"created {'admin ' if admin else ''}user {username}")


@click.command("hash-password")
@with_appcontext
def hash_password_command():
    """Print an argon2id hash to paste into a mysql INSERT (password prompted or from stdin)."""
    password = _read_password()
    if not password:
        _fail("the password is empty")
    if len(password) > current_app.config["PASSWORD_MAX_LENGTH"]:
        _fail(f"the password is longer than {current_app.config['PASSWORD_MAX_LENGTH']} characters")
    click.echo(passwords.hash_password(password))


def _existing_user(username):
    """The row of USERNAME; exits 1 when there is none."""
    row = users.get_by_name(username)
    if row is None:
        _fail(f"no user {username!r}")
    return row


@click.command("set-password")
@with_appcontext
@click.argument("username")
def set_password_command(username):
    """Give USERNAME a new password (prompted, or read from stdin); logs them out everywhere."""
    try:
        user = _existing_user(username)
        password = _read_password()
        problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
        if problem:
            _fail(f"password {problem}")
        users.update(user["id"], password=password)  # logs them out everywhere
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo(f"password of {username} changed; their tokens are revoked")


@click.command("set-admin")
@with_appcontext
@click.argument("username")
@click.option("--on/--off", "admin", default=None, help="Grant (--on) or remove (--off) the admin flag.")
def set_admin_command(username, admin):
    """Grant or remove USERNAME's admin flag; logs them out everywhere when it changes."""
    if admin is None:
        _fail("say --on or --off")
    try:
        user = _existing_user(username)
        if bool(user["is_admin"]) == admin:
            click.echo(f"{username} is already {'an admin' if admin else 'not an admin'}")
            return
        users.update(user["id"], admin=admin)  # logs them out everywhere
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo(f"{username} is {'now an admin' if admin else 'no longer an admin'}; their tokens are revoked")


@click.command("delete-user")
@with_appcontext
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_user_command(username, yes):
    """Delete USERNAME with their posts, authors and sessions, in one transaction."""
    try:
        user = _existing_user(username)
        if not yes and not click.confirm(f"Delete {username} and everything they own?"):
            _fail("not deleted")
        users.delete(user["id"])
    except db.DatabaseUnavailable as exc:
        _unreachable(exc)
    click.echo(f"deleted user {username}")


COMMANDS = [init_db_command, seed_command, bootstrap_command,
            create_user_command, hash_password_command,
            set_password_command, set_admin_command, delete_user_command]


def init_app(app):
    """Register the operator commands on the app's CLI."""
    import security_cli  # keys and purge-tokens

    for command in COMMANDS + security_cli.COMMANDS:
        app.cli.add_command(command)
