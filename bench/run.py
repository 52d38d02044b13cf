"""The benchmark: the service against bare Flask on gunicorn, on our own server, and the peers, in one run.

    make bench                               # 3 rounds of 10 s, memory check
    .venv/bin/python bench/run.py --quick    # 3 rounds of 2 s, no memory check
    .venv/bin/python bench/run.py --scale    # also 10 k vs 1 M rows (loads 1 M; minutes)
    .venv/bin/python bench/run.py --cluster  # a 3-node Galera cluster, causal reads on/off (bench/cluster.py)
    .venv/bin/python bench/run.py --peers none                # without the peers
    .venv/bin/python bench/run.py --peers fastapi,fastapi-users  # only those peers

It creates its own database (dropped at the end) and starts, each with 4
workers on the loopback, the service as deployed (`python -m serving`:
granian and our RSGI bridge, access log on) and two baselines of the same
bare Flask app (bench/hello.py): "hello" on gunicorn's sync workers, the
ceiling every Flask user knows and the one every target divides by, and
"hello-served" under `python -m serving bench.hello:app`, our own server's
ceiling. wrk loads them (32 connections). Rounds are interleaved (hello,
hello-served, every endpoint, ..., a closing hello and hello-served), so each
endpoint's ratios compare it with baselines measured minutes apart at most,
on the same machine state. The peers (bench/peers: bare FastAPI,
Flask-JWT-Extended, fastapi-users, DRF + SimpleJWT, each with 4 workers and a
database of its own) are measured in the same rounds, right after our GET
/rest-auth. Every response's status is checked by the wrk script: any non-2xx
answer fails the run. Results: a table on stdout and
bench/results/<UTC timestamp>.json. The exit status is 0 only when every
target (TARGETS: issue 17's item 5) is met.
"""
import argparse
import base64
import concurrent.futures
import contextlib
import datetime
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))  # dpop_client, the documented DPoP client

import config as settings  # noqa: E402
import db  # noqa: E402
import jsonhttp  # noqa: E402
import load_data  # noqa: E402
import peers  # noqa: E402
import procs  # noqa: E402
from accounts import passwords  # noqa: E402
from rest import pagination  # noqa: E402

WORKERS = 4
CONNECTIONS = 32
THREADS = 2
PAGE = 20
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"
BASE_USERS = 1000           # the normal run's data: user 1 has ~100 posts
BASE_POSTS = 1000
SCALE_SMALL = 10_000
SCALE_LARGE = 1_000_000
REFRESH_CHAINS = 2 * CONNECTIONS  # families minted per refresh round (>= connections)
# GET /rest-auth with a DPoP-bound token spends one signed proof per request:
# the bench signs this many per second of a run (more after a faster run).
DPOP_START_RATE = 2000

# Issue 17, item 5. "hello" is bare Flask on gunicorn sync x 4 (start_hello).
TARGETS = {
    "rest_auth_ratio": 1.5,       # GET /rest-auth >= 1.5 x hello
    "posts_page_ratio": 1.2,      # GET /users/<id>/posts >= 1.2 x hello
    "auth_ceiling_ratio": 0.9,    # POST /auth >= 0.9 x (cores / one verify): hash_ceiling()
    "rest_auth_p99_ratio": 2.0,   # p99(/rest-auth) <= 2 x p99(hello)
    "scale_tolerance": 0.10,      # every figure at 1 M within 10 % of 10 k
    "last_page_ratio": 1.2,       # last page within 1.2 x the first
    "memory_growth": 0.10,        # worker RSS after 100 k requests within 10 % of after 10 k: flat
    # Against the peers measured in the same round (when they run):
    "fastapi_ratio": 0.8,         # GET /rest-auth >= 0.8 x bare FastAPI's /hello (uvicorn workers)
    "fastapi_users_ratio": 10.0,  # GET /rest-auth >= 10 x fastapi-users' /rest-auth
}

# The baselines, measured at the start of every round and once at the end:
# bare Flask on gunicorn sync (every target's "hello") and the same app on
# our server (no target: the distance to our own server's ceiling).
BASELINES = ("hello", "hello_served")

# The peers (bench/peers), as the tables name them: (short, long).
PEER_PREFIX = "peer_"
PEER_LABELS = {
    "fastapi": ("peer: bare FastAPI GET /hello", "bare FastAPI, uvicorn workers (uvloop, httptools)"),
    "flask-jwt-extended": ("peer: Flask-JWT-Ext. /rest-auth", "Flask-JWT-Extended + DBUtils pool, gunicorn sync"),
    "fastapi-users": ("peer: fastapi-users /rest-auth", "FastAPI + fastapi-users (SQLAlchemy async, aiomysql), uvicorn"),
    "drf-simplejwt": ("peer: DRF+SimpleJWT /rest-auth", "DRF + SimpleJWT (mysqlclient, persistent connections), gunicorn sync"),
}


