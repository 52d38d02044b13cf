"""The database itself: create it, load sql/schema.sql and sql/seed.sql, tell whether the schema is there.

Used by the CLI (init-db, seed, bootstrap), /readyz and the tests, so they
all load the same files the `mysql` CLI and the MySQL container load.
"""
import re
from pathlib import Path

from flask import current_app

import db

SQL_DIR = Path(__file__).resolve().parent / "sql"
# The tables sql/schema.sql creates: readiness needs every one of them.
TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS `?(\w+)`?",
                          (SQL_DIR / "schema.sql").read_text(), re.I))
COUNT_TABLES = (
    "SELECT COUNT(*) AS n FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name IN (" + ", ".join(["%s"] * len(TABLES)) + ")"
)
HAS_USER_TABLE = (
    "SELECT COUNT(*) AS n FROM information_schema.tables"
    " WHERE table_schema = DATABASE() AND table_name = 'user'"
)
# The database name comes from configuration, never from a request; it is still
# checked, since an identifier cannot be a query parameter.
_DB_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


class BadDatabaseName(ValueError):
    """DB_NAME is not letters, digits and underscores."""


def create_database(config=None):
    """CREATE DATABASE IF NOT EXISTS for the configured DB_NAME (utf8mb4); BadDatabaseName if unsafe."""
    config = config or current_app.config
    name = config["DB_NAME"]
    if not _DB_NAME.fullmatch(name):
        raise BadDatabaseName(f"DB_NAME {name!r} must be letters, digits and underscores")
    db.server_execute(
        config,
        f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )


def run_file(filename, config=None):
    """Run sql/<filename> against the configured database."""
    db.run_script(config or current_app.config, (SQL_DIR / filename).read_text())


def loaded():
    """True when every table of sql/schema.sql exists in the configured database (one query)."""
    return db.one(COUNT_TABLES, TABLES)["n"] == len(TABLES)


def has_users_table():
    """True if the configured database already has the user table (a first start has none)."""
    return bool(db.one(HAS_USER_TABLE)["n"])


def node_not_ready():
    """Why the database node behind this request must not serve (Galera: not Synced or not
    Primary), or None; see db.node_not_ready (which also moves the pool off such a node)."""
    return db.node_not_ready()
