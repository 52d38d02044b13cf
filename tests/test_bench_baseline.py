"""bench/'s baselines, a bare Flask app, start: under gunicorn's sync workers and under our server.

Every bench figure is a ratio to these, measured in the same run: bare Flask
on gunicorn sync workers (the ceiling every Flask user knows) and the same
app served by `python -m serving bench.hello:app`, so the distance between
our endpoints and our server's own ceiling shows too. If either could not
start, `make bench` could not either; and its memory check finds our
server's workers as the children of its master.
"""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from support import ROOT, free_port

pytestmark = pytest.mark.live

BIN = os.path.dirname(sys.executable)


def _hello_from(command, port, tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("APP_ENV", "SECRET_KEY")}
    env.update({"SERVER_BIND": f"127.0.0.1:{port}", "SERVER_WORKERS": "1",
                "PYTHON_DOTENV_DISABLED": "1", "APP_ENV": "development"})
    log_path = tmp_path / "baseline.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=2) as response:
                    return response.read(), dict(response.headers)
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=15)
    pytest.fail(log_path.read_text(errors="replace")[-3000:])


def test_the_bare_flask_baseline_serves_under_gunicorn_sync_workers(tmp_path):
    port = free_port()
    body, _ = _hello_from([os.path.join(BIN, "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}",
                           "bench.hello:app"], port, tmp_path)
    assert body == b'{"message":"hello"}\n'


def test_the_bare_flask_baseline_serves_under_our_server(tmp_path):
    port = free_port()
    body, headers = _hello_from([sys.executable, "-m", "serving", "bench.hello:app"], port, tmp_path)
    assert body == b'{"message":"hello"}\n'
    assert headers.get("server", headers.get("Server")) == ""  # the bridge's empty banner


def test_an_app_the_server_cannot_load_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "serving", "bench.nothing_here:app"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHON_DOTENV_DISABLED": "1", "APP_ENV": "development"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: cannot load the WSGI app 'bench.nothing_here:app'")


def test_our_servers_workers_are_children_of_its_master(tmp_path):
    """bench/run.py's memory check reads the workers' RSS as the master's children (bench/procs.py)."""
    from bench import procs

    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("APP_ENV", "SECRET_KEY")}
    env.update({"SERVER_BIND": f"127.0.0.1:{port}", "SERVER_WORKERS": "2", "RATELIMIT_ENABLED": "false",
                "PYTHON_DOTENV_DISABLED": "1", "APP_ENV": "development"})
    with open(tmp_path / "served.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "serving", "bench.hello:app"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/hello", server)
        deadline = time.monotonic() + 20
        while len(procs.children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = procs.children(server.pid)
        assert len(workers) == 2, (workers, (tmp_path / "served.log").read_text(errors="replace")[-2000:])
        for pid in workers:
            assert b"serving\0bench.hello:app" in open(f"/proc/{pid}/cmdline", "rb").read()
            assert procs.rss_kib(pid) > 10_000  # a Python process with Flask loaded
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]  # stopped with their master
