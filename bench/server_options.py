"""granian's worker options A/B: the service under several option sets, against bare Flask on gunicorn, in one run.

    .venv/bin/python bench/server_options.py '{"loop":"asyncio","task_impl":"asyncio"}' \
        '{"loop":"uvloop","task_impl":"rust"}'
    ROUNDS=6 .venv/bin/python bench/server_options.py ...

Each argument is a JSON object of granian `Server` options (loop, task_impl,
runtime_mode, backpressure, ...) laid over what `python -m serving` passes
(serving/__main__.py, `_server`). Every option set starts its own copy of the
service (4 workers, bench/run.py's settings: Redis cache on, access log on,
rate limits off) on one database, and "hello" (bench.hello:app on gunicorn
sync x 4) is measured before and after each round. Rounds are interleaved,
forward then backward. For each set: GET /rest-auth and the page of 20
posts as a ratio to hello, and the CPU its processes spent per request (from
/proc, around each wrk run): on a machine whose speed drifts, CPU per
request moves much less than req/s. docs/performance.md, "How each worker runs".

Run with `--serve JSON` (what this script starts), it is `python -m serving`
with those options: nothing else reads them.
"""
import json
import os
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import load_data  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", 4))
SECONDS = 5
_TICK = os.sysconf("SC_CLK_TCK")


def serve(options):
    """`python -m serving`, with granian's Server given `options` on top of ours."""
    from granian import constants

    import serving.__main__ as entry

    kinds = {"loop": constants.Loops, "task_impl": constants.TaskImpl,
             "runtime_mode": constants.RuntimeModes}
    extra = {k: kinds[k](v) if k in kinds else v for k, v in options.items()}
    build = entry._server

    def with_options(settings, address):
        server = build(settings, address)
        for name, value in extra.items():
            setattr(server, name, value)
        return server

    entry._server = with_options
    entry.main([])


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def measure(server, path, token=None):
    """(req/s, CPU µs per request of the server's processes) of one wrk run."""
    pids = [server.process.pid] + procs.children(server.process.pid)
    env = {"BENCH_METHOD": "GET", **({"BENCH_TOKEN": token} if token else {})}
    before = cpu_seconds(pids)
    result = run.wrk(server.url + path, SECONDS, env=env)
    return result["req_s"], (cpu_seconds(pids) - before) / max(result["requests"], 1) * 1e6


def start(number, options, env, work):
    server = run.Server.__new__(run.Server)
    server.name, server.port = f"options-{number}", procs.free_port()
    server.url = f"http://{procs.HOST}:{server.port}"
    server.log_path = Path(work) / f"{server.name}.log"
    server.process = procs.start(
        [str(procs.VENV_BIN / "python"), str(Path(__file__)), "--serve", json.dumps(options)],
        dict(env, SERVER_BIND=f"{procs.HOST}:{server.port}", SERVER_WORKERS=str(run.WORKERS)),
        server.log_path)
    server.ready("/rest-auth")
    return server


def main(argv):
    if argv[:1] == ["--serve"]:
        serve(json.loads(argv[1]))
        return 0
    option_sets = [json.loads(arg) for arg in argv] or [{}]
    with run.workspace("server-options-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        env = run.server_env(base, database)
        hello = run.start_hello(env, work)
        servers = [start(n, options, env, work) for n, options in enumerate(option_sets)]
        token = run.Context(hello, servers[0], work).login()["access_token"]
        paths = {"rest": ("/rest-auth", token), "page": (f"/users/1/posts?limit={run.PAGE}", None)}
        for server in servers:  # warm up, unrecorded
            for path, with_token in paths.values():
                measure(server, path, with_token)
        results = {}
        for r in range(ROUNDS):
            before, _ = measure(hello, "/hello")
            order = list(enumerate(servers))
            got = [(n, name, *measure(server, *paths[name]))
                   for n, server in (order if r % 2 == 0 else order[::-1]) for name in paths]
            after, _ = measure(hello, "/hello")
            for n, name, req_s, cpu in got:
                results.setdefault((n, name), []).append((req_s / ((before + after) / 2), cpu))
            run.log(f"round {r + 1}/{ROUNDS}: hello {(before + after) / 2:,.0f} req/s")
        for (n, name), values in sorted(results.items()):
            print(f"{json.dumps(option_sets[n]):50} {name:4}  × hello {statistics.median(v[0] for v in values):.3f}"
                  f"  CPU {statistics.median(v[1] for v in values):.0f} µs/request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
