"""Operator commands: `flask --app app <command>`. Each exits non-zero on failure."""
import functools
import sys
from pathlib import Path

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
    """Exit 1 with what went wrong with the database, and the setting that fixes it."""
    config = current_app.config
    refusal = db.credentials_refused(exc)
    if refusal:
        _fail(
            f"the MySQL server at {config['DB_HOST']}:{config['DB_PORT']} refused the credentials "
            f"of DB_USER={config['DB_USER']!r} ({refusal}); "
            "set DB_USER and DB_PASSWORD in .env to an account of that server (for the "
            "docker compose database: MYSQL_USER and MYSQL_PASSWORD)."
        )
    _fail(
        f"cannot reach MySQL at {config['DB_HOST']}:{config['DB_PORT']} ({exc}); "
        "start one with `docker compose up -d db`, or set DB_HOST, DB_PORT, DB_USER "
        "and DB_PASSWORD in .env."
    )


def needs_database(command):
    """Run `command`; a database that cannot be reached ends it with one line saying what to do."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except db.DatabaseUnavailable as exc:
            _unreachable(exc)
    return wrapper


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
@needs_database
def init_db_command():
    """Create the database if needed and load sql/schema.sql (idempotent)."""
    create_database()
    schema.run_file("schema.sql")
    click.echo(f"schema loaded into {current_app.config['DB_NAME']}")


DEMO_REFUSED = (
    "APP_ENV=production: sql/seed.sql holds demo users whose passwords are published "
    "(admin/admin-demo-password); not loaded. Create your admin with "
    "`{flask} create-user --admin NAME`, or pass --demo-data to load the demo anyway"
)
NO_USERS_YET = "no users yet: create an admin with `{flask} create-user --admin NAME`"
demo_data_option = click.option(
    "--demo-data", is_flag=True,
    help="Load sql/seed.sql even under APP_ENV=production (its passwords are public).")


def flask_command():
    """How the user ran us (`.venv/bin/flask --app app` after make run), for a command to copy.

    A bare `flask` may be another environment's; the same path that just
    worked is the one to suggest.
    """
    program = sys.argv[0] if Path(sys.argv[0]).name == "flask" else "flask"
    return f"{program} --app app"


def demo_data_allowed(forced):
    """True when sql/seed.sql may be loaded: outside production, or when forced by --demo-data."""
    return forced or current_app.config["APP_ENV"] != "production"


@click.command("seed")
@with_appcontext
@needs_database
@demo_data_option
def seed_command(demo_data):
    """Load the demo data of sql/seed.sql (idempotent). Refused under production without --demo-data."""
    if not demo_data_allowed(demo_data):
        _fail(DEMO_REFUSED.format(flask=flask_command()))
    schema.run_file("seed.sql")
    click.echo("demo data loaded (users roy/roy and admin; see README)")


@click.command("bootstrap")
@with_appcontext
@needs_database
@demo_data_option
def bootstrap_command(demo_data):
    """Create the database and schema when missing, and the demo data too outside production (make run).

    Under APP_ENV=production a new database gets the schema only, so no account
    with a known password exists; the message says how to create the admin.
    """
    seed = demo_data_allowed(demo_data)
    create_database()
    fresh = not schema.has_users_table()
    schema.run_file("schema.sql")
    if fresh and seed:
        schema.run_file("seed.sql")
        click.echo("database ready (schema and demo data loaded)")
    elif fresh:
        click.echo("database ready (schema loaded; no demo data under APP_ENV=production)")
    else:
        click.echo("database ready")
    if not users.any_exist():
        click.echo(NO_USERS_YET.format(flask=flask_command()))


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the admin flag.")
@needs_database
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
    click.echo(f"created {'admin ' if admin else ''}user {username}")


@click.command("hash-password")
@with_appcontext
def hash_password_command():
    """Print an argon2id hash to paste into a mysql INSERT (password prompted or from stdin).

    The password must pass the rules the API applies (length, common
    passwords): a hash pasted into SQL is not checked again.
    """
    password = _read_password()
    problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
    if problem:
        _fail(f"password {problem}")
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
@needs_database
def set_password_command(username):
    """Give USERNAME a new password (prompted, or read from stdin); logs them out everywhere."""
    user = _existing_user(username)
    password = _read_password()
    problem = validation.password_problem(password, current_app.config["PASSWORD_MAX_LENGTH"])
    if problem:
        _fail(f"password {problem}")
    users.update(user["id"], password=password)  # logs them out everywhere
    click.echo(f"password of {username} changed; their tokens are revoked")


@click.command("set-admin")
@with_appcontext
@click.argument("username")
@click.option("--on/--off", "admin", default=None, help="Grant (--on) or remove (--off) the admin flag.")
@needs_database
def set_admin_command(username, admin):
    """Grant or remove USERNAME's admin flag; logs them out everywhere when it changes."""
    if admin is None:
        _fail("say --on or --off")
    user = _existing_user(username)
    if bool(user["is_admin"]) == admin:
        click.echo(f"{username} is already {'an admin' if admin else 'not an admin'}")
        return
    users.update(user["id"], admin=admin)  # logs them out everywhere
    click.echo(f"{username} is {'now an admin' if admin else 'no longer an admin'}; their tokens are revoked")


@click.command("delete-user")
@with_appcontext
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@needs_database
def delete_user_command(username, yes):
    """Delete USERNAME with their posts, authors and sessions, in one transaction."""
    user = _existing_user(username)
    if not yes and not click.confirm(f"Delete {username} and everything they own?"):
        _fail("not deleted")
    users.delete(user["id"])
    click.echo(f"deleted user {username}")


COMMANDS = [init_db_command, seed_command, bootstrap_command,
            create_user_command, hash_password_command,
            set_password_command, set_admin_command, delete_user_command]


def init_app(app):
    """Register the operator commands on the app's CLI."""
    import security_cli  # keys and purge-tokens

    for command in COMMANDS + security_cli.COMMANDS:
        app.cli.add_command(command)
