"""`make run` leaves the working tree clean: the service writes no file where it runs.

The service is started the way `make run` starts it, from a copy of the
tracked files, with the shipped .env.example as its .env (as `make .env`
writes it), metrics on and PROMETHEUS_MULTIPROC_DIR left empty as shipped:
prometheus-client once wrote counter_<pid>.db files into the working
directory because that empty variable merely existed.
"""
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from support import ROOT, create_database, drop_database, free_port, server_config

pytestmark = pytest.mark.live


def _tracked_copy(target):
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _wait_until_answers(url, process, log_path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not answer: {log_path.read_text(errors='replace')[-3000:]}")


def _listing(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if "__pycache__" not in p.parts}


def test_serving_writes_no_file_into_the_tree(tmp_path):
    tree = tmp_path / "clone"
    tree.mkdir()
    _tracked_copy(tree)
    env_file = (ROOT / ".env.example").read_text()
    assert "\nPROMETHEUS_MULTIPROC_DIR=\n" in env_file  # what this test is about
    (tree / ".env").write_text(env_file)
    before = _listing(tree)
    database = create_database(prefix="test_clean")
    port = free_port()
    # The real environment overrides .env (python-dotenv never overrides), as in a shell.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DB_", "APP_"))}
    env.update({k: str(v) for k, v in server_config(database).items()})
    env.update({"SECRET_KEY": "s" * 48, "MFA_ENCRYPTION_KEY": "m" * 43 + "=",
                "METRICS_ENABLED": "true", "SERVER_WORKERS": "2",
                "SERVER_BIND": f"127.0.0.1:{port}", "PYTHONDONTWRITEBYTECODE": "1"})
    bindir = os.path.dirname(sys.executable)
    try:
        subprocess.run([os.path.join(bindir, "flask"), "--app", "app", "init-db"], cwd=tree, env=env,
                       check=True, capture_output=True, timeout=60)
        log = open(tmp_path / "server.log", "wb")
        server = subprocess.Popen([os.path.join(bindir, "python"), "-m", "serving"], cwd=tree,
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_answers(url + "/healthz", server, tmp_path / "server.log")
            for _ in range(4):
                with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
                    assert b"http_requests_total" in response.read()
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
    finally:
        drop_database(database)
    assert _listing(tree) - before == set()
