"""db.py's error classes against the real server: what is re-run, what never is.

- A deadlock victim's whole transaction is re-run by db.retrying() (and
  a single autocommit statement by db.execute()); past DB_WRITE_RETRIES it
  is WriteConflict, a 503 with its own message.
- A write whose connection is lost mid-statement is never re-run
  (OutcomeUnknown): the old pool re-ran it on a new connection.
- A read whose connection is lost is re-run once on a new connection.
- A pooled connection the server closed while idle is noticed before use.
"""
import threading
import time

import pymysql
import pytest
from flask import g

import db
from support import server_config


def _raw(database):
    """A connection of our own, outside the app's pool (the other party of a race)."""
    config = server_config(database)
    return pymysql.connect(host=config["DB_HOST"], port=config["DB_PORT"], user=config["DB_USER"],
                           password=config["DB_PASSWORD"], database=database, autocommit=True)


def _kill_later(database, connection_id, delay):
    def kill():
        time.sleep(delay)
        other = _raw(database)
        with other.cursor() as cur:
            cur.execute("KILL CONNECTION %s", (connection_id,))
        other.close()
    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_a_deadlock_victim_is_re_run_whole_and_commits(app, make_user, database):
    one, two = make_user("one")["id"], make_user("two")["id"]
    other = _raw(database)
    runs = []
    with other.cursor() as cur:
        cur.execute("BEGIN")
        # The other transaction writes more rows, so InnoDB picks ours as the victim.
        for n in range(20):
            cur.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'heavy', 'x')", (one,))
        cur.execute("UPDATE user SET is_admin = 1 WHERE id = %s", (one,))

    def close_the_cycle():
        time.sleep(0.5)
        with other.cursor() as cur:
            cur.execute("UPDATE user SET is_admin = 1 WHERE id = %s", (two,))  # waits for us: deadlock
            cur.execute("COMMIT")

    def block():
        runs.append(1)
        db.execute("UPDATE user SET token_version = token_version + 1 WHERE id = %s", (two,))
        db.execute("UPDATE user SET token_version = token_version + 1 WHERE id = %s", (one,))
        return "done"

    thread = threading.Thread(target=close_the_cycle)
    thread.start()
    with app.app_context():
        assert db.retrying(block) == "done"
    thread.join()
    other.close()
    assert len(runs) == 2, "the victim's block runs again, once"
    with app.app_context():
        rows = db.many("SELECT token_version, is_admin FROM user WHERE id IN (%s, %s) ORDER BY id", (one, two))
    assert rows == [{"token_version": 1, "is_admin": 1}, {"token_version": 1, "is_admin": 1}]


def test_past_the_bound_a_conflict_is_write_conflict_with_nothing_written(make_app, make_user, database):
    app = make_app(DB_WRITE_RETRIES=1)
    user = make_user("held")["id"]
    other = _raw(database)
    with other.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("UPDATE user SET is_admin = 1 WHERE id = %s", (user,))
    runs = []

    def block():
        runs.append(1)
        db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, 'lost', 'x')", (user,))
        db.execute("UPDATE user SET token_version = 5 WHERE id = %s", (user,))  # waits: 1205 after 1 s

    try:
        with app.app_context():
            db.execute("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(db.WriteConflict):
                db.retrying(block)
            db.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")
    finally:
        other.rollback()
        other.close()
    assert len(runs) == 2
    with app.app_context():
        assert db.one("SELECT COUNT(*) AS n FROM post")["n"] == 0
        assert db.one("SELECT token_version FROM user WHERE id = %s", (user,))["token_version"] == 0


def test_write_conflict_answers_503_with_its_own_message(make_app):
    app = make_app()

    @app.get("/conflict-for-test")
    def conflict():
        raise db.WriteConflict("test")

    response = app.test_client().get("/conflict-for-test")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(app.config["DB_RETRY_AFTER"])
    assert "concurrent writes" in response.get_json()["description"]
    assert "nothing was changed" in response.get_json()["description"]


def test_a_write_whose_connection_is_lost_is_never_re_run(app, make_user, database):
    user = make_user("slow")["id"]
    with app.app_context():
        connection_id = db.one("SELECT CONNECTION_ID() AS id")["id"]
        killer = _kill_later(database, connection_id, 0.3)
        with pytest.raises(db.OutcomeUnknown):
            db.execute("INSERT INTO post (user_id, title, body) "
                       "SELECT %s, 'once', 'x' FROM DUAL WHERE SLEEP(2) = 0", (user,))
        killer.join()
        # The killed statement wrote nothing, and nobody ran it again.
        assert db.one("SELECT COUNT(*) AS n FROM post")["n"] == 0
        assert db.one("SELECT CONNECTION_ID() AS id")["id"] != connection_id


def test_a_read_whose_connection_is_lost_is_re_run_once(app, database):
    with app.app_context():
        connection_id = db.one("SELECT CONNECTION_ID() AS id")["id"]
        killer = _kill_later(database, connection_id, 0.3)
        row = db.one("SELECT SLEEP(1) AS slept, CONNECTION_ID() AS id")
        killer.join()
    assert row["slept"] == 0 and row["id"] != connection_id


def test_an_idle_connection_the_server_closed_is_replaced_before_use(app, database):
    with app.app_context():
        connection_id = db.one("SELECT CONNECTION_ID() AS id")["id"]
    _kill_later(database, connection_id, 0).join()
    time.sleep(0.2)
    with app.app_context():
        # A write, which must not be re-run, still goes through: the dead link is never used.
        result = db.execute("DO 1")
        assert result.rowcount == 0
        assert g._db.thread_id() != connection_id


def test_several_hosts_skip_a_dead_one(make_app):
    config = server_config()
    app = make_app(DB_HOST=f"127.0.0.1:1,{config['DB_HOST']}:{config['DB_PORT']}")
    with app.app_context():
        assert db.one("SELECT 1 AS one") == {"one": 1}
        pool = app.extensions["db_pool"][1]
        assert ("127.0.0.1", 1) in pool._down_until


@pytest.mark.parametrize("value, expected", [
    ("h1", [("h1", 3306)]),
    ("h1:3307, h2", [("h1", 3307), ("h2", 3306)]),
    ("[::1]:3308,10.0.0.2:3309", [("::1", 3308), ("10.0.0.2", 3309)]),
])
def test_db_host_lists(value, expected):
    assert db.hosts({"DB_HOST": value, "DB_PORT": 3306}) == expected


@pytest.mark.parametrize("setting, expected", [("auto", 0), ("on", 1), ("off", 0)])
def test_causal_reads_follow_the_setting(make_app, setting, expected):
    """auto: on only when the server runs Galera (this one does not); on forces wsrep_sync_wait=1."""
    app = make_app(DB_CAUSAL_READS=setting)
    with app.app_context():
        assert db.one("SELECT @@SESSION.wsrep_sync_wait AS w")["w"] == expected


def test_a_server_without_galera_is_always_ready(app):
    with app.app_context():
        assert db.node_not_ready() is None


def test_with_no_retries_a_lost_read_is_still_re_run_once(make_app, database):
    app = make_app(DB_WRITE_RETRIES=0)
    with app.app_context():
        connection_id = db.one("SELECT CONNECTION_ID() AS id")["id"]
        killer = _kill_later(database, connection_id, 0.3)
        row = db.one("SELECT SLEEP(1) AS slept")
        killer.join()
    assert row == {"slept": 0}
