"""db.py against the real server: helpers, transactions, pooling, outage."""
import pytest

import db
from support import server_config


def test_one_many_execute(app, make_user):
    make_user("alice")
    make_user("bob")
    with app.app_context():
        assert db.one("SELECT username FROM user WHERE username = %s", ("alice",)) == {"username": "alice"}
        assert db.one("SELECT username FROM user WHERE username = %s", ("nobody",)) is None
        names = [r["username"] for r in db.many("SELECT username FROM user ORDER BY username")]
        assert names == ["alice", "bob"]
        result = db.execute("UPDATE user SET is_admin = 1 WHERE username = %s", ("bob",))
        assert result.rowcount == 1
        assert db.one("SELECT is_admin FROM user WHERE username = 'bob'")["is_admin"] == 1


def test_transaction_commits_all_or_nothing(app, make_user):
    user = make_user("alice")
    with app.app_context():
        with db.transaction():
            db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'a', 'b')", (user["id"],))
            db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'c', 'd')", (user["id"],))
        with pytest.raises(RuntimeError):
            with db.transaction():
                db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'e', 'f')", (user["id"],))
                raise RuntimeError("boom")
        titles = [r["title"] for r in db.many("SELECT title FROM post ORDER BY title")]
    assert titles == ["a", "c"]


def test_a_failed_statement_rolls_the_whole_transaction_back(app, make_user):
    user = make_user("alice")
    with app.app_context():
        with pytest.raises(db.IntegrityError) as caught:
            with db.transaction():
                db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'kept?', 'x')", (user["id"],))
                db.execute("INSERT INTO user (username, password) VALUES ('alice', 'x')")
        assert db.is_duplicate(caught.value)
        assert db.one("SELECT COUNT(*) AS n FROM post")["n"] == 0


def test_on_commit_runs_after_the_commit_and_sees_the_committed_row(app, make_user):
    user = make_user("alice")
    seen = []

    def count_from_another_connection():
        with app.app_context():  # a second connection: only committed rows are visible to it
            seen.append(db.one("SELECT COUNT(*) AS n FROM post WHERE user_id = %s", (user["id"],))["n"])
            db.close_db()

    with app.app_context():
        with db.transaction():
            db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'a', 'b')", (user["id"],))
            db.on_commit("count", count_from_another_connection)
            db.on_commit("count", count_from_another_connection)  # same key: runs once
            assert seen == []
        assert seen == [1]


def test_on_commit_actions_are_dropped_on_rollback(app):
    ran = []
    with app.app_context():
        with pytest.raises(RuntimeError):
            with db.transaction():
                db.on_commit("x", lambda: ran.append("x"))
                raise RuntimeError("boom")
        with db.transaction():
            pass
    assert ran == []


def test_on_commit_outside_a_transaction_runs_at_once(app):
    ran = []
    with app.app_context():
        db.on_commit("x", lambda: ran.append("x"))
        assert ran == ["x"]


def test_writes_outside_a_transaction_are_visible_to_other_connections(app, make_user):
    make_user("alice")
    with app.app_context():
        db.execute("UPDATE user SET is_admin = 1 WHERE username = 'alice'")
    # A fresh connection (not from the pool) sees the write: autocommit, nothing pending.
    other = db.server_execute(server_config(), "SELECT is_admin FROM `%s`.user" % app.config["DB_NAME"])
    assert other == [{"is_admin": 1}]


def test_a_request_borrows_one_connection_and_the_pool_reuses_it(app):
    ids = []
    for _ in range(3):
        with app.app_context():
            first = db.one("SELECT CONNECTION_ID() AS id")["id"]
            second = db.one("SELECT CONNECTION_ID() AS id")["id"]
            assert first == second
            ids.append(first)
    assert len(set(ids)) == 1, "teardown must return the connection to the pool"


def test_teardown_returns_the_connection(app):
    with app.app_context():
        from flask import g
        db.one("SELECT 1")
        assert g.get("_db") is not None
        db.close_db()
        assert g.get("_db") is None


def test_is_duplicate_only_for_unique_violations(app, make_user):
    make_user("alice")
    with app.app_context():
        with pytest.raises(db.IntegrityError) as dup:
            db.execute("INSERT INTO user (username, password) VALUES ('alice', 'x')")
        with pytest.raises(db.IntegrityError) as fk:
            db.execute("INSERT INTO post (user_id, title, body) VALUES (999999, 't', 'b')")
    assert db.is_duplicate(dup.value)
    assert not db.is_duplicate(fk.value)


def test_unreachable_server_raises_database_unavailable(make_app):
    app = make_app(DB_PORT=1, DB_CONNECT_TIMEOUT=1)
    with app.app_context():
        with pytest.raises(db.DatabaseUnavailable):
            db.one("SELECT 1")


def test_run_script_runs_every_statement(database):
    config = server_config(database)
    db.run_script(config, "CREATE TEMPORARY TABLE t (x INT); INSERT INTO t VALUES (1); -- done;\n")
    db.run_script(config, "SELECT 1; SELECT 2;")
    with pytest.raises(Exception):
        db.run_script(config, "SELECT 1; SELEKT 2;")


@pytest.mark.parametrize("mode, expected", [
    ("disabled", {"ssl_disabled": True}),
    ("required", {"ssl": {}, "ssl_verify_cert": False, "ssl_verify_identity": False}),
    ("verify-ca", {"ssl": {"ca": "/ca.pem"}, "ssl_verify_cert": True, "ssl_verify_identity": False}),
    ("verify-identity", {"ssl": {"ca": "/ca.pem"}, "ssl_verify_cert": True, "ssl_verify_identity": True}),
])
def test_tls_is_a_setting(mode, expected):
    config = server_config("x")
    config.update(DB_SSL_MODE=mode, DB_SSL_CA="" if mode == "required" else "/ca.pem")
    args = db.connect_args(config)
    for key, value in expected.items():
        assert args[key] == value
    if mode != "disabled":
        assert "ssl_disabled" not in args
    assert args["connect_timeout"] == 3 and args["read_timeout"] == 10 and args["write_timeout"] == 10
    assert args["autocommit"] is True and args["charset"] == "utf8mb4"
