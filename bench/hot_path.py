"""The hot paths under the chosen server: the service and bare Flask, both behind our RSGI bridge.

    .venv/bin/python bench/hot_path.py                          # 2 and 4 workers, 2 rounds of 8 s
    .venv/bin/python bench/hot_path.py --workers 2 --rounds 3 --only rest_auth
    .venv/bin/python bench/hot_path.py --workers 2 --profile rest_auth   # + py-spy of the workers
    .venv/bin/python bench/hot_path.py --cprofile rest_auth     # one request's cost, in process
    .venv/bin/python bench/hot_path.py --baseline /tmp/main     # A/B: another checkout, same rounds

Where bench/run.py compares the service with bare Flask on gunicorn (the
issue's yardstick), this compares it with bare Flask served exactly as the
service is: `python -m serving` against bench/hello_bridge.py (granian, RSGI,
serving/bridge.py), same worker count, ports 57200-57299. So the ratio is
"what our code costs per request" with the server factored out; the issue's
targets need /rest-auth at about 0.65 of it (1.5x gunicorn-Flask, where
bridge-Flask runs 2.2-2.3x gunicorn-Flask). Settings as bench/run.py's
(bench/run.py server_env: the Redis cache on, the access log on, rate limits
off), its own database, dropped at the end; every process stopped by PID.

Rounds are interleaved (hello, each endpoint, hello; worker counts
alternating in order) and each endpoint's ratio divides by the mean of the
hellos around it. POST /auth is compared with its hash-bound ceiling
(bench/run.py hash_ceiling), measured before and after it.

--profile NAME records the service's workers with py-spy (wall clock, idle
threads left out) during one more run of NAME and prints the frames with the
most samples; --gil keeps only samples holding the GIL. --cprofile NAME
calls the WSGI app in this process (no server, no sockets) and prints
cProfile's top functions and the microseconds per request.
"""
import argparse
import os
import socket
import subprocess
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# bench/profile.py would shadow the standard library's `profile`, which cProfile imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
import cProfile  # noqa: E402
import pstats  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))

import in_process  # noqa: E402
import load_data  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402
from bench.profile import top  # noqa: E402  (run put the checkout on sys.path)

PORTS = range(57200, 57300)
ENDPOINTS = ("rest_auth", "posts_page", "auth")
REPEATS = 10  # in-process timing: the best of this many slices


class Served:
    """One `python -m ...` granian server started here: its URL and master process."""

    def __init__(self, name, module, env, work, workers, cwd=run.ROOT):
        self.name = name
        self.port = _free_port()
        self.url = f"http://{procs.HOST}:{self.port}"
        env = dict(env, SERVER_BIND=f"{procs.HOST}:{self.port}", SERVER_WORKERS=str(workers))
        self.log_path = Path(work) / f"{name}.log"
        self.process = procs.start([str(procs.VENV_BIN / "python"), "-m", module], env, self.log_path,
                                   cwd=cwd)

    def ready(self, path):
        try:
            procs.wait_http(self.url + path, self.process)
        except RuntimeError as exc:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from None


