"""Where the time goes: py-spy samples every worker of the service while wrk loads one endpoint.

    .venv/bin/python bench/profile.py                       # GET /rest-auth, 8 s
    .venv/bin/python bench/profile.py --endpoint posts_page --seconds 5
    .venv/bin/python bench/profile.py --gil     # Python's CPU only, no waits

Starts the service as bench/run.py does (`python -m serving`, own database,
4 workers), warms it up, then records with py-spy (`pip install py-spy`;
requirements-dev.txt) from granian's master with --subprocesses, which
follows the workers it forked, and prints the functions with the most
samples, by own time and including callees (less the frames every worker's
stack starts with: runpy, multiprocessing, granian's process startup).
Samples are wall-clock: a worker waiting on MariaDB shows up in PyMySQL's
socket reads (the database's share), an idle event loop in
EpollSelector.select, granian writing an answer in the bridge's
proto.response_bytes line. A sample of a thread with no Python frame at all
(granian's Rust threads, holding a Python thread state) is counted as
NATIVE, so that the shares add up.
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

NATIVE = "(no Python frame: a native thread of the server, e.g. granian's Rust runtime)"
# Frames at the root of every worker's stack (how the process started): in
# every sample of the main thread, so they would head "including callees".
STARTUP = ("<frozen runpy>", "(__main__.py:", "multiprocessing/", "granian/server/")


def top(collapsed, count=40):
    """(own, cumulative) lists of (share, frame) from py-spy's raw collapsed stacks."""
    own, cumulative, total = collections.Counter(), collections.Counter(), 0
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue  # a frame name py-spy printed with a line break in it (a LocalProxy's repr)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")] or [NATIVE]
        total += int(samples)
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            if not any(marker in frame for marker in STARTUP):
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
        service = run.start_ours("service", run.server_env(base, database), work)
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
