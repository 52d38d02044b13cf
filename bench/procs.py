"""Processes the bench starts, and how it stops them: by PID, always.

Every process is registered when started and stopped in `stop_all()`, which
bench/run.py calls in a finally block and atexit. Nothing here looks a process
up by name.
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"

_started = []  # Popen objects, in start order


def free_port():
    """A TCP port on the loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start(args, env, log_path, cwd=ROOT):
    """Start `args` with its output in `log_path`; the process is stopped by stop_all()."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    _started.append(process)
    return process


def children(pid):
    """PIDs of the direct children of `pid`, from /proc: a server's workers.

    gunicorn forks its workers; so does granian (`python -m serving`), through
    multiprocessing's fork start method on Linux (spawn would still make them
    children of the master; forkserver, which granian refuses, would not).
    """
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        return found


def rss_kib(pid):
    """Resident set size of `pid` in KiB (VmRSS from /proc/<pid>/status), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def stop(process, timeout=10):
    """SIGTERM `process` (gunicorn and granian stop their workers), then SIGKILL it and any worker left."""
    workers = children(process.pid) if process.poll() is None else []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for pid in workers:  # a worker that outlived its master is ours to stop
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_all():
    """Stop every process this module started, newest first."""
    while _started:
        process = _started.pop()
        try:
            stop(process)
        except Exception as exc:  # keep stopping the others
            sys.stderr.write(f"warning: could not stop pid {process.pid}: {exc}\n")


atexit.register(stop_all)


def wait_http(url, process, timeout=30.0):
    """Wait until `url` answers any HTTP status; raise RuntimeError if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
