"""Security events: written for what happens to an account, read by the owner and admins, purged by the CLI."""

import db
from support import bearer, query

UA = {"User-Agent": "events-test/2.0", "X-Request-ID": "req-events-0001"}


def events_of(app, user_id=None):
    if user_id is None:
        return query(app, "SELECT user_id, kind, detail, ip, user_agent, request_id FROM security_event ORDER BY id")
    return query(app, "SELECT user_id, kind, detail, ip, user_agent, request_id FROM security_event"
                      " WHERE user_id = %s ORDER BY id", (user_id,))


def test_logins_succeeded_and_failed_with_the_reason_class_and_origin(client, app, make_user):
    alice = make_user("alice")
    assert client.post("/auth", json={"username": "alice", "password": "wrong-password-1"},
                       headers=UA).status_code == 401
    assert client.post("/auth", json={"username": "nobody", "password": "wrong-password-2"},
                       headers=UA).status_code == 401
    assert client.post("/login", json={"username": "alice", "password": alice["password"]},
                       headers=UA).status_code == 200
    rows = events_of(app)
    assert [(r["user_id"], r["kind"], r["detail"]) for r in rows] == [
        (alice["id"], "login_failed", "bad_password"),
        (None, "login_failed", "unknown_user"),
        (alice["id"], "login_succeeded", None),
    ]
    assert all(r["ip"] == "127.0.0.1" and r["user_agent"] == "events-test/2.0"
               and r["request_id"] == "req-events-0001" for r in rows)
    dump = repr(query(app, "SELECT * FROM security_event"))
    assert "wrong-password" not in dump and alice["password"] not in dump and "nobody" not in dump


def test_throttled_logins_are_recorded(make_app, make_user):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_FREE_FAILURES=1, RATELIMIT_LOGIN="100/minute",
                   RATELIMIT_LOGIN_PER_USER="100/minute")
    client = app.test_client()
    alice = make_user("alice")
    statuses = [client.post("/auth", json={"username": "alice", "password": "wrong-password-1"}).status_code
                for _ in range(3)]
    assert statuses[-1] == 429
    kinds = [r["kind"] for r in events_of(app, alice["id"])]
    assert "login_throttled" in kinds and kinds[0] == "login_failed"