def _free_port():
    """A port of 57200-57299 free now and not handed out before by this run."""
    for port in PORTS:
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((procs.HOST, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port in 57200-57299")


_handed_out = set()


def start_servers(env, work, workers, baseline=None, base_env=None):
    """{"": context, "@base": context}: hello and the service (and the baseline's) with `workers` workers.

    Each context is bench/run.py's, its service logged in; both share the
    hello server and the database.
    """
    hello = Served(f"hello-x{workers}", "bench.hello_bridge", env, work, workers)
    services = {"": Served(f"service-x{workers}", "serving", env, work, workers)}
    if baseline:
        services["@base"] = Served(f"service-base-x{workers}", "serving", dict(env, **(base_env or {})),
                                   work, workers, cwd=baseline)
    hello.ready("/hello")
    for service in services.values():
        service.ready("/rest-auth")
    return {label: run.logged_in(run.Context(hello, service, work)) for label, service in services.items()}


def measure(contexts, names, rounds, seconds):
    """{workers: {name[@base]: [wrk result per round]}} plus "hello" (rounds + 1 per count) and "ceiling".

    `contexts` is {workers: {label: context}}. In each round and worker count:
    hello, then each endpoint on every service (the order of the services
    alternating between rounds, as the order of the counts does).
    """
    results = {w: {"hello": [], "ceiling": [], **{n + label: [] for n in names for label in by_label}}
               for w, by_label in contexts.items()}
    order = list(contexts)
    for r in range(rounds):
        for w in (order if r % 2 == 0 else order[::-1]):
            labels = list(contexts[w]) if r % 2 == 0 else list(contexts[w])[::-1]
            loads = {label: run.endpoints(ctx) for label, ctx in contexts[w].items()}
            hello = contexts[w][""].hello
            _note(results[w]["hello"], _timed(hello, loads[""]["hello"][1], seconds), f"round {r + 1} x{w} hello")
            for name in names:
                before = run.hash_ceiling() if name == "auth" else None
                for label in labels:
                    _note(results[w][name + label],
                          _timed(contexts[w][label].service, loads[label][name][1], seconds),
                          f"round {r + 1} x{w} {name}{label}")
                if before is not None:
                    results[w]["ceiling"].append((before + run.hash_ceiling()) / 2)
    for w in order:
        _note(results[w]["hello"], _timed(contexts[w][""].hello, run.endpoints(contexts[w][""])["hello"][1],
                                          seconds), f"closing x{w} hello")
    return results


def _timed(server, load, seconds):
    """load(seconds)'s wrk result plus cpu_us: the CPU its workers spent per request.

    On a machine others share, req/s moves with their load; a worker's CPU
    time per request moves much less (it still does with the caches and the
    clock). Read from /proc: utime + stime of every worker of `server`.
    """
    workers = procs.children(server.process.pid)
    before = sum(_cpu_seconds(pid) for pid in workers)
    result = load(seconds)
    result["cpu_us"] = (sum(_cpu_seconds(pid) for pid in workers) - before) / max(result["requests"], 1) * 1e6
    return result


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _note(sink, result, what):
    sink.append(result)
    run.log(f"{what:28} {result['req_s']:9.1f} req/s  p99 {result['p99_us'] / 1000:6.1f} ms  "
            f"CPU {result['cpu_us']:6.1f} us/req  non-2xx {result['non2xx']}")
    if result["non2xx"]:
        raise RuntimeError(f"{what}: {result['non2xx']} non-2xx, first {result['first_bad_status']} "
                           f"{result['first_bad_body']}")


def report(results, rounds):
    """Print per count: hello's req/s, then each endpoint's req/s and ratio (median of the rounds)."""
    for w, by_name in results.items():
        hello = [run_["req_s"] for run_ in by_name["hello"]]
        bracket = [(hello[r] + hello[r + 1]) / 2 for r in range(rounds)]
        hello_cpu = [run_["cpu_us"] for run_ in by_name["hello"]]
        cpu_bracket = [(hello_cpu[r] + hello_cpu[r + 1]) / 2 for r in range(rounds)]
        print(f"\n{w} workers: bare Flask under the bridge {_fmt(hello)} req/s, "
              f"worker CPU {_fmt(hello_cpu, 1)} us/request")
        for name, runs in by_name.items():
            if name in ("hello", "ceiling"):
                continue
            rates = [run_["req_s"] for run_ in runs]
            line = f"  {name:16} {_fmt(rates)} req/s  x hello-bridge {_fmt([a / b for a, b in zip(rates, bracket)], 3)}"
            if name.startswith("auth"):
                ceilings = by_name["ceiling"]
                line += (f"  ceiling {_fmt(ceilings)} req/s, x ceiling "
                         f"{_fmt([a / b for a, b in zip(rates, ceilings)], 3)}")
            p99 = [run_["p99_us"] / 1000 for run_ in runs]
            cpu = [run_["cpu_us"] for run_ in runs]
            print(line + f"  p99 {_fmt(p99, 1)} ms\n  {'':16} worker CPU {_fmt(cpu, 1)} us/request, "
                  f"hello's / this {_fmt([b / a for a, b in zip(cpu, cpu_bracket)], 3)}")


def _fmt(values, digits=0):
    return (f"{statistics.median(values):,.{digits}f} "
            f"[{', '.join(f'{v:,.{digits}f}' for v in values)}]")


def profile_workers(ctx, name, seconds, gil, out):
    """py-spy every worker of the server answering `name` (hello: bare Flask) while it is loaded; wrk's result."""
    spy = procs.VENV_BIN / "py-spy"
    load = run.endpoints(ctx)[name][1]
    server = ctx.hello if name == "hello" else ctx.service
    recorder = procs.start([str(spy), "record", "--pid", str(server.process.pid), "--subprocesses",
                            "--nonblocking", "-r", "200", "-d", str(seconds), "-f", "raw", "-o", str(out),
                            *(["--gil"] if gil else [])], None, out.with_suffix(".log"))
    time.sleep(1.0)  # py-spy attaches to every worker first
    result = load(seconds)
    recorder.wait(timeout=seconds + 60)
    return result


def perf_workers(ctx, name, seconds, out):
    """`perf record` (C and Rust frames: the interpreter, granian, syscalls) of the workers answering `name`."""
    server = ctx.hello if name == "hello" else ctx.service
    pids = ",".join(str(pid) for pid in procs.children(server.process.pid))
    recorder = procs.start(["perf", "record", "-F", "999", "-p", pids, "-o", str(out), "--", "sleep",
                            str(seconds)], None, out.with_suffix(".log"))
    time.sleep(0.5)
    result = run.endpoints(ctx)[name][1](seconds)
    recorder.wait(timeout=seconds + 60)
    report = subprocess.run(["perf", "report", "-i", str(out), "--no-children", "--sort", "dso,sym",
                             "--stdio", "--percent-limit", "0.7"], capture_output=True, text=True)
    print(f"\nperf, {name}: {result['req_s']:.0f} req/s while recording")
    print("\n".join(line for line in report.stdout.splitlines() if line and not line.startswith("#")))
    return result


def print_profile(out, result, name):
    print(f"\npy-spy, {name}: {result['req_s']:.0f} req/s while recording; stacks in {out}")
    own, cumulative = top(out.read_text(), 30)
    print("own time (the frame that was running):")
    for share, frame in own:
        print(f"  {share:6.1%}  {frame}")
    print("including callees:")
    for share, frame in cumulative:
        print(f"  {share:6.1%}  {frame}")


def cprofile(env, ctx, name, count=20000):
    """Call the service's WSGI app `count` times in this process for `name`; print µs/request and cProfile's top."""
    import app as app_module
    from rest import middleware

    if name == "hello":
        from bench.hello import app as application
    else:
        application = app_module.create_app(env=env)
        # The lines are made and written as deployed (rest/log_batch.py), to nowhere.
        middleware._default_handler.stream.stream = open(os.devnull, "w")
    path = {"rest_auth": "/rest-auth", "posts_page": f"/users/{ctx.user_id}/posts?limit={run.PAGE}",
            "public": "/public", "hello": "/hello"}[name]
    once, statuses = in_process.caller(application, path, ctx.access_token)
    for _ in range(500):
        once()
    if not statuses[-1].startswith("200"):
        raise RuntimeError(f"{path} answered {statuses[-1]}")
    plain, cpu = [], []
    for _ in range(REPEATS):
        began, began_cpu = time.perf_counter(), time.process_time()
        for _ in range(count // REPEATS):
            once()
        plain.append((time.perf_counter() - began) / (count // REPEATS) * 1e6)
        cpu.append((time.process_time() - began_cpu) / (count // REPEATS) * 1e6)
    # The fastest repeat: what the code costs when nothing else takes the core.
    plain, cpu = min(plain), min(cpu)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        once()
    profiler.disable()
    print(f"\n{name} in process: {plain:.1f} us per request ({cpu:.1f} us of CPU) without the "
          f"profiler ({count} calls)")
    run.RESULTS_DIR.mkdir(exist_ok=True)
    dump = run.RESULTS_DIR / f"hot-path-{name}.pstats"
    profiler.dump_stats(dump)  # for `python -m pstats` (callers, callees)
    print(f"cProfile's stats in {dump.relative_to(run.ROOT)}")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(45)


def main(argv=None):
    parser = argparse.ArgumentParser(description="The service vs bare Flask, both behind serving/bridge.py.")
    parser.add_argument("--workers", default="2,4", help="comma-separated worker counts (2,4)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--only", default=",".join(ENDPOINTS), help=f"endpoints ({','.join(ENDPOINTS)})")
    parser.add_argument("--profile", default="", help="py-spy the workers during this endpoint")
    parser.add_argument("--perf", default="", help="`perf record` the workers during this endpoint")
    parser.add_argument("--gil", action="store_true", help="with --profile: GIL-holding samples only")
    parser.add_argument("--cprofile", default="", help="cProfile this endpoint in process (rest_auth, "
                                                       "posts_page, public, hello); no servers measured")
    parser.add_argument("--baseline", default="", metavar="DIR",
                        help="also measure the service of another checkout (e.g. `git archive main`) "
                             "in the same rounds; its endpoints are reported as NAME@base")
    parser.add_argument("--base-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the baseline only (--baseline . --base-env ACCESS_LOG=false)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the service (ACCESS_LOG=false)")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    names = [n for n in args.only.split(",") if n]
    with run.workspace("hot-path-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        env = run.server_env(base, database)
        env.update(item.split("=", 1) for item in args.env)
        if args.cprofile:
            ctx = start_servers(env, work, 1)[""]
            procs.stop_all()  # the token is all we needed from a server
            cprofile(env, ctx, args.cprofile)
            return 0
        base_env = dict(item.split("=", 1) for item in args.base_env)
        contexts = {w: start_servers(env, work, w, args.baseline, base_env) for w in counts}
        for by_label in contexts.values():  # warm every worker and path, unrecorded
            for ctx in by_label.values():
                loads = run.endpoints(ctx)
                for name in ("hello", *names):
                    loads[name][1](2)
        if args.rounds:
            report(measure(contexts, names, args.rounds, args.seconds), args.rounds)
        if args.perf:
            run.RESULTS_DIR.mkdir(exist_ok=True)
            perf_workers(contexts[counts[0]][""], args.perf, args.seconds,
                         run.RESULTS_DIR / f"hot-path-{args.perf}.perf")
        if args.profile:
            run.RESULTS_DIR.mkdir(exist_ok=True)
            w = counts[0]
            out = run.RESULTS_DIR / f"hot-path-{args.profile}-x{w}{'-gil' if args.gil else ''}.txt"
            result = profile_workers(contexts[w][""], args.profile, args.seconds, args.gil, out)
            print_profile(out, result, f"{args.profile} x{w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
