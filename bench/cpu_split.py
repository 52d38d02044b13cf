"""CPU time per request, split by process: the server's workers, MariaDB, wrk.

    .venv/bin/python bench/cpu_split.py                          # every endpoint, 5 s each
    .venv/bin/python bench/cpu_split.py --only hello,hello_served,rest_auth_db,rest_auth

py-spy (bench/profile.py) shows where a worker's Python time goes; this shows
where the machine's time goes. It starts the servers as bench/run.py does,
runs wrk on one endpoint at a time, and divides each process's CPU time
(utime + stime from /proc/<pid>/stat, the kernel's work for it included) by
the requests completed. The workers are the children of the server's master:
gunicorn's for hello, granian's (`python -m serving`) for hello_served and
the service; a master's own CPU is not counted. On two cores, a request's
cost in wall time is about the sum of the columns divided by two.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import load_data  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402


def cpu_seconds(pid, kernel_only=False):
    """utime + stime of `pid` in seconds (stime alone with kernel_only; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database_pids(port):
    """The MariaDB/MySQL server listening on `port` here: the bench's database server.

    Only that one: tests and other benches start private servers of their
    own, whose CPU is not ours, and which may stop mid-measurement (a
    vanished process would subtract its whole CPU time from the sum).
    """
    found = subprocess.run(["pgrep", "-x", "mariadbd|mysqld"], capture_output=True, text=True)
    listening = _listening_inodes(port)
    return [int(pid) for pid in found.stdout.split() if _holds_any(int(pid), listening)]


def _listening_inodes(port):
    """Socket inodes of the TCP sockets listening on `port` (any address), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def _holds_any(pid, inodes):
    try:
        return any(os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes
                   for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def measure(ctx, name, runner, seconds, db_port):
    """CPU µs per request of the workers, the database and wrk while wrk loads `name`."""
    target = {"hello": ctx.hello, "hello_served": ctx.hello_served,
              "rest_auth_db": ctx.uncached, "posts_page_db": ctx.uncached}.get(name, ctx.service)
    groups = {"workers": procs.children(target.process.pid), "database": database_pids(db_port)}
    before = {group: sum(cpu_seconds(p) for p in pids) for group, pids in groups.items()}
    kernel_before = sum(cpu_seconds(p, kernel_only=True) for p in groups["workers"])
    clients_before = os.times()
    began = time.monotonic()
    result = runner(seconds)
    elapsed = time.monotonic() - began
    clients_after = os.times()
    count = max(result["requests"], 1)
    split = {group: (sum(cpu_seconds(p) for p in pids) - before[group]) / count * 1e6
             for group, pids in groups.items()}
    split["workers_kernel"] = (sum(cpu_seconds(p, kernel_only=True) for p in groups["workers"])
                               - kernel_before) / count * 1e6
    split["wrk"] = ((clients_after.children_user + clients_after.children_system)
                    - (clients_before.children_user + clients_before.children_system)) / count * 1e6
    return result["req_s"], split, elapsed / count * 1e6 * run.cores()


def main(argv=None):
    parser = argparse.ArgumentParser(description="CPU per request by process, endpoint by endpoint.")
    parser.add_argument("--only", default="hello,hello_served,public,rest_auth,rest_auth_db,posts_page,posts_page_db")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    with run.workspace("bench-cpu-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        env = run.server_env(base, database)
        hello = run.start_hello(env, work)
        served = run.start_hello_served(env, work)
        service, uncached = run.start_services(env, work)
        ctx = run.logged_in(run.Context(hello, service, work, uncached, hello_served=served))
        runners = run.endpoints(ctx)
        print(f"{'endpoint':14} {'req/s':>7}  {'workers':>8} {'(kernel)':>9} {'database':>9} {'wrk':>6}  "
              f"{'wall x cores':>12}  (CPU µs per request)")
        for name in args.only.split(","):
            runners[name][1](2)  # warm up
            rate, split, wall = measure(ctx, name, runners[name][1], args.seconds, int(base["DB_PORT"]))
            print(f"{name:14} {rate:7.0f}  {split['workers']:8.0f} {split['workers_kernel']:9.0f} {split['database']:9.0f} "
                  f"{split['wrk']:6.0f}  {wall:12.0f}")


if __name__ == "__main__":
    main()
