"""What the security-event write costs a login, and POST /password/forgot for a known and an unknown account.

    .venv/bin/python bench/account_email.py [--rounds 10] [--per-round 20]

In process, through Flask's test client, on a database of its own (dropped at
the end). POST /auth is timed three ways in interleaved rounds of the same
run: login events written by the background writer (the default), written
inline in the request, and not written at all (the baseline: the event
functions replaced by a no-op). The event INSERT alone is timed too. Prints
medians in ms and the ratios to the baseline.
"""
import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402
import db  # noqa: E402
from accounts import events  # noqa: E402
from accounts import passwords  # noqa: E402

PASSWORD = "bench-passphrase-1"


def server_config(name=""):
    return {"DB_HOST": os.environ.get("TEST_DB_HOST", "127.0.0.1"),
            "DB_PORT": int(os.environ.get("TEST_DB_PORT", "3306")),
            "DB_USER": os.environ.get("TEST_DB_USER", "root"),
            "DB_PASSWORD": os.environ.get("TEST_DB_PASSWORD", ""),
            "DB_NAME": name, "DB_SSL_MODE": "disabled",
            "DB_CONNECT_TIMEOUT": 3, "DB_READ_TIMEOUT": 10, "DB_WRITE_TIMEOUT": 10}


def timed_ms(call, count):
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=20)
    args = parser.parse_args()
    name = f"bench_account_email_{os.getpid()}_{secrets.token_hex(3)}"
    db.server_execute(server_config(), f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        db.run_script(server_config(name), (ROOT / "sql" / "schema.sql").read_text())
        config = server_config(name)
        config.update(APP_ENV="test", SECRET_KEY="bench-" + "x" * 40, RATELIMIT_ENABLED=False,
                      ACCESS_LOG=False, TESTING=True)
        made = []

        def make_app(**overrides):
            made.append(app_module.create_app({**config, **overrides}, env={}))
            return made[-1]
        run(make_app, args)
        for application in made:
            db.close_pool(application)
    finally:
        db.server_execute(server_config(), f"DROP DATABASE IF EXISTS `{name}`")


def run(make_app, args):
    inline_app = make_app(SECURITY_EVENTS_BACKGROUND=False)
    background_app = make_app(SECURITY_EVENTS_BACKGROUND=True)
    with inline_app.app_context():
        user_id = db.execute("INSERT INTO user (username, password) VALUES ('bench', %s)",
                             (passwords.hash_password(PASSWORD),)).lastrowid
        db.execute("INSERT INTO user_email (user_id, email) VALUES (%s, 'bench@example.test')", (user_id,))
        db.close_db()

    def login(client):
        def call():
            assert client.post("/auth", json={"username": "bench", "password": PASSWORD}).status_code == 200
        return call

    inline, background = login(inline_app.test_client()), login(background_app.test_client())
    real = events.record, events.record_soon
    results = {"inline": [], "background": [], "none": []}
    inline(), background()  # warm up
    for _ in range(args.rounds):
        results["inline"] += timed_ms(inline, args.per_round)
        results["background"] += timed_ms(background, args.per_round)
        events.record = events.record_soon = lambda *a, **k: None
        try:
            results["none"] += timed_ms(inline, args.per_round)
        finally:
            events.record, events.record_soon = real
    with inline_app.test_request_context():
        insert = timed_ms(lambda: events.record("login_succeeded", user_id), args.rounds * args.per_round)
        db.close_db()
    with background_app.test_request_context():  # the request's share with the background writer
        queued = timed_ms(lambda: events.record_soon("login_succeeded", user_id), args.rounds * args.per_round)
        events.flush()
        db.close_db()

    client = inline_app.test_client()

    def forgot(name):
        return lambda: client.post("/password/forgot", json={"username": name})
    known, unknown = [], []
    for _ in range(args.rounds):
        known += timed_ms(forgot("bench"), args.per_round)
        unknown += timed_ms(forgot("nobody-by-this-name"), args.per_round)

    n = args.rounds * args.per_round
    med = statistics.median
    base = med(results["none"])
    print(f"POST /auth, medians of {n} (interleaved rounds, same run):")
    print(f"  no event write (baseline)   {base:.2f} ms")
    for name in ("background", "inline"):
        value = med(results[name])
        print(f"  event {name:<10} {value:.2f} ms  ratio {value / base:.3f}  ({value - base:+.2f} ms)")
    print(f"events.record() alone (one INSERT + commit), median of {n}: {med(insert):.3f} ms")
    print(f"events.record_soon() alone (queued for the writer), median of {n}: {med(queued) * 1000:.1f} us")
    print(f"POST /password/forgot, median of {n}: known account {med(known):.2f} ms, "
          f"unknown {med(unknown):.2f} ms (difference {med(known) - med(unknown):+.2f} ms)")


if __name__ == "__main__":
    main()
