"""README "Tokens for scripts and gateways": its Python DPoP client runs as printed against gunicorn."""
import re
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.live


def _readme_python():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Tokens for scripts and gateways", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, re.S)
    return block


def test_the_readmes_dpop_client_logs_in_and_calls_a_resource(live_server):
    code = _readme_python()
    assert 'BASE = "http://127.0.0.1:5000"' in code
    code = code.replace('BASE = "http://127.0.0.1:5000"', f'BASE = "{live_server.url}"')
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["DPoP", "{'id': 1, 'username': 'roy'}"]
