"""The soak: minutes of mixed traffic from several processes, then every write read back.

    make soak                                   # 10 minutes, 4 client processes
    .venv/bin/python bench/soak.py --minutes 1 --clients 2

Creates its own database (dropped at the end) and starts the service exactly
as bench/run.py does (`python -m serving`, 4 workers, rate limiting off).
Each client process registers its own account, logs in, then loops over a
weighted mix: GET /rest-auth, a page of its posts (which must show the
client's own latest writes: it is their only writer), POST a post, GET one post,
PATCH a post with If-Match, POST /refresh (chaining the rotated token), and
now and then a fresh POST /auth. Afterwards each client reads back every post
the service acknowledged with a 201. Totals go to stdout; the exit status is
1 on any 5xx, any other unexpected answer, or any acknowledged write that
cannot be read back.
"""
import argparse
import collections
import multiprocessing
import random
import signal
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import jsonhttp  # noqa: E402
import run  # noqa: E402

PASSWORD = "soak-password-not-secret-9Lp"
MIX = [("rest_auth", 35), ("page", 20), ("create", 15), ("read", 10),
       ("update", 8), ("refresh", 10), ("login", 2)]


class Client:
    """One simulated user: its tokens, its posts, and what it was answered."""

    def __init__(self, url, name):
        self.url, self.name = url, name
        self.counts = collections.Counter()
        self.unexpected = []
        self.posts = {}  # id -> (title, etag) of every acknowledged write

    def send(self, kind, method, path, expect, token=None, body=None, headers=None):
        status, answer_headers, parsed = jsonhttp.call(method, self.url + path, token=token,
                                                       body=body, headers=headers)
        self.counts[(kind, status)] += 1
        if status not in expect:
            self.unexpected.append((kind, method, path, status, str(parsed)[:200]))
        return status, answer_headers, parsed

    def start(self):
        status, _, body = self.send("register", "POST", "/register", {201},
                                    body={"username": self.name, "password": PASSWORD})
        if status != 201:
            raise RuntimeError(f"register {self.name}: {status} {body}")
        self.uid = body["id"]
        self.login()

    def login(self):
        status, _, body = self.send("login", "POST", "/auth", {200},
                                    body={"username": self.name, "password": PASSWORD})
        if status == 200:
            self.access, self.refresh_token = body["access_token"], body["refresh_token"]

    def step(self, rng):
        kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        if kind in ("read", "update") and not self.posts:
            kind = "create"
        getattr(self, "do_" + kind)(rng)

    def do_login(self, rng):
        self.login()

    def do_rest_auth(self, rng):
        self.send("rest_auth", "GET", "/rest-auth", {200}, token=self.access)

    def do_page(self, rng):
        status, _, body = self.send("page", "GET", f"/users/{self.uid}/posts?limit=20", {200},
                                    token=self.access)
        if status == 200 and self.stale(body["posts"]):
            self.unexpected.append(("page", "GET", "stale page", status, str(body)[:200]))

    def stale(self, page):
        """True unless the page shows this client's own writes: it is their only writer.

        The newest post first, and every title as last acknowledged: the
        cache (rest/user_cache.py) must have forgotten the page at each write.
        """
        newest = max(self.posts, default=None)
        if (page[0]["id"] if page else None) != newest:
            return True
        return any(post["title"] != self.posts[post["id"]][0] for post in page)

    def do_create(self, rng):
        title = f"{self.name} post {rng.getrandbits(40):x}"
        status, headers, body = self.send("create", "POST", f"/users/{self.uid}/posts", {201},
                                          token=self.access, body={"title": title, "body": "soak"})
        if status == 201:
            self.posts[body["id"]] = (title, headers.get("ETag"))

    def do_read(self, rng):
        pid = rng.choice(list(self.posts))
        self.send("read", "GET", f"/users/{self.uid}/posts/{pid}", {200}, token=self.access)

    def do_update(self, rng):
        pid = rng.choice(list(self.posts))
        title, etag = self.posts[pid]
        new_title = title + "'"
        status, headers, _ = self.send(
            "update", "PATCH", f"/users/{self.uid}/posts/{pid}", {200}, token=self.access,
            body={"title": new_title[-200:]}, headers={"If-Match": etag} if etag else None)
        if status == 200:
            self.posts[pid] = (new_title[-200:], headers.get("ETag"))

    def do_refresh(self, rng):
        status, _, body = self.send("refresh", "POST", "/refresh", {200},
                                    body={"refresh_token": self.refresh_token})
        if status == 200:
            self.access, self.refresh_token = body["access_token"], body["refresh_token"]

    def verify(self):
        """Read back every acknowledged write; return the ids that are missing or wrong."""
        lost = []
        for pid, (title, _) in self.posts.items():
            status, _, body = jsonhttp.call("GET", f"{self.url}/users/{self.uid}/posts/{pid}",
                                            token=self.access)
            if status != 200 or body.get("title") != title:
                lost.append((pid, status))
        return lost