def test_refresh_reuse_logout_all_password_admin_and_deletion(client, app, people):
    alice, admin = people.alice, people.admin
    tokens = client.post("/auth", json={"username": "alice", "password": alice.password}).get_json()
    assert client.post("/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 200
    with app.app_context():  # past the grace period: presenting the old token again is reuse
        db.execute("UPDATE refresh_family SET rotated_at = NOW() - INTERVAL 1 HOUR")
        db.close_db()
    assert client.post("/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    headers = bearer(client.post("/auth", json={"username": "alice", "password": alice.password})
                     .get_json()["access_token"])
    assert client.post("/logout-all", headers=headers).status_code == 204
    headers = bearer(client.post("/auth", json={"username": "alice", "password": alice.password})
                     .get_json()["access_token"])
    assert client.patch(f"/users/{alice.id}", headers=headers, json={
        "password": "a-new-passphrase-9", "current_password": alice.password}).status_code == 200
    assert client.patch(f"/users/{alice.id}", headers=admin.headers, json={"admin": True}).status_code == 200
    assert client.delete(f"/users/{alice.id}", headers=admin.headers).status_code == 204
    kinds = [(r["kind"], r["detail"]) for r in events_of(app, alice.id) if not r["kind"].startswith("login")]
    assert kinds == [("refresh_reuse", None), ("logout_all", None), ("password_changed", None),
                     ("admin_changed", "granted"), ("account_deleted", None)]
    # The history outlives the account, for the admins, without the username.
    page = client.get(f"/users/{alice.id}/events", headers=admin.headers).get_json()
    assert page["events"][0]["kind"] == "account_deleted"
    assert "alice" not in repr(query(app, "SELECT * FROM security_event"))


def test_the_owner_and_admins_read_an_account_s_events_newest_first_in_pages(client, app, people):
    alice = people.alice  # the fixture logged everyone in once
    for _ in range(4):
        client.post("/auth", json={"username": "alice", "password": "wrong-password-1"})
    first = client.get(f"/users/{alice.id}/events?limit=3", headers=alice.headers)
    assert first.status_code == 200
    body = first.get_json()
    assert [e["kind"] for e in body["events"]] == ["login_failed"] * 3 and body["next"]
    assert set(body["events"][0]) == {"id", "user_id", "kind", "detail", "ip", "user_agent",
                                      "request_id", "created"}
    ids = [e["id"] for e in body["events"]]
    assert ids == sorted(ids, reverse=True)
    rest = client.get(f"/users/{alice.id}/events?limit=3&cursor={body['next']}", headers=alice.headers).get_json()
    assert [e["kind"] for e in rest["events"]] == ["login_failed", "login_succeeded"] and rest["next"] is None
    assert rest["events"][0]["id"] < ids[-1]
    assert client.get(f"/users/{alice.id}/events", headers=people.bob.headers).status_code == 404
    assert client.get(f"/users/{alice.id}/events", headers=people.admin.headers).status_code == 200
    assert client.get(f"/users/{alice.id}/events").status_code == 401


def test_the_admin_wide_view(client, app, people):
    response = client.get("/events?kind=login_succeeded", headers=people.admin.headers)
    assert response.status_code == 200
    users = {e["user_id"] for e in response.get_json()["events"]}
    assert users == {people.alice.id, people.bob.id, people.admin.id}
    assert client.get("/events", headers=people.alice.headers).status_code == 403
    bad = client.get("/events?kind=nope", headers=people.admin.headers)
    assert bad.status_code == 400 and bad.get_json()["field"] == "kind"
    assert client.get("/events?cursor=!!", headers=people.admin.headers).status_code == 400


def test_purge_events_deletes_only_older_ones(app, runner, make_user):
    user = make_user("alice")
    with app.app_context():
        for days in (40, 31, 5):
            db.execute("INSERT INTO security_event (user_id, kind, created)"
                       " VALUES (%s, 'login_failed', NOW() - INTERVAL %s DAY)", (user["id"], days))
        db.close_db()
    result = runner.invoke(args=["purge-events", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 2 security events older than 30 days"
    assert len(events_of(app, user["id"])) == 1
    assert runner.invoke(args=["purge-events"]).exit_code != 0  # --older-than is required
    assert runner.invoke(args=["purge-events", "--older-than", "0"]).exit_code != 0


def test_cli_password_and_admin_changes_are_recorded(app, runner, make_user):
    user = make_user("alice")
    assert runner.invoke(args=["set-password", "alice"], input="cli-chosen-passphrase\ncli-chosen-passphrase\n"
                         ).exit_code == 0
    assert runner.invoke(args=["set-admin", "alice", "--on"]).exit_code == 0
    assert [(r["kind"], r["detail"], r["ip"]) for r in events_of(app, user["id"])] == [
        ("password_changed", None, None), ("admin_changed", "granted", None)]  # no address: the CLI


def test_login_events_written_in_the_background_arrive_with_the_request_s_time_and_origin(make_app, make_user):
    from accounts import events
    app = make_app(SECURITY_EVENTS_BACKGROUND=True)
    client = app.test_client()
    alice = make_user("alice")
    for _ in range(3):
        client.post("/auth", json={"username": "alice", "password": "wrong-password-1"}, headers=UA)
    assert client.post("/auth", json={"username": "alice", "password": alice["password"]},
                       headers=UA).status_code == 200
    with app.app_context():
        events.flush()
    rows = query(app, "SELECT kind, detail, ip, user_agent, request_id,"
                      " TIMESTAMPDIFF(SECOND, created, NOW()) AS age FROM security_event ORDER BY id")
    assert [(r["kind"], r["detail"]) for r in rows] == [("login_failed", "bad_password")] * 3 + [
        ("login_succeeded", None)]
    assert all(r["ip"] == "127.0.0.1" and r["user_agent"] == "events-test/2.0"
               and r["request_id"] == "req-events-0001" and 0 <= r["age"] <= 5 for r in rows)


def test_deliver_mail_runs_the_outbox_once(make_app, make_user):
    from mail_catcher import MailCatcher
    catcher = MailCatcher().start()
    try:
        app = make_app(MAIL_HOST="127.0.0.1", MAIL_PORT=catcher.port, MAIL_SECURITY="none")
        user = make_user("ivy")
        with app.app_context():
            db.execute("INSERT INTO user_email (user_id, email) VALUES (%s, 'ivy@example.test')", (user["id"],))
            db.close_db()
        assert app.test_client().post("/password/forgot", json={"username": "ivy"}).status_code == 202
        result = app.test_cli_runner().invoke(args=["deliver-mail"])
        assert result.exit_code == 0 and result.output == "processed 1 outbox rows\n"
        assert [m["rcpt"] for m in catcher.wait_for(1)] == [["ivy@example.test"]]
    finally:
        catcher.stop()


def test_a_full_event_queue_drops_rather_than_slowing_logins(app, caplog):
    import os
    import queue

    from accounts import events
    writer = events.BackgroundWriter(app)
    writer.pid, writer.rows = os.getpid(), queue.Queue(2)  # no thread: nothing drains it
    with caplog.at_level("WARNING", logger="accounts.events"):
        for _ in range(5):
            writer.put((None, (None, "login_failed", "unknown_user", None, None, None, None)))
    assert writer.rows.qsize() == 2 and writer.dropped == 3
    assert "queue full, 1 login events dropped so far" in caplog.text
