"""Instructions per request, counted by valgrind's callgrind: the service's WSGI app in process, A/B.

    .venv/bin/python bench/instructions.py --baseline /tmp/before     # this checkout against another
    .venv/bin/python bench/instructions.py --only rest_auth --requests 1000

Wall-clock figures on this shared 2-core machine drift by a fifth between
runs (docs/performance.md, "Issue 17's targets"); the number of instructions
a request takes does not: the same code, inputs and environment count the
same, whatever else the machine does. So a change to the per-request path is
judged here, and bench/run.py says what it buys in requests per second.

For each checkout and endpoint, the app is built as bench/hot_path.py's
--cprofile builds it (bench/run.py's settings, the Redis cache on, the
access log made and written to /dev/null) and called in process, no server,
no sockets: once with `--requests` requests after the warm-up, once with
none. The difference, divided by the requests, is what one request costs.
Two callgrind runs at a time (one per core); each takes about a minute.
Its own database, dropped at the end (bench/run.py workspace).
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WARM_UP = 200
PATHS = {
    "rest_auth": "/rest-auth",
    "page": "/users/{user_id}/posts?limit=20",
    "public": "/public",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="", metavar="DIR", help="another checkout (git archive) to compare")
    parser.add_argument("--only", default=",".join(PATHS), help=f"endpoints ({','.join(PATHS)})")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--child", nargs=4, metavar=("ROOT", "SETUP", "NAME", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        root, setup, name, count = args.child
        serve_in_process(Path(root), json.loads(Path(setup).read_text()), name, int(count))
        return 0
    roots = ([Path(args.baseline).resolve()] if args.baseline else []) + [ROOT]
    names = [n for n in args.only.split(",") if n]
    sys.path.insert(0, str(BENCH_DIR))
    import hot_path
    import load_data
    import procs
    import run

    with run.workspace("instructions-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        env = run.server_env(base, database)
        ctx = hot_path.start_servers(env, work, 1)[""]
        procs.stop_all()  # the token is all a server was needed for
        setup = Path(work) / "setup.json"
        setup.write_text(json.dumps({"env": env, "token": ctx.access_token, "user_id": ctx.user_id}))
        counts = count_all(roots, names, setup, args.requests)
        setup.unlink()
    report(roots, names, counts, args.requests)
    return 0


def count_all(roots, names, setup, requests):
    """{(root, name, n): instructions of the whole process} for n in (0, requests)."""
    jobs = [(root, name, n) for root in roots for name in names for n in (0, requests)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(zip(jobs, pool.map(lambda job: callgrind(*job, setup), jobs)))


def callgrind(root, name, count, setup):
    """Instructions valgrind counted for one child run."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               str(Path(__file__).resolve()), "--child", str(root), str(setup), name, str(count)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split()[-1])
    raise RuntimeError(f"callgrind printed no count (exit {done.returncode}):\n{done.stderr[-3000:]}")


def report(roots, names, counts, requests):
    print(f"\ninstructions per request (callgrind; {requests} requests less none, in process):")
    for name in names:
        per = [(counts[root, name, requests] - counts[root, name, 0]) / requests for root in roots]
        line = "  ".join(f"{root}: {value:,.0f}" for root, value in zip(roots, per))
        change = f"   this ÷ baseline {per[-1] / per[0]:.3f}" if len(per) > 1 else ""
        print(f"  {name:10} {line}{change}")


def serve_in_process(root, setup, name, count):
    """The child: build `root`'s app, warm it up, then serve `count` requests of `name`."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    import in_process  # bench/'s own: it imports nothing of the service

    import app as app_module
    from rest import middleware

    application = app_module.create_app(env=setup["env"])
    middleware._default_handler.stream.stream = open(os.devnull, "w")  # lines made and written, to nowhere
    path = PATHS[name].format(user_id=setup["user_id"])
    once, statuses = in_process.caller(application, path, setup["token"])
    for _ in range(WARM_UP):
        once()
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"{path} answered {statuses[-1]}")
    for _ in range(count):
        once()


if __name__ == "__main__":
    sys.exit(main())