def client_process(url, name, seconds, seed, queue):
    """Run one client for `seconds`, verify its writes, put its totals on `queue`."""
    rng = random.Random(seed)
    client = Client(url, name)
    try:
        client.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            client.step(rng)
        lost = client.verify()
        queue.put({"name": name, "counts": dict(client.counts), "unexpected": client.unexpected,
                   "writes": len(client.posts), "lost": lost, "error": None})
    except Exception as exc:  # reported, never hidden: the run fails
        queue.put({"name": name, "counts": dict(client.counts), "unexpected": client.unexpected,
                   "writes": len(client.posts), "lost": [], "error": repr(exc)})


def main(argv=None):
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    parser = argparse.ArgumentParser(description="Mixed traffic for minutes; every write read back.")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4, help="client processes (4)")
    args = parser.parse_args(argv)
    with run.workspace("soak-") as (base, database, work):
        return _soak(args, base, database, work)


def _soak(args, base, database, work):
    service = run.start_ours("service", run.server_env(base, database), work)
    service.ready("/healthz")
    seconds = args.minutes * 60
    run.log(f"soak: {args.clients} clients for {args.minutes:g} min against {service.url}")
    queue = multiprocessing.Queue()
    children = [multiprocessing.Process(target=client_process,
                                        args=(service.url, f"soak{i}", seconds, i, queue))
                for i in range(args.clients)]
    began = time.monotonic()
    try:
        for child in children:
            child.start()
        reports = [queue.get(timeout=seconds + 600) for _ in children]
    finally:
        for child in children:  # by PID, whether they finished or not
            if child.pid is not None:
                child.join(timeout=30)
                if child.is_alive():
                    child.kill()
                    child.join(timeout=5)
    elapsed = time.monotonic() - began
    return report(reports, elapsed, service)


def report(reports, elapsed, service):
    totals = collections.Counter()
    for r in reports:
        totals.update({tuple(k) if isinstance(k, list) else k: v for k, v in r["counts"].items()})
    requests = sum(totals.values())
    print(f"\nsoak: {requests:,} requests in {elapsed:.0f} s ({requests / elapsed:,.1f} req/s)")
    for (kind, status), count in sorted(totals.items()):
        print(f"  {kind:10} {status}  {count:,}")
    fives = sum(v for (_, status), v in totals.items() if status >= 500)
    unexpected = [u for r in reports for u in r["unexpected"]]
    writes = sum(r["writes"] for r in reports)
    lost = [item for r in reports for item in r["lost"]]
    errors = [f"{r['name']}: {r['error']}" for r in reports if r["error"]]
    rss = service.worker_rss()
    print(f"acknowledged writes: {writes:,}; read back: {writes - len(lost):,}; lost: {len(lost)}")
    print(f"5xx: {fives}; other unexpected answers: {len(unexpected) - fives}")
    print(f"worker RSS (KiB) at the end: {rss}")
    for item in unexpected[:10]:
        print(f"  unexpected: {item}")
    for item in errors:
        print(f"  client error: {item}")
    failed = fives or unexpected or lost or errors
    print("soak: FAILED" if failed else "soak: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
