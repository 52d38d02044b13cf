"""Issue 17's serving candidates side by side: speed, and whether slow clients starve them.

    make bench-serving                                  # ~6 min
    .venv/bin/python bench/serving_choice.py --quick    # 2-s wrk, 5-s attacks, 50 sockets (~2.5 min)

Candidates (bench/serving_candidates.py): gunicorn sync ×4 (the old shipped
setup), granian's WSGI mode ×2 and ×4, gunicorn with gevent workers ×4, a
buffering nginx in front of gunicorn sync ×4, and ours (`python -m serving`)
×4 and ×2. For each:

(a) throughput: every candidate serves bench/hello.py at once (idle but for
    the one measured); wrk -t2 -c32 --latency on GET /hello, in interleaved
    rounds (forward, then backward), each ratio against gunicorn sync ×4 of
    the same round;
(b) slow headers, (c) slow bodies: the candidate alone serves the service on
    a database of its own (sql/schema.sql + sql/seed.sql), and
    tests/reliability/slow_clients.py trickles headers (GET /healthz) or
    POST /auth bodies, one piece a second, while a normal client sends GET
    /rest-auth back to back, each on a new connection with a 2-s timeout: the
    fraction answered 200 with roy's body within 2 s, and the p99 (a failed
    call counts as the time it took to fail). The ×2 variants share their
    server with the ×4 ones and are attacked only with --attack-all (time).

Writes a table to stdout and bench/results/serving-choice.json (git-ignored);
stops every process by PID (finally, atexit, SIGTERM, Ctrl-C, and a bound on
the whole run), drops its database. Needs wrk and Debian's nginx; builds
bench/.venvs/serving-choice for gevent on first use.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import json
import math
import os
import secrets
import shutil
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

import config as settings  # noqa: E402
import db  # noqa: E402
import jsonhttp  # noqa: E402
import procs  # noqa: E402
import serving_candidates as cands  # noqa: E402

ATTACKER = ROOT / "tests" / "reliability" / "slow_clients.py"
LUA_DIR = BENCH_DIR / "lua"
RESULTS = BENCH_DIR / "results" / "serving-choice.json"
BASELINE = "gunicorn_sync_4"
THREADS, CONNECTIONS = 2, 32
CLIENT_TIMEOUT = 2.0   # the normal client's patience per call
DRIP_INTERVAL = 1      # seconds between two pieces of a slow request
ATTACKED = ("gunicorn_sync_4", "granian_wsgi_4", "gunicorn_gevent_4", "nginx_gunicorn_sync_4", "ours_4")


def log(message: str) -> None:
    sys.stderr.write(f"[serving-choice {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- the workspace: a database, a folder, the environment every server gets ----------------

def create_database(base: dict) -> str:
    """bench_choice_<pid>_<hex> with the schema and the demo users (roy / roy)."""
    name = f"bench_choice_{os.getpid()}_{secrets.token_hex(3)}"
    db.server_execute(base, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    for script in ("schema.sql", "seed.sql"):
        db.run_script(dict(base, DB_NAME=name), (ROOT / "sql" / script).read_text())
    return name


def server_env(base: dict, database: str) -> dict:
    """The same environment for every candidate: nothing the service reads from the shell or .env."""
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    env = {k: v for k, v in os.environ.items() if k not in documented and not k.startswith(
        ("DB_", "SERVER_", "RATELIMIT_", "JWT_", "GRANIAN_", "GUNICORN_", "BENCH_"))}
    env.update({
        "PYTHON_DOTENV_DISABLED": "1", "APP_ENV": "development", "FLASK_DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),  # the same in every worker of every server
        "MFA_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DB_HOST": base["DB_HOST"], "DB_PORT": str(base["DB_PORT"]), "DB_USER": base["DB_USER"],
        "DB_PASSWORD": base["DB_PASSWORD"], "DB_NAME": database, "DB_SSL_MODE": "disabled",
        # The attack on POST /auth never completes a login; the limiter would only blur the rest.
        "RATELIMIT_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


# --- (a) throughput --------------------------------------------------------------------------

def wrk(url: str, seconds: float) -> dict:
    """wrk -t2 -c32 --latency on `url`: req/s, p99 and bad answers (bench/lua/common.lua checks each status)."""
    seconds = max(1, round(seconds))
    command = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency",
               "--timeout", "10s", "-s", "static.lua", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}  # a plain GET
    done = subprocess.run(command, cwd=LUA_DIR, env=env, capture_output=True, text=True,
                          timeout=seconds + 40)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line[len("BENCH_RESULT "):])
            return {"req_s": raw["requests"] / (raw["duration_us"] / 1e6), "p99_ms": raw["p99_us"] / 1000,
                    "non2xx": raw["non2xx"], "socket_errors": raw["connect_errors"] + raw["read_errors"]
                    + raw["write_errors"] + raw["timeouts"]}
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def measure_throughput(candidates, ports, env, work, args) -> dict:
    """{key: {"rounds": [...], "req_s", "p99_ms", "ratio"}}, every candidate serving hello at once."""
    servers = {c.key: cands.start(c, "hello", ports, env, work) for c in candidates}
    try:
        for server in servers.values():
            server.ready("/hello")
        for key, server in servers.items():  # warm: imports, first connections; not recorded
            wrk(server.url + "/hello", 1)
        rounds = []
        for r in range(args.rounds):
            # Backward every other round, so no candidate always follows the same one.
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            rounds.append({})
            for key in order:
                result = wrk(servers[key].url + "/hello", args.duration)
                rounds[-1][key] = result
                log(f"round {r + 1}/{args.rounds} {key:24} {result['req_s']:8.0f} req/s  "
                    f"p99 {result['p99_ms']:6.1f} ms  bad {result['non2xx'] + result['socket_errors']}")
    finally:
        for server in servers.values():
            server.stop()
    return {key: dict(_throughput_summary(key, rounds), port=servers[key].port) for key in servers}


def _throughput_summary(key: str, rounds: list) -> dict:
    mine = [dict(r[key], ratio=r[key]["req_s"] / r[BASELINE]["req_s"]) if BASELINE in r else r[key]
            for r in rounds]
    summary = {"rounds": mine,
               "req_s": statistics.median(m["req_s"] for m in mine),
               "p99_ms": statistics.median(m["p99_ms"] for m in mine),
               "bad_answers": sum(m["non2xx"] + m["socket_errors"] for m in mine)}
    if all("ratio" in m for m in mine):
        summary["ratio"] = statistics.median(m["ratio"] for m in mine)
    return summary


# --- (b), (c) slow clients ------------------------------------------------------------------

def login(server) -> str:
    status, _, body = jsonhttp.call("POST", server.url + "/auth", timeout=30,
                                    body={"username": "roy", "password": "roy"})
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise RuntimeError(f"{server.name}: POST /auth answered {status}: {body}")
    return body["access_token"]


def one_call(port: int, token: str) -> tuple[bool, float]:
    """GET /rest-auth on a new connection: (answered 200 with roy's body within CLIENT_TIMEOUT, seconds)."""
    began = time.monotonic()
    connection = http.client.HTTPConnection(procs.HOST, port, timeout=CLIENT_TIMEOUT)
    try:
        connection.request("GET", "/rest-auth", headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        body = answer.read()
        good = answer.status == 200 and json.loads(body)["user"]["username"] == "roy"
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        good = False
    finally:
        connection.close()
    elapsed = time.monotonic() - began
    return good and elapsed <= CLIENT_TIMEOUT, elapsed


def normal_client(port: int, token: str, until: float) -> list:
    """Sequential calls until the monotonic time `until`: [(answered, seconds)]."""
    calls = []
    while time.monotonic() < until:
        calls.append(one_call(port, token))
    return calls


def calls_summary(calls: list) -> dict:
    """Fraction answered and p99 (nearest rank; a failed call counts as the time it took to fail)."""
    times = sorted(seconds for _, seconds in calls)
    answered = sorted(seconds for good, seconds in calls if good)
    return {"calls": len(calls), "answered_calls": len(answered),
            "answered": len(answered) / len(calls) if calls else 0.0,
            "p99_ms": _p99(times) * 1000 if times else None,
            "p99_answered_ms": _p99(answered) * 1000 if answered else None}


def _p99(ordered: list) -> float:
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def attack(server, token: str, headers: int, bodies: int, args, work: Path) -> dict:
    """The normal client's figures while slow_clients.py holds `headers` + `bodies` sockets, and the attacker's tally."""
    out = work / f"attacker-{server.name}-{headers}-{bodies}.log"
    began = time.monotonic()
    attacker = procs.start([sys.executable, str(ATTACKER), str(server.port), str(headers), str(bodies),
                            str(args.attack_seconds), str(DRIP_INTERVAL)], dict(os.environ), out)
    time.sleep(args.settle)  # every slow socket connected and trickling
    calls = normal_client(server.port, token, began + args.attack_seconds - 0.5)
    try:
        attacker.wait(timeout=args.attack_seconds + 30)
    except subprocess.TimeoutExpired:
        procs.stop(attacker)
    lines = [line for line in out.read_text(errors="replace").splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the attacker printed no tally:\n{out.read_text(errors='replace')[-2000:]}")
    return dict(calls_summary(calls), attacker=json.loads(lines[-1]))


def measure_slow_clients(candidate, ports, env, work, args) -> dict:
    """Quiet, slow-headers and slow-bodies figures of `candidate` serving the service."""
    server = cands.start(candidate, "service", ports, env, work)
    try:
        server.ready("/healthz")
        token = login(server)
        normal_client(server.port, token, time.monotonic() + 1)  # warm: pools, first connections
        quiet = calls_summary(normal_client(server.port, token, time.monotonic() + args.quiet_seconds))
        slow_headers = attack(server, token, args.header_sockets, 0, args, work)
        server.ready("/healthz", timeout=40)  # recovered (a sync worker may have been killed) before the next
        slow_bodies = attack(server, token, 0, args.body_sockets, args, work)
    finally:
        server.stop()
    for name, figures in (("quiet", quiet), ("slow headers", slow_headers), ("slow bodies", slow_bodies)):
        log(f"{candidate.key:24} {name:12} answered {figures['answered']:6.1%} of {figures['calls']:4}  "
            f"p99 {figures['p99_ms'] or 0:7.1f} ms")
    return {"quiet": quiet, "slow_headers": slow_headers, "slow_bodies": slow_bodies, "service_port": server.port}


# --- the report ----------------------------------------------------------------------------------

def print_table(report: dict) -> None:
    s = report["settings"]
    print(f"\nthroughput: GET /hello, wrk -t{THREADS} -c{CONNECTIONS} -d{s['wrk_seconds']}s, "
          f"median of {s['rounds']} interleaved rounds; ratio to {BASELINE} in the same round")
    print(f"slow clients: the service, GET /rest-auth back to back (new connection, {CLIENT_TIMEOUT:g}-s timeout) "
          f"while {s['header_sockets']} sockets trickle headers / {s['body_sockets']} trickle POST /auth "
          f"bodies for {s['attack_seconds']:g} s; answered, p99 ms\n")
    print(f"{'candidate':40} {'req/s':>7} {'ratio':>6} {'p99 ms':>7}   {'quiet':>14}   "
          f"{'slow headers':>14}   {'slow bodies':>14}")
    for key, entry in report["candidates"].items():
        t = entry["throughput"]
        cells = [_slow_cell(entry.get(part)) for part in ("quiet", "slow_headers", "slow_bodies")]
        if entry.get("attacked_as"):
            cells = ["(as ×4)"] * 3
        print(f"{entry['label']:40} {t['req_s']:7.0f} {t.get('ratio', 0):6.2f} {t['p99_ms']:7.1f}   "
              + "   ".join(f"{c:>14}" for c in cells))


def print_sockets(report: dict) -> None:
    """How long the server let the slow sockets live: its own timeouts at work, or none."""
    print("\nslow sockets: closed by the server / opened, longest held (s), first bytes of its answers")
    for key, entry in report["candidates"].items():
        if "attacked_as" in entry:
            continue
        cells = []
        for part, kind in (("slow_headers", "headers"), ("slow_bodies", "bodies")):
            t = entry[part]["attacker"][kind]
            answers = ", ".join(f"{n}× {a.strip()}" for a, n in t["answers"].items()) or "-"
            cells.append(f"{kind} {t['closed_by_server']}/{t['opened']} {t['longest_s']:5.1f} ({answers})")
        print(f"{entry['label']:40} " + "   ".join(cells))


def _slow_cell(figures) -> str:
    if not figures:
        return "-"
    return f"{figures['answered']:.0%} {figures['p99_ms']:7.0f}"


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


# --- main -----------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Measure issue 17's serving candidates.")
    parser.add_argument("--quick", action="store_true",
                        help="2-s wrk, 5-s attacks, 50 sockets of each kind (tests/test_serving_choice.py)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (2)")
    parser.add_argument("--duration", type=float, default=8, help="seconds of each wrk run (8)")
    parser.add_argument("--attack-seconds", type=float, default=20, help="seconds of each attack (20)")
    parser.add_argument("--header-sockets", type=int, default=200, help="sockets trickling headers (200)")
    parser.add_argument("--body-sockets", type=int, default=100, help="sockets trickling bodies (100)")
    parser.add_argument("--attack-all", action="store_true", help="attack the ×2 variants too (+80 s)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated candidate keys to measure ({BASELINE} always is: the ratios)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the JSON ({RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.attack_seconds = 2, 5
        args.header_sockets = args.body_sockets = 50
    args.settle = 1.5 if args.quick else 2.0
    args.quiet_seconds = 1.0 if args.quick else 2.0
    return args


def missing_tools() -> list[str]:
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk (Debian package wrk)")
    if not cands.nginx_binary():
        missing.append("nginx (Debian package nginx)")
    return missing


def _stop(signum, frame):
    # SystemExit runs the finally blocks that stop every process by PID.
    if signum == signal.SIGALRM:
        log("the run went past its bound; stopping everything")
    sys.exit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    candidates = chosen(args)
    missing = missing_tools()
    if missing:
        sys.stderr.write(f"error: {' and '.join(missing)} must be installed: `make system-deps` "
                         "(as root) or `sudo apt-get install wrk nginx`\n")
        return 2
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGALRM, _stop)
    cands.ensure_gevent_venv(log)
    signal.alarm(240 if args.quick else 600)  # twice the expected time at most: never hang
    base = settings.from_env()
    base.update({"DB_NAME": "", "DB_SSL_MODE": "disabled"})
    database = create_database(base)
    work = Path(tempfile.mkdtemp(prefix="serving-choice-"))
    try:
        report = run(args, candidates, server_env(base, database), work)
    finally:
        signal.alarm(0)
        procs.stop_all()
        db.server_execute(base, f"DROP DATABASE IF EXISTS `{database}`")
        shutil.rmtree(work, ignore_errors=True)
        log("stopped every process started, dropped the database")
    print_table(report)
    print_sockets(report)
    write_json(report, args.out)
    print(f"\nwrote {args.out}")
    return 0


def chosen(args) -> list:
    """The candidates to measure: all, or --only's and the baseline; SystemExit naming an unknown one."""
    candidates = cands.candidates()
    if not args.only:
        return candidates
    wanted = {BASELINE, *args.only.split(",")}
    unknown = wanted - {c.key for c in candidates}
    if unknown:
        raise SystemExit(f"error: no candidate {', '.join(sorted(unknown))}")
    return [c for c in candidates if c.key in wanted]


def same_server_x4(key: str) -> str:
    """The ×4 variant of a candidate (granian_wsgi_2 -> granian_wsgi_4): the one attacked for both."""
    return key.rsplit("_", 1)[0] + "_4"


def run(args, candidates: list, env: dict, work: Path) -> dict:
    ports = cands.Ports()
    load_before = os.getloadavg()
    log(f"throughput: {len(candidates)} candidates serving bench/hello.py; load average {load_before[0]:.1f}")
    throughput = measure_throughput(candidates, ports, env, work, args)
    keys = {c.key for c in candidates}
    attacked = [c for c in candidates
                if args.attack_all or c.key in ATTACKED or same_server_x4(c.key) not in keys]
    slow = {}
    for candidate in attacked:
        log(f"slow clients: {candidate.key} serving the service")
        slow[candidate.key] = measure_slow_clients(candidate, ports, env, work, args)
    entries = {}
    for c in candidates:
        entries[c.key] = {"label": c.label, "command": c.command, "throughput": throughput[c.key],
                          **slow.get(c.key, {"attacked_as": same_server_x4(c.key)})}
    return {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "settings": {"quick": args.quick, "rounds": args.rounds, "wrk_seconds": args.duration,
                     "wrk_threads": THREADS, "wrk_connections": CONNECTIONS,
                     "attack_seconds": args.attack_seconds, "header_sockets": args.header_sockets,
                     "body_sockets": args.body_sockets, "drip_interval_s": DRIP_INTERVAL,
                     "client_timeout_s": CLIENT_TIMEOUT, "baseline": BASELINE},
        "candidates": entries,
    }


if __name__ == "__main__":
    sys.exit(main())
