"""Where the time goes: py-spy samples every gunicorn worker while wrk loads one endpoint.

    .venv/bin/python bench/profile.py                       # GET /rest-auth, 8 s
    .venv/bin/python bench/profile.py --endpoint posts_page --seconds 5
    .venv/bin/python bench/profile.py --gil     # Python's CPU only, no waits

Starts the service as bench/run.py does (own database, 4 sync workers), warms
it up, then records with py-spy (`pip install py-spy`; requirements-dev.txt)
and prints the functions with the most samples, by own time and including
callees. Samples are wall-clock: a worker waiting on MariaDB shows up in
PyMySQL's socket reads (the database's share), one waiting for wrk to close
the connection in gunicorn's close_graceful (the same for hello).
The raw collapsed stacks are kept in bench/results/profile-<endpoint>.txt
(feed them to flamegraph.pl or speedscope for a picture).
"""
import argparse
import collections
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import load_data  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402


def top(collapsed, count=40):
    """(own, cumulative) lists of (share, frame) from py-spy's raw collapsed stacks."""
    own, cumulative, total = collections.Counter(), collections.Counter(), 0
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue  # a frame name py-spy printed with a line break in it (a LocalProxy's repr)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        total += int(samples)
        if frames:
            own[frames[-1]] += int(samples)
        for frame in set(frames):
            cumulative[frame] += int(samples)
    total = max(total, 1)
    return ([(n / total, f) for f, n in own.most_common(count)],
            [(n / total, f) for f, n in cumulative.most_common(count)])


def main(argv=None):
    parser = argparse.ArgumentParser(description="py-spy the service's workers under wrk load.")
    parser.add_argument("--endpoint", default="rest_auth",
                        help="rest_auth, posts_page, posts_create, auth or refresh")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--gil", action="store_true",
                        help="only samples holding the GIL: Python's CPU time, without the waits")
    args = parser.parse_args(argv)
    spy = procs.VENV_BIN / "py-spy"
    if not spy.exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    out = run.RESULTS_DIR / f"profile-{args.endpoint}.txt"
    run.RESULTS_DIR.mkdir(exist_ok=True)
    with run.workspace("profile-") as (base, database, work):
        load_data.load(database, run.BASE_USERS, run.BASE_POSTS, base)
        service = run.Server("service", "app:create_app()", run.server_env(base, database), work)
        service.ready("/rest-auth")
        ctx = run.logged_in(run.Context(None, service, work))
        load = run.endpoints(ctx)[args.endpoint][1]
        load(2)  # warm up
        recorder = procs.start([str(spy), "record", "--pid", str(service.process.pid),
                                "--subprocesses", "--nonblocking", "-r", "250",
                                "-d", str(args.seconds), "-f", "raw", "-o", str(out),
                                *(["--gil"] if args.gil else [])],
                               None, Path(work) / "py-spy.log")
        result = load(args.seconds)
        recorder.wait(timeout=args.seconds + 60)
    print(f"{args.endpoint}: {result['req_s']:.0f} req/s during the recording, "
          f"{result['non2xx']} non-2xx; stacks in {out.relative_to(run.ROOT)}")
    own, cumulative = top(out.read_text())
    print("\nown time (the frame that was running):")
    for share, frame in own:
        print(f"  {share:6.1%}  {frame}")
    print("\nincluding callees:")
    for share, frame in cumulative:
        print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
