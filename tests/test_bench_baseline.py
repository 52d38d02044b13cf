"""bench/'s baseline, a bare Flask app, starts under the service's own gunicorn.conf.py.

Every bench figure is a fraction of this app's, served with the same
settings; gunicorn.conf.py's hooks (key reload, mail sender, start-up hints)
must therefore leave an app that is not ours alone. One of them once crashed
gunicorn here, and `make bench` could not start.
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


def test_the_bare_flask_baseline_serves_under_our_gunicorn_conf(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("APP_ENV", "SECRET_KEY")}
    env.update({"SERVER_BIND": f"127.0.0.1:{port}", "SERVER_WORKERS": "1",
                "PYTHON_DOTENV_DISABLED": "1", "APP_ENV": "development"})
    log_path = tmp_path / "gunicorn.log"
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    with open(log_path, "wb") as log:
        server = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "bench.hello:app"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        body = None
        deadline = time.monotonic() + 30
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=2) as response:
                    body = response.read()
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert body == b'{"message":"hello"}\n', log_path.read_text(errors="replace")[-3000:]