def log(message):
    """Progress goes to stderr; the report goes to stdout."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- the database ---------------------------------------------------------------

def create_database(base):
    """Create bench_jwtapi_<pid>_<hex> with the schema; return its name."""
    name = f"bench_jwtapi_{os.getpid()}_{secrets.token_hex(3)}"
    db.server_execute(base, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    config = dict(base, DB_NAME=name)
    db.run_script(config, (ROOT / "sql" / "schema.sql").read_text())
    return name


def drop_database(base, name):
    db.server_execute(base, f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def workspace(prefix):
    """(base settings, a new database, a scratch folder) for one bench script.

    On the way out, whatever happens: every process the script started is
    stopped by PID, the database dropped, the folder removed.
    """
    base = settings.from_env()
    base.update({"DB_NAME": "", "DB_SSL_MODE": "disabled"})
    database = create_database(base)
    log(f"database {database}")
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield base, database, work
    finally:
        procs.stop_all()
        drop_database(base, database)
        for leftover in Path(work).iterdir():
            leftover.unlink()
        os.rmdir(work)
        log("stopped every process started, dropped the database")


# --- the servers -----------------------------------------------------------------

SERVICE = "app:create_app()"


class Server:
    """One server started by the bench: its URL and master process.

    The service runs as deployed (`python -m serving`); another app_spec is
    bare Flask on gunicorn's sync workers, the baseline every Flask user
    knows, unless `served=True` serves it through `python -m serving` too.
    """

    def __init__(self, name, app_spec, env, log_dir, served=False):
        self.name = name
        self.port = procs.free_port()
        self.url = f"http://{procs.HOST}:{self.port}"
        address = f"{procs.HOST}:{self.port}"
        if app_spec == SERVICE or served:
            args = [str(procs.VENV_BIN / "python"), "-m", "serving", *([] if app_spec == SERVICE else [app_spec])]
            env = dict(env, SERVER_BIND=address, SERVER_WORKERS=str(WORKERS))
        else:
            args = [str(procs.VENV_BIN / "gunicorn"), "--bind", address, "--workers", str(WORKERS), app_spec]
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process = procs.start(args, env, self.log_path)

    def ready(self, path):
        try:
            procs.wait_http(self.url + path, self.process)
        except RuntimeError as exc:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from None

    def worker_rss(self):
        """{pid: VmRSS KiB} of each worker: the master's children (gunicorn's, or granian's forked ones)."""
        return {pid: procs.rss_kib(pid) for pid in procs.children(self.process.pid)}


def start_ours(name, env, work):
    """OUR service, started as deployed: the one place that says how (every bench script comes here).

    The serving stack may change (issue 17); the baseline (start_hello) and the
    peers (bench/peers) do not follow it.
    """
    return Server(name, "app:create_app()", env, work)


def start_hello(env, work):
    """The baseline every target divides by: bare Flask (bench/hello.py), gunicorn sync, 4 workers."""
    hello = Server("hello", "bench.hello:app", env, work)
    hello.ready("/hello")
    return hello


def start_hello_served(env, work):
    """The second baseline: the same bare Flask app under our server (`python -m serving bench.hello:app`), 4 workers."""
    served = Server("hello-served", "bench.hello:app", env, work, served=True)
    served.ready("/hello")
    return served


def start_services(env, work, suffix=""):
    """The service and its cache-off twin (CACHE_SECONDS=0), both answering; returns (service, twin)."""
    service = start_ours(f"service{suffix}", env, work)
    uncached = start_ours(f"service-uncached{suffix}", dict(env, CACHE_SECONDS="0"), work)
    for server in (service, uncached):
        server.ready("/rest-auth")
    return service, uncached


def logged_in(ctx):
    """`ctx` with the bench users' access tokens (user 1 reads, user 2 writes)."""
    ctx.access_token = ctx.login()["access_token"]
    ctx.writer_token = ctx.login(f"user{ctx.writer_id:07d}")["access_token"]
    with_pat_and_dpop(ctx)
    return ctx


def with_pat_and_dpop(ctx):
    """A personal access token and a DPoP-bound access token for user 1, when the service has them."""
    status, _, body = jsonhttp.call("POST", ctx.service.url + "/tokens", token=ctx.access_token,
                                    body={"name": f"bench-{secrets.token_hex(4)}", "scopes": ["posts:read"]})
    if status != 201:
        return  # a checkout without /tokens: rest_auth_pat and rest_auth_dpop are skipped
    ctx.pat = body["token"]
    from dpop_client import DPoPKey
    ctx.dpop_key = DPoPKey()
    url = ctx.service.url + "/auth"
    status, _, body = jsonhttp.call("POST", url, body={"username": ctx.username,
                                                       "password": load_data.BENCH_PASSWORD},
                                    headers={"DPoP": ctx.dpop_key.proof("POST", url)})
    if status != 200 or body.get("token_type") != "DPoP":
        raise RuntimeError(f"POST /auth with a DPoP proof answered {status}: {body}")
    ctx.dpop_token = body["access_token"]


