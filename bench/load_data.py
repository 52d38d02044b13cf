"""Fill a database with users and posts, fast: batched multi-row INSERTs.

    .venv/bin/python bench/load_data.py DB_NAME --users 1000000 --posts 1000000

Tops the tables up to the requested counts (running it again adds nothing).
Users are `user0000001`, `user0000002`, ... (id n is `user{n:07d}` in a fresh
database), all with the password BENCH_PASSWORD and ONE precomputed argon2id
hash: hashing a million passwords would take hours. One post in ten belongs to
user 1, so user 1 has a long list to page through; the rest are spread over
every user. A progress bar goes to stderr. Server settings come from DB_HOST,
DB_PORT, DB_USER, DB_PASSWORD (environment or .env), as for the service.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402
import config as settings  # noqa: E402
import db  # noqa: E402
from accounts import passwords  # noqa: E402

BENCH_PASSWORD = "bench-password-not-secret"
BATCH = 2000
HEAVY_USER_SHARE = 10  # one post in ten is user 1's
POST_BODY = ("A post written by bench/load_data.py to give the pagination "
             "something to walk through; every row is the same size. ") * 2

COUNT_USERS = "SELECT COUNT(*) AS n FROM user"
COUNT_POSTS = "SELECT COUNT(*) AS n FROM post"
INSERT_USERS = "INSERT INTO user (username, password) VALUES "
INSERT_POSTS = "INSERT INTO post (user_id, title, body) VALUES "


def bench_app(database, base=None):
    """An app (never served) whose pool reaches `database`; for loading and inspecting it."""
    config = dict(base or settings.from_env())
    config.update({"DB_NAME": database, "DB_SSL_MODE": "disabled", "APP_ENV": "test",
                   "SECRET_KEY": "bench-loader-" + "x" * 40, "RATELIMIT_ENABLED": False})
    return app_module.create_app(config, env={})


class Progress:
    """A plain-text progress bar on stderr: one line, rewritten in place."""

    def __init__(self, label, start, total):
        self.label, self.start, self.total = label, start, total
        self.began = time.monotonic()
        self.shown = 0.0

    def update(self, done, final=False):
        now = time.monotonic()
        if not final and now - self.shown < 0.5:
            return
        self.shown = now
        span = max(self.total - self.start, 1)
        share = (done - self.start) / span
        rate = (done - self.start) / max(now - self.began, 1e-6)
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r  {self.label:5} [{bar:<30}] {share:6.1%} "
                         f"{done:>9,}/{self.total:,}  {rate:9,.0f} rows/s")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _insert_batches(prefix, placeholders, rows_for, start, total, label):
    """Insert rows start..total-1 (rows_for(i) gives row i's values) in BATCH-row statements."""
    progress = Progress(label, start, total)
    i = start
    while i < total:
        end = min(i + BATCH, total)
        params = []
        for n in range(i, end):
            params.extend(rows_for(n))
        with db.transaction():
            db.execute(prefix + ",".join([placeholders] * (end - i)), params)
        i = end
        if i < total:
            progress.update(i)
    progress.update(total, final=True)


def load(database, users, posts, base=None):
    """Top `database` up to `users` users and `posts` posts; return (users, posts) counts."""
    application = bench_app(database, base)
    password_hash = passwords.hash_password(BENCH_PASSWORD)
    try:
        with application.app_context():
            have_users = db.one(COUNT_USERS)["n"]
            if have_users < users:
                _insert_batches(INSERT_USERS, "(%s,%s)",
                                lambda n: (f"user{n + 1:07d}", password_hash),
                                have_users, users, "users")
            user_count = max(have_users, users)
            have_posts = db.one(COUNT_POSTS)["n"]
            if have_posts < posts:
                _insert_batches(INSERT_POSTS, "(%s,%s,%s)",
                                lambda n: (_post_owner(n, user_count), f"Post number {n + 1}", POST_BODY),
                                have_posts, posts, "posts")
            return user_count, max(have_posts, posts)
    finally:
        db.close_pool(application)


def _post_owner(n, user_count):
    """User 1 owns one post in ten; the others are spread over every user."""
    if n % HEAVY_USER_SHARE == 0:
        return 1
    return 1 + (n * 7919) % user_count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", help="an existing database with sql/schema.sql loaded")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    began = time.monotonic()
    users, posts = load(args.database, args.users, args.posts)
    print(f"{args.database}: {users:,} users, {posts:,} posts "
          f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
