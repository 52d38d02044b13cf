"""CPU time per request, split by process: gunicorn workers, MariaDB, wrk.

    .venv/bin/python bench/cpu_split.py                          # every endpoint, 5 s each
    .venv/bin/python bench/cpu_split.py --only hello,rest_auth_db,rest_auth

py-spy (bench/profile.py) shows where a worker's Python time goes; this shows
where the machine's time goes. It starts the servers as bench/run.py does,
runs wrk on one endpoint at a time, and divides each process's CPU time
(utime + stime from /proc/<pid>/stat, the kernel's work for it included) by
the requests completed. On two cores, a request's cost in wall time is about
the sum of the columns divided by two.
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


def database_pids():
    """The MariaDB/MySQL server processes on this machine (the bench's database server)."""
    found = subprocess.run(["pgrep", "-x", "mariadbd|mysqld"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def measure(ctx, name, runner, seconds):
    """CPU µs per request of the workers, the database and wrk while wrk loads `name`."""
    target = {"hello": ctx.hello, "rest_auth_db": ctx.uncached, "posts_page_db": ctx.uncached}.get(name, ctx.service)
    groups = {"workers": procs.children(target.process.pid), "database": database_pids()}
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
    parser.add_argument("--only", default="hello,public,rest_auth,rest_auth_db,posts_page,posts_page_db")
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    with run.workspace("bench-cpu-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        env = run.server_env(base, database)
        hello = run.start_hello(env, work)
        service, uncached = run.start_services(env, work)
        ctx = run.logged_in(run.Context(hello, service, work, uncached))
        runners = run.endpoints(ctx)
        print(f"{'endpoint':14} {'req/s':>7}  {'workers':>8} {'(kernel)':>9} {'database':>9} {'wrk':>6}  "
              f"{'wall x cores':>12}  (CPU µs per request)")
        for name in args.only.split(","):
            runners[name][1](2)  # warm up
            rate, split, wall = measure(ctx, name, runners[name][1], args.seconds)
            print(f"{name:14} {rate:7.0f}  {split['workers']:8.0f} {split['workers_kernel']:9.0f} {split['database']:9.0f} "
                  f"{split['wrk']:6.0f}  {wall:12.0f}")


if __name__ == "__main__":
    main()