def server_env(base, database):
    """The environment both servers get: identical, except what only the service reads."""
    # Nothing from the shell or .env that the service reads: only what is set here.
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    env = {k: v for k, v in os.environ.items()
           if k not in documented and not k.startswith(("DB_", "SERVER_", "RATELIMIT_", "JWT_"))}
    env.update({
        "PYTHON_DOTENV_DISABLED": "1",
        "APP_ENV": "production", "FLASK_DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MFA_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DB_HOST": base["DB_HOST"], "DB_PORT": str(base["DB_PORT"]),
        "DB_USER": base["DB_USER"], "DB_PASSWORD": base["DB_PASSWORD"],
        "DB_NAME": database, "DB_SSL_MODE": "disabled",
        # The bench measures the service, not the limiter refusing it.
        "RATELIMIT_ENABLED": "false",
        # Long enough for every round; the bench never waits for expiry.
        "JWT_ACCESS_TTL": "7200",
        # As deployed (docker-compose.yml): the identity cache on, announced
        # through Redis. `--env REDIS_URL=` measures the MySQL-per-request mode.
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


# --- wrk --------------------------------------------------------------------------

def wrk(url, duration, script="static.lua", env=None, args=()):
    """Run wrk against `url` for `duration` seconds; return the BENCH_RESULT dict plus req_s."""
    run_env = dict(os.environ)
    run_env.update(env or {})
    duration = max(1, round(duration))  # wrk takes whole seconds
    timeout_s = 30  # per request; wrk sizes its latency histogram by it
    command = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{duration}s",
               "--timeout", f"{timeout_s}s", "-s", script, url]
    if args:
        command += ["--", *args]
    done = subprocess.run(command, cwd=LUA_DIR, env=run_env, capture_output=True,
                          text=True, timeout=duration + timeout_s + 30)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT "):])
            seconds = result["duration_us"] / 1e6
            result["req_s"] = result["requests"] / seconds if seconds else 0.0
            return result
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


# --- endpoints ----------------------------------------------------------------------

class Context:
    """What the endpoints need: servers, tokens, the bench user."""

    def __init__(self, hello, service, token_dir, uncached=None, peers=None, hello_served=None):
        self.hello = hello
        self.hello_served = hello_served  # None: that baseline is not measured (--scale, --cluster)
        self.service = service
        self.peers = peers or {}  # {name: bench.peers.Peer}, measured beside our /rest-auth
        # The same service with its cache off (CACHE_SECONDS=0): every read goes to MySQL.
        self.uncached = uncached or service
        self.token_dir = Path(token_dir)
        self.user_id = 1
        self.username = "user0000001"
        self.access_token = None
        # POST posts writes as user 2, so user 1's page reads the same rows every round.
        self.writer_id = 2
        self.writer_token = None
        self.pat = None           # a personal access token of user 1 (posts:read)
        self.dpop_key = None      # user 1's DPoP key pair and the access token bound to it
        self.dpop_token = None
        self.dpop_rate = DPOP_START_RATE

    def login(self, username=None):
        """POST /auth as the bench user (or `username`); return the JSON body (asserting 200)."""
        status, _, body = jsonhttp.call("POST", self.service.url + "/auth",
                                        body={"username": username or self.username,
                                              "password": load_data.BENCH_PASSWORD})
        if status != 200:
            raise RuntimeError(f"POST /auth answered {status}: {body}")
        return body


def _static(ctx, path, method="GET", token="access_token", body=None, server="service"):
    def run(duration):
        env = {"BENCH_METHOD": method}
        if token:
            env["BENCH_TOKEN"] = getattr(ctx, token)
        if body is not None:
            env["BENCH_BODY"] = json.dumps(body)
        target = {"hello": ctx.hello, "hello_served": ctx.hello_served,
                  "service": ctx.service, "uncached": ctx.uncached}[server]
        return wrk(target.url + path, duration, env=env)
    return run


def _peer(ctx, name):
    """GET a peer's measured path (its /rest-auth with the token from its own login, or /hello)."""
    def run(duration):
        peer = ctx.peers[name]
        return wrk(peer.url + peer.path, duration, env={"BENCH_METHOD": "GET", "BENCH_TOKEN": peer.token or ""})
    return run


def peer_endpoint(name):
    """The endpoint name of peer `name` in the rounds and the results: peer_fastapi_users, ..."""
    return PEER_PREFIX + name.replace("-", "_")


def is_peer(endpoint):
    return endpoint.startswith(PEER_PREFIX)


def _refresh(ctx):
    """POST /refresh: each wrk connection chains the refresh token each answer returns."""
    def run(duration):
        # Rotation is single use: mint fresh families for every round, one
        # chain per slot; refresh.lua hands each thread its share.
        path = ctx.token_dir / f"refresh-{time.monotonic_ns()}.txt"
        path.write_text("\n".join(mint_refresh_tokens(ctx, REFRESH_CHAINS)) + "\n")
        try:
            return wrk(ctx.service.url + "/refresh", duration, script="refresh.lua",
                       args=(str(path), str(THREADS)))
        finally:
            path.unlink()
    return run


def _dpop(ctx, path):
    """GET `path` with the DPoP-bound token: one fresh proof per request, signed before the run."""
    def run(duration):
        url = ctx.service.url + path
        count = int(ctx.dpop_rate * (round(duration) + 1) * 1.5)
        proofs = ctx.token_dir / f"dpop-{time.monotonic_ns()}.txt"
        proofs.write_text("\n".join(ctx.dpop_key.proof("GET", url, access_token=ctx.dpop_token)
                                    for _ in range(count)) + "\n")
        try:
            result = wrk(url, duration, script="dpop.lua", env={"BENCH_TOKEN": ctx.dpop_token},
                         args=(str(proofs), str(THREADS)))
        finally:
            proofs.unlink()
        ctx.dpop_rate = max(ctx.dpop_rate, result["req_s"])
        return result
    return run


def mint_refresh_tokens(ctx, count):
    """Log in `count` times (one refresh family each); return the refresh tokens."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
        bodies = list(pool.map(lambda _: ctx.login(), range(count)))
    if any("refresh_token" not in body for body in bodies):
        raise RuntimeError("POST /auth returned no refresh_token")
    return [body["refresh_token"] for body in bodies]


def endpoints(ctx):
    """name -> (description, run(duration)), in the order of a round."""
    uid = ctx.user_id
    ours = {
        "hello": ("GET /hello (bare Flask, gunicorn)", _static(ctx, "/hello", token=False, server="hello")),
        "hello_served": ("GET /hello (bare Flask, our server)",
                         _static(ctx, "/hello", token=False, server="hello_served")),
        # Diagnostic, no target: the service's own floor (its hooks, no token, no database).
        "public": ("GET /public (no token, no DB)", _static(ctx, "/public", token=False)),
        "rest_auth": ("GET /rest-auth", _static(ctx, "/rest-auth")),
        # The same resource with the two other kinds of token: a personal access
        # token (a hash lookup and throttled last-use) and a DPoP-bound token
        # (a proof verified and its jti claimed in Redis, every request).
        "rest_auth_pat": ("GET /rest-auth, personal token", _static(ctx, "/rest-auth", token="pat")),
        "rest_auth_dpop": ("GET /rest-auth, DPoP-bound", _dpop(ctx, "/rest-auth")),
        "posts_page": (f"GET /users/{uid}/posts (page of {PAGE})",
                       _static(ctx, f"/users/{uid}/posts?limit={PAGE}")),
        # Diagnostics, no target: the same two reads with the cache off, so
        # MySQL answers every one (the figures without Redis, or on a miss).
        "rest_auth_db": ("GET /rest-auth, cache off", _static(ctx, "/rest-auth", server="uncached")),
        "posts_page_db": ("GET posts page, cache off",
                          _static(ctx, f"/users/{uid}/posts?limit={PAGE}", server="uncached")),
        "posts_create": (f"POST /users/{ctx.writer_id}/posts",
                         _static(ctx, f"/users/{ctx.writer_id}/posts", method="POST",
                                 token="writer_token",
                                 body={"title": "Bench post", "body": "Written by bench/run.py."})),
        "auth": ("POST /auth", _static(ctx, "/auth", method="POST", token=False,
                                       body={"username": ctx.username,
                                             "password": load_data.BENCH_PASSWORD})),
        "refresh": ("POST /refresh", _refresh(ctx)),
    }
    # The peers right after our GET /rest-auth, so that "ours ÷ peer" compares
    # measurements seconds apart, not minutes.
    if ctx.hello_served is None:
        del ours["hello_served"]
    found = {}
    for name, entry in ours.items():
        found[name] = entry
        if name == "rest_auth":
            found.update({peer_endpoint(p): (PEER_LABELS[p][0], _peer(ctx, p)) for p in ctx.peers})
    return found


def available(ctx, name):
    """True if the service has this endpoint yet (probe once; the bench runs on any checkout)."""
    probes = {
        "posts_page": ("GET", f"/users/{ctx.user_id}/posts?limit={PAGE}", None),
        "posts_create": ("GET", f"/users/{ctx.writer_id}/posts", None),
        "refresh": ("POST", "/refresh", {}),
    }
    if name in ("rest_auth_pat", "rest_auth_dpop"):
        return ctx.pat is not None
    if name not in probes:
        return True
    method, path, body = probes[name]
    token = ctx.writer_token if name == "posts_create" else ctx.access_token
    status, _, _ = jsonhttp.call(method, ctx.service.url + path, token=token, body=body)
    if name == "refresh" and status in (404, 405):
        return False
    if name == "refresh":
        return "refresh_token" in ctx.login()
    return status != 404


# --- measuring ----------------------------------------------------------------------

def _verify_rate(seconds):
    """Verifies per second of one process doing nothing else for `seconds` (a pool worker)."""
    stored = passwords.hash_password(load_data.BENCH_PASSWORD)
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        passwords.verify_password(stored, load_data.BENCH_PASSWORD)
        count += 1
    return count / (time.perf_counter() - began)


def hash_ceiling(seconds=1.5):
    """POST /auth's hash-bound ceiling: argon2id verifies per second with every core verifying.

    That is cores / one verify, with the verify timed while every core
    verifies: a verify timed alone runs at the clock one busy core gets, and
    memory-hard hashing on every core shares the caches and the memory bus,
    so cores / (a verify timed alone) is not a rate this machine can reach.
    Forked processes, not threads: nothing else of ours runs meanwhile.
    """
    with multiprocessing.get_context("fork").Pool(cores()) as pool:
        return sum(pool.map(_verify_rate, [seconds] * cores()))


def cores():
    return len(os.sched_getaffinity(0))


def run_rounds(contexts, names, rounds, duration):
    """Interleaved rounds: the baselines, then each endpoint on every context in turn, ..., closing baselines.

    `contexts` is {label: Context}: one service, or (--scale) the same service
    on two databases, measured back to back (first one, then the other, then
    the other way round) so that both see the same machine. Returns {label: {name: [result per round]}}; every label shares
    the baselines' lists (hello, and hello_served when the first context has
    it: rounds + 1 results each, as an endpoint's ratio in round r uses the
    mean of the two measured around it) and a "ceiling" list: POST /auth's
    hash-bound ceiling (hash_ceiling), the mean of one measured just before
    and one just after that round's POST /auth, because the machine's speed
    drifts between minutes.
    """
    first = endpoints(next(iter(contexts.values())))
    baselines = {name: first[name][1] for name in BASELINES if name in first}
    shared = dict({name: [] for name in baselines}, ceiling=[])
    results = {label: dict(shared, **{name: [] for name in names}) for label in contexts}
    runs = {label: endpoints(ctx) for label, ctx in contexts.items()}
    for r in range(rounds):
        for name, baseline in baselines.items():
            _record(shared[name], baseline(duration), f"round {r + 1}/{rounds} {name}")
        # Alternate which context goes first, so that neither always follows
        # the same load (the machine is slower right after a busy minute).
        order = list(contexts) if r % 2 == 0 else list(reversed(contexts))
        for name in names:
            before = hash_ceiling() if name == "auth" else None
            for label in order:
                _record(results[label][name], runs[label][name][1](duration),
                        f"round {r + 1}/{rounds} {name}{f' @ {label:,}' if isinstance(label, int) else f' @ {label}' if len(contexts) > 1 else ''}")
            if before is not None:  # bracketed, like hello
                shared["ceiling"].append((before + hash_ceiling()) / 2)
    for name, baseline in baselines.items():
        _record(shared[name], baseline(duration), f"closing   {name}")
    return results


def _record(sink, result, what):
    sink.append(result)
    log(f"{what:36} {result['req_s']:9.1f} req/s  p99 {result['p99_us'] / 1000:7.1f} ms  "
        f"non-2xx {result['non2xx']}")


def _bracket(runs, key, rounds):
    """Per round, the mean of `key` in the two baseline runs around it."""
    return [(runs[r][key] + runs[r + 1][key]) / 2 for r in range(rounds)]


def summarize(results, rounds):
    """Medians, min-max and per-round ratios to hello (and to hello_served, when measured) for every endpoint.

    hello_served's own ratio to hello is per pair: each of its runs divided
    by the hello run just before it, seconds apart (rounds + 1 values).
    """
    hello = results["hello"]
    bracket = _bracket(hello, "req_s", rounds)
    hello_p99 = _bracket(hello, "p99_us", rounds)
    served = results.get("hello_served")
    served_bracket = _bracket(served, "req_s", rounds) if served else None
    summary = {}
    for name, runs in results.items():
        if name == "ceiling":
            continue
        rates = [run["req_s"] for run in runs]
        entry = {
            "req_s": _stats(rates),
            "p99_ms": _stats([run["p99_us"] / 1000 for run in runs]),
            "non2xx": sum(run["non2xx"] for run in runs),
            "socket_errors": sum(run["connect_errors"] + run["read_errors"] + run["write_errors"]
                                 + run["timeouts"] for run in runs),
            "requests": sum(run["requests"] for run in runs),
            "first_bad": next(({"status": run["first_bad_status"], "body": run["first_bad_body"]}
                               for run in runs if run["first_bad_status"]), None),
        }
        if name == "hello_served":
            entry["ratio"] = _stats([run["req_s"] / h["req_s"] for run, h in zip(runs, hello)])
            entry["p99_ratio"] = _stats([run["p99_us"] / h["p99_us"] for run, h in zip(runs, hello)])
        elif name != "hello":
            entry["ratio"] = _stats([rates[r] / bracket[r] for r in range(rounds)])
            entry["p99_ratio"] = _stats([runs[r]["p99_us"] / hello_p99[r] for r in range(rounds)])
            if served:
                entry["served_ratio"] = _stats([rates[r] / served_bracket[r] for r in range(rounds)])
        if is_peer(name) and "rest_auth" in results:
            ours = [run["req_s"] for run in results["rest_auth"]]
            entry["ours_over"] = _stats([ours[r] / rates[r] for r in range(rounds)])
        if name in BEARER_COMPARED and "rest_auth" in results:
            bearer = [run["req_s"] for run in results["rest_auth"]]
            entry["bearer_ratio"] = _stats([rates[r] / bearer[r] for r in range(rounds)])
        if name == "auth":
            ceilings = results["ceiling"]
            entry["ceiling_req_s"] = _stats(ceilings)
            entry["ceiling_ratio"] = _stats([rates[r] / ceilings[r] for r in range(rounds)])
        summary[name] = entry
    return summary


# Compared with plain GET /rest-auth (a bearer JWT) of the same round as well as with hello.
BEARER_COMPARED = ("rest_auth_pat", "rest_auth_dpop")


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def measure_memory(ctx, env, work, total=100_000, checkpoint=10_000):
    """Worker RSS of a fresh service after `checkpoint` and after `total` requests.

    The traffic is a mix of GET /rest-auth, the page of posts and POST posts
    (a third each). The fresh instance makes the counts exact: the rounds
    before have already sent their own requests to the measured service.
    """
    service = start_ours("service-memory", env, work)
    service.ready("/rest-auth")
    probe = Context(ctx.hello, service, work)
    probe.access_token, probe.writer_token = ctx.access_token, ctx.writer_token
    log(f"memory: {checkpoint:,} requests to a fresh service, then up to {total:,}")
    sent = _mixed(probe, checkpoint)
    first = service.worker_rss()
    sent_first = sent
    sent += _mixed(probe, total - checkpoint)
    last = service.worker_rss()
    procs.stop(service.process)
    small, large = sum(v for v in first.values() if v), sum(v for v in last.values() if v)
    return {
        "requests": [sent_first, sent],
        "rss_kib_first": first, "rss_kib_last": last,
        "total_kib_first": small, "total_kib_last": large,
        "growth": (large - small) / small if small else None,
        "same_workers": sorted(first) == sorted(last),
    }


def _mixed(ctx, count):
    """About `count` requests, a third each to GET /rest-auth, the page and POST posts; returns the number sent.

    wrk runs for whole seconds, so each endpoint gets short runs, sized from
    the rate seen so far, until its share is reached.
    """
    runs = endpoints(ctx)
    names = [n for n in ("rest_auth", "posts_page", "posts_create") if available(ctx, n)]
    sent = 0
    for name in names:
        share, done, seconds = count // len(names), 0, 1
        while done < share:
            result = runs[name][1](seconds)
            if result["non2xx"] or result["timeouts"]:
                raise RuntimeError(f"memory phase: {result['non2xx']} non-2xx answers from {name}")
            done += result["requests"]
            seconds = max(1, min(10, int((share - done) / max(result["req_s"], 1.0))))
        sent += done
    return sent


# --- the report ---------------------------------------------------------------------

def fmt_stats(stats, unit="", scale=1.0, digits=1):
    return (f"{stats['median'] * scale:,.{digits}f}{unit} "
            f"({stats['min'] * scale:,.{digits}f}–{stats['max'] * scale:,.{digits}f})")


def print_table(summary, descriptions):
    """One line per endpoint: req/s, × hello (gunicorn), × hello-served (our server), p99, non-2xx."""
    served = "hello_served" in summary
    head = f"{'× hello-served':21} " if served else ""
    print(f"\n{'endpoint':36} {'req/s median (min–max)':28} {'× hello':21} {head}{'p99 ms':22} non-2xx")
    for name, entry in summary.items():
        ratio = fmt_stats(entry["ratio"], "×", digits=3) if "ratio" in entry else "1"
        column = ""
        if served:
            over = (fmt_stats(entry["served_ratio"], "×", digits=3) if "served_ratio" in entry
                    else "1" if name == "hello_served" else "")
            column = f"{over:21} "
        print(f"{descriptions[name]:36} {fmt_stats(entry['req_s']):28} {ratio:21} {column}"
              f"{fmt_stats(entry['p99_ms']):22} {entry['non2xx'] + entry['socket_errors']}")
    for name in BEARER_COMPARED:
        if name in summary and "rest_auth" in summary:
            print(f"{descriptions[name]:34} {fmt_stats(summary[name]['bearer_ratio'], '×', digits=3)} "
                  "the bearer-token GET /rest-auth of the same round")


def print_peers(summary):
    """The peers beside ours: req/s, × bare Flask on gunicorn sync, and our /rest-auth ÷ each, same rounds."""
    shown = [p for p in PEER_LABELS if peer_endpoint(p) in summary]
    if not shown:
        return
    print(f"\nPeers, 4 workers each, one database each (GET /rest-auth with a token from the peer's own "
          f"login; the bare ones GET /hello):")
    print(f"{'system':68} {'req/s median (min–max)':29} {'× bare Flask':20} our /rest-auth ÷ it")
    print(f"{'bare Flask, gunicorn sync (bench/hello.py): the baseline':68} "
          f"{fmt_stats(summary['hello']['req_s']):29} 1")
    if "hello_served" in summary:
        served = summary["hello_served"]
        print(f"{'bare Flask, our server (python -m serving bench.hello:app)':68} "
              f"{fmt_stats(served['req_s']):29} {fmt_stats(served['ratio'], '×', digits=3):20}")
    if "rest_auth" in summary:
        ours = summary["rest_auth"]
        print(f"{'this service, GET /rest-auth, as make bench starts it':68} {fmt_stats(ours['req_s']):29} "
              f"{fmt_stats(ours['ratio'], '×', digits=3):20} 1")
    for name in shown:
        entry = summary[peer_endpoint(name)]
        over = fmt_stats(entry["ours_over"], "×", digits=2) if "ours_over" in entry else "n/a"
        print(f"{PEER_LABELS[name][1]:68} {fmt_stats(entry['req_s']):29} "
              f"{fmt_stats(entry['ratio'], '×', digits=3):20} {over}")


def evaluate(summary, memory, scale):
    """Each target as (label, figure, met)."""
    checks = []
    def add(label, value, met):
        checks.append({"target": label, "figure": value, "met": bool(met)})

    def ratio(name):
        return summary[name]["ratio"]["median"] if name in summary else None

    r = ratio("rest_auth")
    add(f"GET /rest-auth >= {TARGETS['rest_auth_ratio']}× hello (bare Flask, gunicorn sync)", r,
        r is not None and r >= TARGETS["rest_auth_ratio"])
    r = ratio("posts_page")
    add(f"page of {PAGE} posts >= {TARGETS['posts_page_ratio']}× hello", r,
        r is not None and r >= TARGETS["posts_page_ratio"])
    if "auth" in summary:
        r = summary["auth"]["ceiling_ratio"]["median"]
        ceiling = summary["auth"]["ceiling_req_s"]["median"]
        add(f"POST /auth >= {TARGETS['auth_ceiling_ratio']}× its ceiling "
            f"(verifies/s on every core, each round; median {ceiling:.1f} req/s)", r,
            r >= TARGETS["auth_ceiling_ratio"])
    r = summary["rest_auth"]["p99_ratio"]["median"] if "rest_auth" in summary else None
    add(f"p99 GET /rest-auth <= {TARGETS['rest_auth_p99_ratio']}× p99 hello", r,
        r is not None and r <= TARGETS["rest_auth_p99_ratio"])
    for name, key, what in (("fastapi", "fastapi_ratio", "bare FastAPI's GET /hello (uvicorn workers)"),
                            ("fastapi-users", "fastapi_users_ratio", "fastapi-users' GET /rest-auth")):
        entry = summary.get(peer_endpoint(name))
        if entry is not None and "ours_over" in entry:
            r = entry["ours_over"]["median"]
            add(f"GET /rest-auth >= {TARGETS[key]:g}× {what}, same rounds", r, r >= TARGETS[key])
    bad = sum(e["non2xx"] + e["socket_errors"] for e in summary.values())
    add("zero non-2xx answers and socket errors", bad, bad == 0)
    for name in ("posts_create", "refresh"):
        if name not in summary:
            add(f"{name} measured", None, False)
    if memory:
        first, last = memory["requests"]
        add(f"worker RSS after {last:,} requests within {TARGETS['memory_growth']:.0%} of after {first:,}",
            memory["growth"], memory["same_workers"] and memory["growth"] is not None
            and abs(memory["growth"]) <= TARGETS["memory_growth"])
    if scale:
        for check in scale["checks"]:
            checks.append(check)
    return checks


def print_checks(checks):
    print("\nTargets:")
    for check in checks:
        figure = check["figure"]
        shown = "n/a" if figure is None else (f"{figure:.3f}" if isinstance(figure, float) else str(figure))
        print(f"  [{'met' if check['met'] else 'UNMET':5}] {check['target']}: {shown}")


def write_json(payload):
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


# --- scale ----------------------------------------------------------------------------

def page_times(ctx, path_first, path_last, samples=200):
    """Median wall time (ms) of `samples` sequential GETs of each path, alternating."""
    first, last = [], []
    for _ in range(samples):
        for path, sink in ((path_first, first), (path_last, last)):
            began = time.perf_counter()
            # The cache-off twin: a cached page would cost the same whatever its position.
            status, _, body = jsonhttp.call("GET", ctx.uncached.url + path, token=ctx.access_token)
            sink.append((time.perf_counter() - began) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body}")
    return statistics.median(first), statistics.median(last)


def last_page_paths(application, user_id):
    """(first, last) page paths for a user's posts and for /users, with cursors made by the service's encoder."""
    with application.app_context():
        posts = db.many("SELECT id FROM post WHERE user_id = %s ORDER BY id ASC LIMIT %s",
                         (user_id, PAGE + 1))
        users = db.many("SELECT id FROM user ORDER BY id ASC LIMIT %s", (PAGE + 1,))
    paths = {}
    if len(posts) > PAGE:
        cursor = pagination.encode(posts[PAGE]["id"])
        paths["posts"] = (f"/users/{user_id}/posts?limit={PAGE}",
                          f"/users/{user_id}/posts?limit={PAGE}&cursor={cursor}")
    if len(users) > PAGE:
        cursor = pagination.encode(users[PAGE]["id"])
        paths["users"] = (f"/users?limit={PAGE}", f"/users?limit={PAGE}&cursor={cursor}")
    return paths


def explain(application, user_id):
    """EXPLAIN of the first- and last-page queries, with the SQL the service runs."""
    from accounts import users
    from content import posts
    cursors = {}
    with application.app_context():
        first_post = db.many("SELECT id FROM post WHERE user_id = %s ORDER BY id ASC LIMIT %s",
                             (user_id, PAGE + 1))
        first_user = db.many("SELECT id FROM user ORDER BY id ASC LIMIT %s", (PAGE + 1,))
        cursors["post"] = first_post[-1]["id"]
        cursors["user"] = first_user[-1]["id"]
        queries = {
            "posts first page": (posts.POSTS_PAGE, (user_id, db.ABOVE_ALL_IDS, PAGE + 1)),
            "posts last page": (posts.POSTS_PAGE, (user_id, cursors["post"], PAGE + 1)),
            "users first page": (users.USERS_PAGE, (db.ABOVE_ALL_IDS, PAGE + 1)),
            "users last page": (users.USERS_PAGE, (cursors["user"], PAGE + 1)),
        }
        return {name: {"sql": " ".join(sql.split()), "plan": db.many("EXPLAIN " + sql, params)}
                for name, (sql, params) in queries.items()}


MAKE_ADMIN = "UPDATE user SET is_admin = 1 WHERE id = %s"


def run_scale(ctx, base, env, work, names, rounds, duration, rows=(SCALE_SMALL, SCALE_LARGE)):
    """Every figure with rows[0] and with rows[1] users and posts, plus first vs last page.

    Two databases, each behind its own service and cache-off twin, measured
    back to back within each round (hello, A, B, ...): comparing phases run
    minutes apart measured the machine's drift as much as the data's size.
    """
    contexts, databases = {}, []
    try:
        for count in rows:
            database = create_database(base)
            databases.append(database)
            log(f"scale: loading {count:,} users and posts into {database}")
            load_data.load(database, count, count, base)
            application = load_data.bench_app(database, base)
            with application.app_context():
                db.execute(MAKE_ADMIN, (ctx.user_id,))  # GET /users lists everyone only for an admin
            db.close_pool(application)
            contexts[count] = _scale_context(ctx.hello, base, database, env, work, count)
        for context in contexts.values():  # warm every worker, cache and buffer pool, unrecorded
            runs = endpoints(context)
            for name in names:
                runs[name][1](min(2.0, duration))
        results = run_rounds(contexts, names, rounds, duration)
        phases = {count: _scale_phase(contexts[count], database, base, results[count], rounds)
                  for count, database in zip(rows, databases)}
    finally:
        for context in contexts.values():
            procs.stop(context.service.process)
            procs.stop(context.uncached.process)
        for database in databases:
            drop_database(base, database)
    return scale_checks(phases, rows)


def _scale_context(hello, base, database, env, work, count):
    """A service and its cache-off twin on `database`, logged in as the bench users."""
    service, uncached = start_services(dict(env, DB_NAME=database), work, suffix=f"-{count}")
    return logged_in(Context(hello, service, work, uncached))


def _scale_phase(context, database, base, results, rounds):
    application = load_data.bench_app(database, base)
    try:
        paths = last_page_paths(application, context.user_id)
        pages = {kind: dict(zip(("first_ms", "last_ms"), page_times(context, *pair)))
                 for kind, pair in paths.items()}
        return {"summary": summarize(results, rounds), "pages": pages,
                "explain": explain(application, context.user_id)}
    finally:
        db.close_pool(application)


def scale_checks(phases, rows):
    small, large = phases[rows[0]], phases[rows[1]]
    checks = []
    for name, entry in small["summary"].items():
        if name in BASELINES or name not in large["summary"]:
            continue
        # POST /auth is bound by the hash, not by what bounds hello: compare its
        # ratio to its ceiling; every other endpoint its ratio to hello. Each
        # round measured both sizes back to back: the change is the median of
        # the per-round pairs, which drift between rounds cannot touch.
        figure = ("ceiling_ratio", "ratio to its ceiling") if name == "auth" else ("ratio", "ratio to hello")
        a = entry[figure[0]]["median"]
        b = large["summary"][name][figure[0]]["median"]
        pairs = zip(entry[figure[0]]["values"], large["summary"][name][figure[0]]["values"])
        change = statistics.median(large_value / small_value - 1 for small_value, large_value in pairs)
        checks.append({"target": f"{name} at {rows[1]:,} rows within 10% of {rows[0]:,} "
                                 f"({figure[1]} {a:.3f} -> {b:.3f}; median of the rounds' pairs)",
                       "figure": change, "met": abs(change) <= TARGETS["scale_tolerance"]})
    for rows, phase in phases.items():
        for kind, times in phase["pages"].items():
            factor = times["last_ms"] / times["first_ms"]
            checks.append({"target": f"last page of {kind} <= 1.2× first at {rows:,} rows "
                                     f"({times['first_ms']:.2f} ms vs {times['last_ms']:.2f} ms)",
                           "figure": factor, "met": factor <= TARGETS["last_page_ratio"]})
    return {"phases": phases, "checks": checks}


def print_explain(scale):
    for rows, phase in scale["phases"].items():
        for name, query in phase["explain"].items():
            print(f"\nEXPLAIN {name} at {rows:,} rows: {query['sql']}")
            for row in query["plan"]:
                print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))


# --- main -------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Benchmark the service against a bare Flask app.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--quick", action="store_true",
                        help="2 s per measurement, no memory or scale phase (for trying the harness)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 100k-request RSS check")
    parser.add_argument("--scale", action="store_true", help="also compare 10k with 1M rows")
    parser.add_argument("--cluster", action="store_true",
                        help="only: /rest-auth and a page of posts on a 3-node Galera cluster, causal "
                             "reads on and off, beside the single server (bench/cluster.py)")
    parser.add_argument("--scale-rows", default=f"{SCALE_SMALL},{SCALE_LARGE}",
                        help="the two row counts --scale compares (10000,1000000)")
    parser.add_argument("--memory-requests", type=int, default=100_000,
                        help="requests of the RSS check; RSS is read at a tenth and at the end")
    parser.add_argument("--only", default="", help="comma-separated endpoint names to measure")
    parser.add_argument("--peers", default="all",
                        help="peers measured beside the service (bench/peers): 'all', 'none' or a "
                             f"comma-separated list of {', '.join(peers.NAMES)}")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for every server started here but the peers, "
                             "for experiments (ACCESS_LOG=false)")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # SystemExit runs the finally blocks that stop our processes


def main(argv=None):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 2.0)
        args.no_memory = True
    load = os.getloadavg()[0]
    if load > 0.5 * cores():
        log(f"warning: load average {load:.1f} on {cores()} cores before starting: "
            "other work competes for the CPU and every figure will be noisy")
    chosen = chosen_peers(args)
    with workspace("bench-") as (base, database, work):
        if args.cluster:
            import cluster
            return cluster.run_cluster(args, base, database, work)
        with running_peers(base, work, chosen) as running:
            return _run(args, base, database, work, running)


def chosen_peers(args):
    """The peers to run: --peers, less those --only leaves out."""
    if args.peers == "none":
        return ()
    names = peers.NAMES if args.peers == "all" else tuple(n for n in args.peers.split(",") if n)
    unknown = [n for n in names if n not in peers.SPECS]
    if unknown:
        sys.exit(f"error: unknown peer {', '.join(unknown)} (known: {', '.join(peers.NAMES)})")
    if args.only:
        names = tuple(n for n in names if peer_endpoint(n) in args.only.split(","))
    return names


@contextlib.contextmanager
def running_peers(base, work, names):
    """{name: Peer} for `names`, each on a new database of its own; all stopped and dropped on the way out.

    A peer that cannot start (its venv will not install, its server fails)
    stops the run: `--peers none` measures without them.
    """
    running, databases = {}, []
    try:
        for name in names:
            database = None
            if peers.SPECS[name].uses_database:
                database = peers.create_database(base, name)
                databases.append(database)
            running[name] = peers.start(name, peers.free_port(), database, base, work, log=log)
            log(f"peer {name}: {running[name].url}{running[name].path}")
        yield running
    finally:
        for peer in running.values():
            peer.stop()
        for database in databases:
            drop_database(base, database)


def _run(args, base, database, work, running):
    load_data.load(database, BASE_USERS, BASE_POSTS, base)
    env = server_env(base, database)
    env.update(item.split("=", 1) for item in args.env)
    hello = start_hello(env, work)
    served = start_hello_served(env, work)
    service, uncached = start_services(env, work)
    ctx = logged_in(Context(hello, service, work, uncached, peers=running, hello_served=served))

    descriptions = {name: entry[0] for name, entry in endpoints(ctx).items()}
    wanted = [n for n in descriptions if n not in BASELINES]
    if args.only:
        wanted = [n for n in wanted if n in args.only.split(",")]
    names = []
    for name in wanted:
        if available(ctx, name):
            names.append(name)
        else:
            log(f"skipping {name}: the service has no such endpoint yet")
    for name in (*BASELINES, *names):  # warm up every worker and code path, unrecorded
        endpoints(ctx)[name][1](min(2.0, args.duration))

    results = run_rounds({"service": ctx}, names, args.rounds, args.duration)["service"]
    summary = summarize(results, args.rounds)
    memory = None if args.no_memory else measure_memory(ctx, env, work, args.memory_requests,
                                                        args.memory_requests // 10)
    rows = tuple(int(n) for n in args.scale_rows.split(","))
    scale = (run_scale(ctx, base, env, work, [n for n in names if not is_peer(n)], args.rounds, args.duration, rows)
             if args.scale else None)

    print_table(summary, descriptions)
    print_peers(summary)
    if "auth" in summary:
        auth = summary["auth"]
        print(f"\nPOST /auth: {fmt_stats(auth['req_s'])} req/s against a hash-bound ceiling of "
              f"{fmt_stats(auth['ceiling_req_s'])} req/s (argon2id verifies/s with all {cores()} cores "
              f"verifying, measured before and after each round): {fmt_stats(auth['ceiling_ratio'], '×', digits=3)}")
    if memory:
        first, last = memory["requests"]
        print(f"\nWorker RSS (KiB) after {first:,} requests: {memory['rss_kib_first']} "
              f"total {memory['total_kib_first']:,}")
        print(f"Worker RSS (KiB) after {last:,} requests: {memory['rss_kib_last']} "
              f"total {memory['total_kib_last']:,}  growth {memory['growth']:+.1%}"
              f"{'' if memory['same_workers'] else '  (a worker was replaced!)'}")
    if scale:
        print_explain(scale)
    checks = evaluate(summary, memory, scale)
    print_checks(checks)
    path = write_json({
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "settings": {"workers": WORKERS, "connections": CONNECTIONS, "threads": THREADS,
                     "duration_s": args.duration, "rounds": args.rounds, "cores": cores(),
                     "load_average": os.getloadavg(), "targets": TARGETS,
                     "baselines": {"hello": "bench.hello:app, gunicorn sync",
                                   "hello_served": "bench.hello:app, python -m serving"},
                     "peers": {name: {"path": peer.path, "workers": peers.WORKERS,
                                      "requirements": peers.pins(name)} for name, peer in running.items()}},
        "summary": summary, "memory": memory, "scale": scale, "checks": checks,
    })
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0 if all(check["met"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
